#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nginx_split_info
short_description: Read the routing an nginx_split include holds on a load balancer
description:
  - Returns the routing of one application as M(saferelease.core.nginx_split) wrote it - the pool taking all traffic or
    each pool's share, the servers of every pool, the split key, the canary pool and the forcing header and cookie - so
    playbooks never parse the file themselves.
  - Reports RV(exists=false) when there is no such file, or it holds no routing written by M(saferelease.core.nginx_split).
  - Read only.
version_added: 0.1.0
requirements:
  - Read access to the include file on the load balancer.
author:
  - saferelease.core contributors (@saferelease)
options:
  name:
    description:
      - Application name, as given to M(saferelease.core.nginx_split).
    type: str
    required: true
  path:
    description:
      - The include file, or the directory holding C(<name>_split.conf), as given to M(saferelease.core.nginx_split).
    type: path
    required: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Read only; it runs the same way in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
seealso:
  - module: saferelease.core.nginx_split
'''

EXAMPLES = r'''
- name: Read which colour is live on the load balancer
  saferelease.core.nginx_split_info:
    name: danci
    path: /etc/nginx/conf.d
  register: danci_routing

- name: Say which colour takes the traffic
  ansible.builtin.debug:
    msg: "{{ danci_routing.active or danci_routing.weights }}"
'''

RETURN = r'''
exists:
  description: Whether the file exists and holds routing written by M(saferelease.core.nginx_split).
  returned: always
  type: bool
path:
  description: The include file.
  returned: always
  type: str
  sample: /etc/nginx/conf.d/danci_split.conf
active:
  description: The pool that takes all split traffic, or null during a split (and when nothing exists).
  returned: always
  type: str
  sample: green
weights:
  description: Every pool's share in percent.
  returned: always
  type: dict
  sample: {"blue": 90, "green": 10}
pools:
  description: Each pool's servers, as dicts with C(address) and any of C(weight), C(max_fails), C(fail_timeout), C(backup), C(down).
  returned: always
  type: dict
  sample: {"blue": [{"address": "10.0.0.11:3000"}], "green": [{"address": "10.0.0.12:3001", "down": true}]}
split_key:
  description: What C(split_clients) hashes.
  returned: always
  type: str
  sample: $remote_addr
canary:
  description: The pool whose bucket comes first in a split, or null.
  returned: always
  type: str
force_header:
  description: The request header that forces a pool, or null.
  returned: always
  type: str
force_cookie:
  description: The cookie that forces a pool, or null.
  returned: always
  type: str
pending:
  description: Whether the file holds routing that nginx does not run yet (written with C(reload=false)).
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.saferelease.core.plugins.module_utils.nginx_config import IncludeFile, read_routing, resolve_path

ROUTING_KEYS = ('active', 'split_key', 'canary', 'force_header', 'force_cookie')


def routing_info(name, include):
    """The routing the include holds, or exists=false with every field empty."""
    try:
        content = include.read()
    except (IOError, OSError) as exc:
        raise RuntimeError('cannot read %s: %s; run the task with become (the file is nginx configuration)' % (include.path, exc))
    routing = read_routing(content, name) if content is not None else None
    info = dict((key, (routing or {}).get(key)) for key in ROUTING_KEYS)
    if routing is None:
        info.update(exists=False, weights={}, pools={}, pending=False,
                    msg='%s holds no routing for %s' % (include.path, name))
    else:
        info.update(exists=True, weights=routing.get('weights') or {}, pools=routing['pools'],
                    pending=include.is_pending(content), msg='routing for %s read from %s' % (name, include.path))
    return info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            path=dict(type='path', required=True),
        ),
        supports_check_mode=True,
    )
    include = IncludeFile(resolve_path(module.params['path'], module.params['name']))
    try:
        info = routing_info(module.params['name'], include)
    except RuntimeError as exc:
        module.fail_json(msg=str(exc), path=include.path)
    module.exit_json(changed=False, path=include.path, **info)


if __name__ == '__main__':
    main()
