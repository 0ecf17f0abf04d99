# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The per-application nginx include that nginx_split owns: validation, rendering and safe switching.

The include lives in nginx's ``http{}`` context and defines, for an application ``<name>``:

* one ``upstream <name>_<pool>`` per pool;
* ``split_clients "<split_key>" $<name>_pool_by_weight`` with the weighted buckets; the canary
  bucket comes first, so raising its share only adds clients to it (buckets are handed out in the
  order they appear over the 32-bit MurmurHash2 range);
* optional ``map`` overrides from a request header and a cookie whose value names a pool;
* ``$<name>_pool``: the upstream a request goes to (``proxy_pass http://$<name>_pool;``);
* ``$<name>_pool_name``: the plain pool name (``green``) for the ``X-Release-Pool`` response
  header and the ``pool`` field of the access log, which is what health_gate's canary analysis reads;
* ``log_format <name>_split`` writing one JSON object per request.

``add_header`` and ``access_log`` only make sense per server, so the server block adds them
(:func:`server_directives` lists them; the nginx_site role's template uses them). nginx needs the
``log_format`` before an ``access_log`` names it, so the server block's file must sort after this one.

:func:`switch` puts a rendered include in place: atomic write keeping the previous file, ``nginx -t``,
graceful reload and a check that it took effect; on any failure the previous file is put back.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import decimal
import hashlib
import json
import os
import re
import tempfile

NAME_RE = re.compile(r'^[a-z0-9_]+$')
HEADER_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9-]*$')
COOKIE_RE = re.compile(r'^[A-Za-z0-9_]+$')
# Characters an nginx string with variables may hold inside double and single quotes alike.
SPLIT_KEY_RE = re.compile(r'^[A-Za-z0-9_${}.:/@=,+ -]+$')
VARIABLE_RE = re.compile(r'\$(\{[A-Za-z0-9_]+\}|[A-Za-z0-9_]+)')
HOST_PORT_RE = re.compile(r'^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(?P<port>\d{1,5}))?$')
UNIX_RE = re.compile(r'^unix:/[^\s;{}\'"#]+$')
DURATION_RE = re.compile(r'^\d+(ms|s|m|h)?$')
STATE_PREFIX = '# saferelease-split: '
HUNDRED = decimal.Decimal(100)
CENT = decimal.Decimal('0.01')
SERVER_KEYS = ('address', 'weight', 'max_fails', 'fail_timeout', 'backup', 'down')


class SplitConfigError(ValueError):
    """The requested routing is invalid; nothing was written."""


class SwitchError(Exception):
    """Putting the routing live failed; ``message`` says what happened to the file and to nginx."""

    def __init__(self, message, result=None):
        super(SwitchError, self).__init__(message)
        self.message = message
        self.result = result or {}

    def __str__(self):
        return self.message


# --- names ---------------------------------------------------------------------------------------

def check_name(value, what):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise SplitConfigError('%s %r must match [a-z0-9_]+ (it becomes part of nginx names and variables)' % (what, value))
    return value


def upstream_name(app, pool):
    return '%s_%s' % (app, pool)


def routing_variable(app):
    """The variable a server block proxies to: ``proxy_pass http://$<app>_pool;``."""
    return '%s_pool' % app


def pool_name_variable(app):
    return '%s_pool_name' % app


def log_format_name(app):
    return '%s_split' % app


def default_file_name(app):
    return '%s_split.conf' % app


def server_directives(app, access_log):
    """What a server (or location) block adds to name the pool in responses and log per pool."""
    return ['add_header X-Release-Pool $%s always;' % pool_name_variable(app),
            'access_log %s %s;' % (access_log, log_format_name(app))]


# --- pools ---------------------------------------------------------------------------------------

def check_address(address):
    if not isinstance(address, str) or not address:
        raise SplitConfigError('server address %r must be host:port, [ipv6]:port or unix:/path' % (address,))
    if UNIX_RE.match(address):
        return address
    match = HOST_PORT_RE.match(address)
    if not match or (match.group('port') and not 0 < int(match.group('port')) < 65536):
        raise SplitConfigError('server address %r must be host:port, [ipv6]:port or unix:/path' % (address,))
    return address


def _int_at_least(value, minimum, what):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() or int(value) < minimum:
        raise SplitConfigError('%s must be an integer of at least %d, got %r' % (what, minimum, value))
    return int(value)


def _flag(value, what):
    if isinstance(value, bool):
        return value
    if str(value).lower() in ('yes', 'true', '1', 'on'):
        return True
    if str(value).lower() in ('no', 'false', '0', 'off', ''):
        return False
    raise SplitConfigError('%s must be true or false, got %r' % (what, value))


def parse_server(entry, pool):
    """One upstream server from ``'host:port'`` or ``{address, weight, max_fails, fail_timeout, backup, down}``."""
    if isinstance(entry, str):
        entry = dict(address=entry)
    if not isinstance(entry, dict):
        raise SplitConfigError('pool %s: a server is an address string or a dict with address, got %r' % (pool, entry))
    unknown = sorted(set(entry) - set(SERVER_KEYS))
    if unknown:
        raise SplitConfigError('pool %s: unknown server setting(s) %s; allowed: %s' % (pool, ', '.join(unknown), ', '.join(SERVER_KEYS)))
    server = dict(address=check_address(entry.get('address')))
    if entry.get('weight') is not None:
        server['weight'] = _int_at_least(entry['weight'], 1, 'pool %s: weight' % pool)
    if entry.get('max_fails') is not None:
        server['max_fails'] = _int_at_least(entry['max_fails'], 0, 'pool %s: max_fails' % pool)
    if entry.get('fail_timeout') is not None:
        if not DURATION_RE.match(str(entry['fail_timeout'])):
            raise SplitConfigError('pool %s: fail_timeout %r must be a duration such as 10s' % (pool, entry['fail_timeout']))
        server['fail_timeout'] = str(entry['fail_timeout'])
    for flag in ('backup', 'down'):
        if entry.get(flag) is not None and _flag(entry[flag], 'pool %s: %s' % (pool, flag)):
            server[flag] = True
    return server


def normalise_pools(pools):
    """``{pool: [server, ...]}`` with every name and server checked; a single server may be given bare."""
    if not isinstance(pools, dict) or not pools:
        raise SplitConfigError('pools must map each pool name to its servers, e.g. {blue: ["127.0.0.1:3000"]}')
    normalised = {}
    for pool in sorted(pools):
        check_name(pool, 'pool name')
        servers = pools[pool]
        if isinstance(servers, (str, dict)):
            servers = [servers]
        if not isinstance(servers, list) or not servers:
            raise SplitConfigError('pool %s needs at least one server' % pool)
        normalised[pool] = [parse_server(entry, pool) for entry in servers]
        if all(s.get('backup') or s.get('down') for s in normalised[pool]):
            raise SplitConfigError('pool %s needs at least one server that is neither backup nor down' % pool)
    return normalised


# --- weights -------------------------------------------------------------------------------------

def parse_percentage(value, pool):
    """A share from 0 to 100 with at most two decimals (nginx's split_clients precision)."""
    text = str(value).strip()
    if isinstance(value, bool) or not text:
        raise SplitConfigError('weight of %s must be a number from 0 to 100, got %r' % (pool, value))
    if text.endswith('%'):
        text = text[:-1].strip()
    try:
        share = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise SplitConfigError('weight of %s must be a number from 0 to 100, got %r' % (pool, value))
    if not share.is_finite() or share < 0 or share > HUNDRED:
        raise SplitConfigError('weight of %s must be from 0 to 100, got %r' % (pool, value))
    if share != share.quantize(CENT):
        raise SplitConfigError('weight of %s is %r: nginx split_clients takes at most two decimals' % (pool, value))
    return share.quantize(CENT)


def normalise_weights(weights, pools):
    """``{pool: Decimal}`` for every pool (pools not named get 0); the shares must add up to exactly 100."""
    if not isinstance(weights, dict) or not weights:
        raise SplitConfigError('weights must map pool names to percentages, e.g. {blue: 90, green: 10}')
    unknown = sorted(set(weights) - set(pools))
    if unknown:
        raise SplitConfigError('weights name unknown pool(s) %s; pools are %s' % (', '.join(unknown), ', '.join(sorted(pools))))
    shares = dict((pool, parse_percentage(weights.get(pool, 0), pool)) for pool in pools)
    total = sum(shares.values())
    if total != HUNDRED:
        raise SplitConfigError('weights add up to %s%%, they must add up to exactly 100%% (%s)' % (
            format_share(total), describe_weights(shares)))
    return shares


def weights_for_active(active, pools):
    if active not in pools:
        raise SplitConfigError('active pool %r is not one of the pools (%s)' % (active, ', '.join(sorted(pools))))
    return dict((pool, HUNDRED if pool == active else decimal.Decimal(0)) for pool in pools)


def format_share(share):
    text = format(share.quantize(CENT), 'f')
    return text.rstrip('0').rstrip('.') if '.' in text else text


def share_number(share):
    """A share as JSON-friendly number: 10 rather than 10.00, 12.5 as a float."""
    return int(share) if share == share.to_integral_value() else float(share)


def describe_weights(shares):
    return ', '.join('%s %s%%' % (pool, format_share(shares[pool])) for pool in sorted(shares))


def active_pool(shares):
    """The pool that takes all weighted traffic, or None during a split."""
    full = [pool for pool, share in shares.items() if share == HUNDRED]
    return full[0] if full else None


def bucket_order(shares, canary=None):
    """Pools with a share above 0, the canary first and the others by name (0 % buckets are invalid in nginx).

    The order must not depend on the shares themselves: a stable order means raising a share only
    moves bucket boundaries outward from the front, so the canary's existing clients stay on it.
    """
    if canary is not None and canary not in shares:
        raise SplitConfigError('canary pool %r is not one of the pools (%s)' % (canary, ', '.join(sorted(shares))))
    order = ([canary] if canary else []) + sorted(pool for pool in shares if pool != canary)
    return [(pool, shares[pool]) for pool in order if shares[pool] > 0]


# --- overrides and split key ---------------------------------------------------------------------

def check_split_key(key):
    if not isinstance(key, str) or not SPLIT_KEY_RE.match(key) or not VARIABLE_RE.search(key):
        raise SplitConfigError('split_key %r must be an nginx string with at least one variable, e.g. $remote_addr, '
                               '$cookie_uid or $arg_userId (letters, digits and $_{}.:/@=,+- only)' % (key,))
    return key


def header_variable(header):
    if not isinstance(header, str) or not HEADER_RE.match(header):
        raise SplitConfigError('force_header %r must be a header name such as X-Release-Pool' % (header,))
    return 'http_' + header.lower().replace('-', '_')


def cookie_variable(cookie):
    if not isinstance(cookie, str) or not COOKIE_RE.match(cookie):
        raise SplitConfigError('force_cookie %r must be a cookie name of letters, digits and _ '
                               '(nginx cannot read other cookie names into a variable)' % (cookie,))
    return 'cookie_' + cookie


# --- the routing as one value --------------------------------------------------------------------

class SplitRouting(object):
    """Everything the include says, checked; build it with :func:`build_routing`."""

    def __init__(self, app, pools, shares, split_key, force_header=None, force_cookie=None, canary=None):
        self.app = app
        self.pools = pools
        self.shares = shares
        self.split_key = split_key
        self.force_header = force_header
        self.force_cookie = force_cookie
        self.canary = canary
        self.buckets = bucket_order(shares, canary)

    @property
    def active(self):
        return active_pool(self.shares)

    def weights(self):
        return dict((pool, share_number(share)) for pool, share in self.shares.items())

    def summary(self):
        return dict(app=self.app, weights=self.weights(), active=self.active, split_key=self.split_key,
                    force_header=self.force_header, force_cookie=self.force_cookie, canary=self.canary)


def build_routing(app, pools, active=None, weights=None, split_key='$remote_addr', force_header=None,
                  force_cookie=None, canary=None):
    """Check every input and return a :class:`SplitRouting`; raises :class:`SplitConfigError` naming the fault."""
    check_name(app, 'name')
    pools = normalise_pools(pools)
    if (active is None) == (weights is None):
        raise SplitConfigError('give exactly one of active (blue-green) or weights (canary split)')
    shares = weights_for_active(active, pools) if active is not None else normalise_weights(weights, pools)
    if force_header is not None:
        header_variable(force_header)
    if force_cookie is not None:
        cookie_variable(force_cookie)
    return SplitRouting(app, pools, shares, check_split_key(split_key), force_header, force_cookie, canary)


# --- rendering -----------------------------------------------------------------------------------

def render_server(server):
    words = [server['address']]
    for key in ('weight', 'max_fails', 'fail_timeout'):
        if key in server:
            words.append('%s=%s' % (key, server[key]))
    words.extend(flag for flag in ('backup', 'down') if server.get(flag))
    return '    server %s;' % ' '.join(words)


def render_upstreams(routing):
    blocks = []
    for pool in sorted(routing.pools):
        lines = ['upstream %s {' % upstream_name(routing.app, pool)]
        lines.extend(render_server(server) for server in routing.pools[pool])
        lines.append('}')
        blocks.append('\n'.join(lines))
    return blocks


def render_split(routing, variable):
    lines = ['# Buckets are handed out in this order over the hash range: the canary comes first, so raising',
             '# its share only adds clients to it and sticky clients stay where they were.',
             'split_clients "%s" $%s {' % (routing.split_key, variable)]
    last = len(routing.buckets) - 1
    for index, (pool, share) in enumerate(routing.buckets):
        # The last bucket takes the remainder as "*": it covers exactly what the shares leave over.
        amount = '*' if index == last else '%s%%' % format_share(share)
        lines.append('    %-8s %s;' % (amount, upstream_name(routing.app, pool)))
    lines.append('}')
    return '\n'.join(lines)


def render_override(routing, source, variable, fallback, why):
    lines = ['# %s' % why, 'map $%s $%s {' % (source, variable), '    default %s;' % fallback]
    lines.extend('    %-12s %s;' % (pool, upstream_name(routing.app, pool)) for pool in sorted(routing.pools))
    lines.append('}')
    return '\n'.join(lines)


def render_pool_names(routing):
    app = routing.app
    lines = ['map $%s $%s {' % (routing_variable(app), pool_name_variable(app)), '    default "";']
    lines.extend('    %-20s %s;' % (upstream_name(app, pool), pool) for pool in sorted(routing.pools))
    lines.append('}')
    return '\n'.join(lines)


def log_format_fields(routing):
    """The shared JSON access-log fields, in order; numbers stay unquoted so readers get numbers."""
    return [('time', '"$time_iso8601"'), ('msec', '$msec'), ('app', '"%s"' % routing.app),
            ('pool', '"$%s"' % pool_name_variable(routing.app)), ('upstream_addr', '"$upstream_addr"'),
            ('status', '$status'), ('upstream_status', '"$upstream_status"'), ('request_time', '$request_time'),
            ('upstream_response_time', '"$upstream_response_time"'), ('method', '"$request_method"'),
            ('uri', '"$uri"'), ('split_key', '"%s"' % routing.split_key)]


def render_log_format(routing):
    body = ','.join('"%s":%s' % (key, value) for key, value in log_format_fields(routing))
    return "log_format %s escape=json '{%s}';" % (log_format_name(routing.app), body)


def render_state_line(routing):
    return STATE_PREFIX + json.dumps(routing.summary(), sort_keys=True)


def render(routing):
    """The whole include file for ``routing``, deterministic so unchanged input gives identical bytes."""
    app = routing.app
    route = routing_variable(app)
    header = ['# Managed by saferelease.core.nginx_split; a manual edit is overwritten on the next run.',
              render_state_line(routing),
              '# Routing for %s: %s (split key %s).' % (app, describe_weights(routing.shares), routing.split_key),
              '# A server block proxies with `proxy_pass http://$%s;` and adds, in the server or location:' % route]
    header.extend('#   ' + line for line in server_directives(app, '<log file>'))
    header.append('# (its file must sort after this one: nginx needs the log_format before access_log uses it)')
    sections = ['\n'.join(header)] + render_upstreams(routing)
    chain = ['%s_pool_by_weight' % app]
    sections.append(render_split(routing, chain[-1]))
    overrides = []
    if routing.force_cookie:
        overrides.append((cookie_variable(routing.force_cookie), '%s_pool_by_cookie' % app,
                          'Cookie %s=<pool> sends a request to that pool.' % routing.force_cookie))
    if routing.force_header:
        overrides.append((header_variable(routing.force_header), '%s_pool_by_header' % app,
                          'Header %s: <pool> sends a request to that pool; it wins over the cookie.' % routing.force_header))
    for index, (source, variable, why) in enumerate(overrides):
        # The last override defines the routing variable itself; each falls back to the one before.
        variable = route if index == len(overrides) - 1 else variable
        sections.append(render_override(routing, source, variable, '$' + chain[-1], why))
        chain.append(variable)
    if not overrides:
        sections.append('map $%s $%s {\n    default $%s;\n}' % (chain[-1], route, chain[-1]))
    sections.append(render_pool_names(routing))
    sections.append(render_log_format(routing))
    return '\n\n'.join(sections) + '\n'


def read_state(content):
    """The routing summary recorded in an include written by :func:`render`, or None."""
    for line in (content or '').splitlines():
        if line.startswith(STATE_PREFIX):
            try:
                return json.loads(line[len(STATE_PREFIX):])
            except ValueError:
                return None
    return None


UPSTREAM_BLOCK_RE = re.compile(r'^upstream (\S+) \{\n(.*?)^\}', re.M | re.S)


def read_server_line(line):
    """A ``server`` line as :func:`render_server` wrote it, back as the dict :func:`parse_server` gives."""
    words = line.strip().rstrip(';').split()[1:]
    server = dict(address=words[0])
    for word in words[1:]:
        key, equals, value = word.partition('=')
        if not equals:
            server[key] = True
        else:
            server[key] = int(value) if value.isdigit() and key != 'fail_timeout' else value
    return server


def read_routing(content, app):
    """The routing an include written by :func:`render` holds: its state line plus the servers of each
    pool, read back from the upstream blocks (the state line does not list servers)."""
    state = read_state(content)
    if state is None:
        return None
    pools = {}
    prefix = upstream_name(app, '')
    for upstream, body in UPSTREAM_BLOCK_RE.findall(content):
        if upstream.startswith(prefix):
            pools[upstream[len(prefix):]] = [read_server_line(line) for line in body.splitlines()
                                             if line.strip().startswith('server ')]
    return dict(state, pools=pools)


# --- the file on disk ----------------------------------------------------------------------------

def sha256_text(text):
    return hashlib.sha256((text or '').encode('utf-8')).hexdigest()


class IncludeFile(object):
    """The include plus two companions next to it (neither matches ``*.conf``):

    * ``<path>.previous``: the content before the last change (what ``state: restored`` puts back),
      empty when the last change created the file;
    * ``<path>.live``: sha256 of the content nginx last loaded through this module, so a file written
      with ``reload: false`` is known to be pending and the next run reloads it.
    """

    def __init__(self, path):
        self.path = path
        self.previous_path = path + '.previous'
        self.live_path = path + '.live'

    @staticmethod
    def _read(path):
        try:
            with open(path) as handle:
                return handle.read()
        except IOError as exc:
            if exc.errno == 2:
                return None
            raise

    def read(self):
        return self._read(self.path)

    def read_previous(self):
        return self._read(self.previous_path)

    def live_digest(self):
        recorded = self._read(self.live_path)
        return recorded.strip() if recorded else None

    def is_pending(self, content):
        """True when the file's content is known not to be what nginx runs."""
        live = self.live_digest()
        return live is not None and live != sha256_text(content)

    def record_live(self, content):
        self._write_atomic(self.live_path, sha256_text(content) + '\n')

    def snapshot(self):
        """What :meth:`put_back` needs to undo a write: the file, its previous copy and the live record."""
        return dict(content=self.read(), previous=self.read_previous(), live=self._read(self.live_path))

    def write(self, content):
        """Keep the current content as ``.previous``, then replace the file atomically."""
        current = self.read()
        if self.live_digest() is None:
            # Without a record, the content found is what nginx runs; note it so a write without
            # reload is recognised as pending later.
            self.record_live(current)
        # An empty previous file stands for "no file": nginx reads an empty include as nothing at all.
        self._write_atomic(self.previous_path, current or '')
        self._write_atomic(self.path, content)

    def put_back(self, snapshot):
        for path, content in ((self.path, snapshot['content']), (self.previous_path, snapshot['previous']),
                              (self.live_path, snapshot['live'])):
            if content is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                self._write_atomic(path, content)

    @staticmethod
    def _write_atomic(path, content):
        directory = os.path.dirname(os.path.abspath(path))
        mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644
        # A hidden temporary name that no include glob such as *.conf can pick up half-written.
        fd, temporary = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
        try:
            with os.fdopen(fd, 'w') as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, mode)
            os.rename(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def resolve_path(path, app):
    """``path`` itself, or ``<path>/<app>_split.conf`` when ``path`` is an existing directory."""
    return os.path.join(path, default_file_name(app)) if os.path.isdir(path) else path


# --- switching -----------------------------------------------------------------------------------

def plan(include, content, reload=True, force_reload=False):
    """What a switch to ``content`` would do, without doing it."""
    before = include.read()
    write = before != content
    pending = include.is_pending(content)
    # Known live content decides (putting back what nginx already runs needs no reload); unknown: any write does.
    differs_from_live = pending if include.live_digest() is not None else write
    do_reload = bool(reload and (differs_from_live or force_reload))
    return dict(before=before, write=write, pending=pending, reload=do_reload,
                changed=write or do_reload,
                diff=dict(before=before or '', after=content, before_header=include.path, after_header=include.path))


def switch(include, content, runner, validate=True, reload=True, force_reload=False, check_mode=False, reload_timeout=10.0):
    """Put ``content`` live: write (keeping the previous file), ``nginx -t``, reload and confirm.

    Returns ``dict(changed, written, validated, reloaded, pending, backup_file, diff, nginx)``. Raises
    :class:`SwitchError` after putting the previous file back; nginx then still runs the old routing.
    """
    steps = plan(include, content, reload, force_reload)
    result = dict(changed=steps['changed'], written=False, validated=False, reloaded=False,
                  backup_file=include.previous_path if steps['write'] else None,
                  pending=steps['pending'], diff=steps['diff'], nginx={})
    if check_mode or not steps['changed']:
        return result
    if steps['reload']:
        _require_running(runner, include)
    snapshot = include.snapshot()
    try:
        if steps['write']:
            include.write(content)
            result['written'] = True
        if validate:
            result['nginx']['test'] = runner.test()
            result['validated'] = True
        if steps['reload']:
            result['nginx']['reload'] = runner.reload(timeout=reload_timeout)
            include.record_live(content)
            result['reloaded'] = True
            result['pending'] = False
        else:
            result['pending'] = include.is_pending(content)
    except Exception as exc:  # anything at all: the file must not stay half-switched
        if steps['write']:
            include.put_back(snapshot)
        raise SwitchError(_failure_message(exc, include, steps['write']), result)
    return result


def _require_running(runner, include):
    try:
        runner.master_pid()
    except Exception as exc:
        raise SwitchError('nginx is not running, so the new routing could not be made live: %s. Nothing was changed '
                          '(%s is as it was). Start nginx, or run with reload: false to only write and validate.'
                          % (exc, include.path))


def _failure_message(exc, include, written):
    if written:
        file_state = 'The previous file was put back at %s' % include.path
    else:
        file_state = '%s was not changed by this run' % include.path
    step = getattr(exc, 'step', None)
    if step == 'test':
        return ('nginx -t refused the new routing: %s\n%s and nothing was reloaded: nginx keeps serving the routing it had. '
                'Fix the input (pools, addresses, weights) and run again.' % (exc, file_state))
    if step == 'reload':
        return ('nginx did not take the new configuration: %s\n%s: nginx keeps serving the routing it had. Check that '
                'nginx_conf and nginx_prefix name the running nginx, and see its error log.' % (exc, file_state))
    return 'Switching the routing failed: %s\n%s.' % (exc, file_state)
