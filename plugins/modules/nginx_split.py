#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nginx_split
short_description: Blue-green switches and weighted canary splits on nginx, validated and never left broken
description:
  - Owns one nginx include file per application, placed in the C(http{}) context. It holds the application's upstream
    pools, the routing variable C($<name>_pool) (a C(split_clients) bucket, optionally overridden by a request header or
    a cookie naming a pool), the variable C($<name>_pool_name) with the plain pool name, and the C(log_format <name>_split)
    that writes one JSON object per request for M(saferelease.core.health_gate)'s canary analysis.
  - A server block uses it with C(proxy_pass http://$<name>_pool;), C(add_header X-Release-Pool $<name>_pool_name always;)
    and C(access_log <file> <name>_split;) (see notes); the C(saferelease.core.nginx_site) role ships that server block.
  - The file is written atomically, the previous content is kept in C(<path>.previous), and C(nginx -t) checks the real
    main configuration. When nginx refuses it, the previous file is put back, nothing is reloaded and the task fails
    with nginx's own message. Then nginx is reloaded gracefully and the module waits until the master runs new worker
    processes (the sign that it accepted the configuration); a reload nginx rejects also puts the previous file back.
  - Idempotent - the same input gives the same bytes, C(changed=false) and no reload.
version_added: 0.1.0
requirements:
  - nginx on the managed host (the load balancer), run as a service or with its own prefix; C(nginx -t) validates and
    C(nginx -s reload) or the service's reload applies.
author:
  - saferelease.core contributors (@saferelease)
options:
  name:
    description:
      - Application name; it prefixes every nginx name the include defines (C(upstream <name>_<pool>), C($<name>_pool),
        C(log_format <name>_split)), so it must match C([a-z0-9_]+).
    type: str
    required: true
  path:
    description:
      - The include file, or an existing directory (such as C(/etc/nginx/conf.d)) to hold C(<name>_split.conf).
      - It must be included in the C(http{}) context, and sort before any file whose C(access_log) uses C(<name>_split).
    type: path
    required: true
  state:
    description:
      - V(present) writes the routing given by O(pools) with O(active) or O(weights).
      - V(restored) puts back the content kept in C(<path>.previous) by the last change (validated and reloaded the same
        way), so the undone routing becomes the previous one in turn. Use it to undo a switch, for example on every load
        balancer when one of them refused the new routing.
      - M(saferelease.core.nginx_split_info) reads the routing a file holds.
    type: str
    choices: [present, restored]
    default: present
  pools:
    description:
      - Pool name (C([a-z0-9_]+)) to its servers. A server is C(host:port), C([ipv6]:port) or C(unix:/path), or a dict
        with C(address) and optional C(weight), C(max_fails), C(fail_timeout) (such as C(10s)), C(backup), C(down).
      - Every pool gets an upstream even with a 0% share, so O(force_header) and O(force_cookie) can reach an idle colour.
      - Required with O(state=present).
    type: dict
  active:
    description:
      - Blue-green - the pool that takes all traffic. Mutually exclusive with O(weights).
    type: str
  weights:
    description:
      - Canary - pool name to its share in percent, an integer or a number with at most two decimals (nginx's precision).
      - Pools not named get 0%; a 0% pool gets no C(split_clients) bucket, as nginx refuses C(0%). The shares must add up
        to exactly 100.
    type: dict
  split_key:
    description:
      - The string C(split_clients) hashes; clients with the same value always land in the same pool.
      - V($remote_addr) splits by client address; V($cookie_uid) or V($arg_userId) keep a signed-in user on one pool.
    type: str
    default: $remote_addr
  canary:
    description:
      - The pool whose bucket comes first in C(split_clients). Buckets are handed out in order over the hash range, so with
        the canary first, raising its share only adds clients to it - those already on it stay.
      - Without it the buckets follow pool names in sorted order; with two pools any fixed order is sticky, with three or
        more name the canary.
    type: str
  force_header:
    description:
      - A request header whose value names a pool, such as V(X-Release-Pool); the request goes to that pool whatever the
        split says (testers, internal users). It wins over O(force_cookie). Values that name no pool are ignored.
    type: str
  force_cookie:
    description:
      - A cookie whose value names a pool, such as V(release_pool) (letters, digits and C(_) only, as nginx needs).
    type: str
  nginx_binary:
    description: The nginx executable, a name looked up on C(PATH) and the sbin directories, or a path.
    type: str
    default: nginx
  nginx_conf:
    description: The main configuration file nginx runs with (C(nginx -c)); nginx's compiled-in default when not set.
    type: path
  nginx_prefix:
    description: The prefix nginx runs with (C(nginx -p)); relative paths in the configuration are resolved against it.
    type: path
  validate:
    description: Check the configuration with C(nginx -t) before reloading.
    type: bool
    default: true
  reload:
    description:
      - Reload nginx gracefully and wait until it runs the new configuration.
      - With V(false) the file is written and validated only; it is recorded as pending, and the next run with V(true)
        reloads even when the content is unchanged. This is the first step of switching several load balancers together.
    type: bool
    default: true
  force_reload:
    description: Validate and reload even when the include is unchanged, for example after the server block that uses it changed.
    type: bool
    default: false
  reload_timeout:
    description: Seconds to wait for nginx to run new worker processes after the reload signal.
    type: float
    default: 10
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reports whether the file would change and whether nginx would be reloaded; writes nothing and runs no nginx command.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the include file before and after.
notes:
  - 'A hand-written server block uses the include like this (the role C(saferelease.core.nginx_site) renders the same):
    C(location / { proxy_pass http://$danci_pool; add_header X-Release-Pool $danci_pool_name always;
    access_log /var/log/nginx/danci_split.log danci_split; }).'
  - nginx resolves upstream host names when it loads the configuration, so an unknown host is refused by C(nginx -t).
  - A client with keep-alive connections may see one failed request per idle connection at a reload, because the old
    worker processes close idle connections when they shut down; clients that retry idempotent requests do not notice.
    Clients without keep-alive see no errors.
  - Two load balancers switched together - run with O(reload=false) on all of them, then with O(reload=true) on all of
    them; when any of them fails, run O(state=restored) on those where the first step changed the file (the
    C(saferelease.core.nginx_site) role does exactly this).
seealso:
  - module: saferelease.core.health_gate
  - name: ngx_http_split_clients_module
    description: How nginx maps the hash of a string to buckets.
    link: https://nginx.org/en/docs/http/ngx_http_split_clients_module.html
'''

EXAMPLES = r'''
- name: Blue-green - send all traffic to green
  saferelease.core.nginx_split:
    name: danci
    path: /etc/nginx/conf.d
    pools:
      blue: ["127.0.0.1:3000"]
      green: ["127.0.0.1:3001"]
    active: green

- name: Canary - 10 % of signed-in users on green, testers forced by header or cookie
  saferelease.core.nginx_split:
    name: danci
    path: /etc/nginx/conf.d/danci_split.conf
    pools:
      blue:
        - address: 10.0.0.11:3000
          max_fails: 3
          fail_timeout: 10s
      green:
        - 10.0.0.12:3001
    weights:
      blue: 90
      green: 10
    canary: green
    split_key: $cookie_uid
    force_header: X-Release-Pool
    force_cookie: release_pool

- name: Undo the last switch
  saferelease.core.nginx_split:
    name: danci
    path: /etc/nginx/conf.d
    state: restored
'''

RETURN = r'''
active:
  description: The pool that takes all split traffic, or null during a split.
  returned: always
  type: str
  sample: green
weights:
  description: Every pool's share in percent.
  returned: always
  type: dict
  sample: {"blue": 90, "green": 10}
path:
  description: The include file.
  returned: always
  type: str
  sample: /etc/nginx/conf.d/danci_split.conf
backup_file:
  description: Where the content before this change is kept (empty when the file did not exist); null when the file did not change.
  returned: always
  type: str
  sample: /etc/nginx/conf.d/danci_split.conf.previous
validated:
  description: Whether C(nginx -t) accepted the configuration in this run.
  returned: always
  type: bool
reloaded:
  description: Whether nginx was reloaded in this run and runs new worker processes with the new configuration.
  returned: always
  type: bool
pending:
  description: Whether the file holds routing that nginx does not run yet (written with O(reload=false)).
  returned: always
  type: bool
nginx:
  description: What nginx said - C(test) (its C(nginx -t) output) and C(reload) (master pid, old and new worker pids, seconds).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.saferelease.core.plugins.module_utils.nginx_config import (
    IncludeFile, SplitConfigError, SwitchError, build_routing, read_state, render, resolve_path, switch)
from ansible_collections.saferelease.core.plugins.module_utils.nginx_runner import NginxRunner


def desired_content(params, include):
    """The file content the task asks for, and the routing summary it stands for."""
    if params['state'] == 'restored':
        previous = include.read_previous()
        if previous is None:
            raise SplitConfigError('there is no previous routing to restore: %s does not exist (the file was created by '
                                   'the last change, or never changed)' % include.previous_path)
        return previous, read_state(previous) or {}
    routing = build_routing(params['name'], params['pools'], active=params['active'], weights=params['weights'],
                            split_key=params['split_key'], force_header=params['force_header'],
                            force_cookie=params['force_cookie'], canary=params['canary'])
    return render(routing), routing.summary()


def outcome_message(params, summary, switched):
    routing = ', '.join('%s %s%%' % (pool, share) for pool, share in sorted((summary.get('weights') or {}).items()))
    if not switched['changed']:
        return 'routing for %s already in place (%s)' % (params['name'], routing)
    if switched['reloaded']:
        return 'routing for %s is live: %s' % (params['name'], routing)
    if switched['written'] or switched['pending']:
        return 'routing for %s written%s, not reloaded yet: %s' % (
            params['name'], ' and validated' if switched['validated'] else '', routing)
    return 'routing for %s would change to %s' % (params['name'], routing)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            path=dict(type='path', required=True),
            state=dict(type='str', choices=['present', 'restored'], default='present'),
            pools=dict(type='dict'),
            active=dict(type='str'),
            weights=dict(type='dict'),
            split_key=dict(type='str', default='$remote_addr', no_log=False),
            canary=dict(type='str'),
            force_header=dict(type='str'),
            force_cookie=dict(type='str'),
            nginx_binary=dict(type='str', default='nginx'),
            nginx_conf=dict(type='path'),
            nginx_prefix=dict(type='path'),
            validate=dict(type='bool', default=True),
            reload=dict(type='bool', default=True),
            force_reload=dict(type='bool', default=False),
            reload_timeout=dict(type='float', default=10),
        ),
        mutually_exclusive=[('active', 'weights')],
        required_if=[('state', 'present', ('pools',)), ('state', 'present', ('active', 'weights'), True)],
        supports_check_mode=True,
    )
    params = module.params
    include = IncludeFile(resolve_path(params['path'], params['name']))
    result = dict(changed=False, active=None, weights={}, path=include.path, backup_file=None, validated=False,
                  reloaded=False, pending=False, nginx={})
    try:
        content, summary = desired_content(params, include)
    except SplitConfigError as exc:
        module.fail_json(msg='Refused the routing for %s before writing anything: %s. %s is unchanged and nginx was not '
                             'touched.' % (params['name'], exc, include.path), **result)
    result.update(active=summary.get('active'), weights=summary.get('weights') or {})
    binary = params['nginx_binary']
    if not module.check_mode and '/' not in binary:
        binary = module.get_bin_path(binary, required=True, opt_dirs=['/usr/sbin', '/usr/local/sbin', '/sbin'])
    runner = NginxRunner(binary, conf=params['nginx_conf'], prefix=params['nginx_prefix'])
    try:
        switched = switch(include, content, runner, validate=params['validate'], reload=params['reload'],
                          force_reload=params['force_reload'], check_mode=module.check_mode,
                          reload_timeout=params['reload_timeout'])
    except SwitchError as exc:
        result.update((key, exc.result[key]) for key in ('validated', 'nginx') if key in exc.result)
        module.fail_json(msg=exc.message, **result)
    except (IOError, OSError) as exc:
        module.fail_json(msg='Cannot write %s: %s. nginx was not reloaded; fix the permissions or the path and run '
                             'again.' % (include.path, exc), **result)
    result.update((key, switched[key]) for key in ('changed', 'backup_file', 'validated', 'reloaded', 'pending', 'nginx'))
    result['diff'] = switched['diff']
    result['msg'] = outcome_message(params, summary, switched)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
