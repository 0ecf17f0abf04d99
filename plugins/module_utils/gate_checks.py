# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks besides HTTP: process managers, TCP ports, file sizes, log lines and SQL values.

Each check is a small object with ``run()`` returning ``{name, passed, msg, ...figures}``, so the
gate can poll them together and report every figure.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import socket
import subprocess


def result(name, passed, msg, **figures):
    figures.update(name=name, passed=bool(passed), msg=msg)
    return figures


class TcpCheck(object):
    def __init__(self, host, port, timeout=2.0):
        self.host, self.port, self.timeout = host, int(port), timeout
        self.name = 'tcp %s:%d' % (host, self.port)

    def run(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                return result(self.name, True, 'accepts connections')
        except (OSError, socket.timeout) as exc:
            return result(self.name, False, 'cannot connect: %s' % (exc.strerror or exc))


class FileMinSizeCheck(object):
    """Runbook 002: a database file that exists but holds 0 bytes means migrations never ran."""

    def __init__(self, path, min_bytes):
        self.path, self.min_bytes = path, int(min_bytes)
        self.name = 'file_min_size %s' % path

    def run(self):
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return result(self.name, False, '%s does not exist' % self.path, size_bytes=None)
        if size < self.min_bytes:
            return result(self.name, False, '%s is %d bytes, expected at least %d' % (self.path, size, self.min_bytes),
                          size_bytes=size)
        return result(self.name, True, '%d bytes' % size, size_bytes=size)


class PidFileCheck(object):
    def __init__(self, pid_file):
        self.pid_file = pid_file
        self.name = 'process pid_file %s' % pid_file

    def run(self):
        try:
            with open(self.pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return result(self.name, False, 'no readable pid in %s' % self.pid_file)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return result(self.name, False, 'pid %d from %s is not running' % (pid, self.pid_file), pid=pid)
        except PermissionError:
            pass
        return result(self.name, True, 'pid %d is running' % pid, pid=pid)


class CommandRunner(object):
    """Runs one external tool (pm2, systemctl) with a timeout; never through a shell."""

    def __init__(self, binary, environ=None, timeout=15):
        self.binary, self.environ, self.timeout = binary, environ, timeout

    def run(self, *args):
        env = dict(os.environ)
        env.update(self.environ or {})
        try:
            done = subprocess.run([self.binary] + list(args), capture_output=True, text=True, timeout=self.timeout,
                                  env=env, check=False)
        except OSError as exc:
            return 127, '', '%s: %s' % (self.binary, exc.strerror)
        except subprocess.TimeoutExpired:
            return 124, '', '%s %s did not answer within %ss' % (self.binary, ' '.join(args), self.timeout)
        return done.returncode, done.stdout, done.stderr


class Pm2Check(object):
    """The pm2 app is ``online`` in ``pm2 jlist`` (every instance of it, for cluster mode)."""

    def __init__(self, app, runner):
        self.app, self.runner = app, runner
        self.name = 'process pm2 %s' % app

    def run(self):
        code, out, err = self.runner.run('jlist')
        if code != 0:
            return result(self.name, False, 'pm2 jlist failed: %s' % (err.strip() or code))
        try:
            processes = json.loads(out[out.find('['):]) if '[' in out else []
        except ValueError:
            return result(self.name, False, 'pm2 jlist printed no JSON')
        states = [p.get('pm2_env', {}).get('status') for p in processes if p.get('name') == self.app]
        if not states:
            return result(self.name, False, 'pm2 has no app named %s' % self.app, instances=0)
        online = states.count('online')
        passed = online == len(states)
        return result(self.name, passed, '%d of %d instances online (%s)' % (online, len(states), ', '.join(states)),
                      instances=len(states), online=online)


class SystemdCheck(object):
    def __init__(self, unit, runner):
        self.unit, self.runner = unit, runner
        self.name = 'process systemd %s' % unit

    def run(self):
        code, out, err = self.runner.run('is-active', self.unit)
        state = out.strip() or err.strip()
        return result(self.name, code == 0 and state == 'active', 'unit is %s' % state, state=state)


class ForbiddenLogLines(object):
    """Regexes that must not appear in lines written to ``path`` after ``offset`` (runbook 002's
    "skipping migration"). Reads only what is new on each call, so it can run during a whole gate."""

    def __init__(self, path, patterns, offset=None):
        self.path = path
        self.patterns = [re.compile(p) for p in patterns]
        self.name = 'log_file %s' % path
        self.offset = self._size() if offset is None else int(offset)
        self.start_offset = self.offset
        self.matches = []
        self._partial = ''

    def _size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def run(self):
        if self._size() < self.offset:  # rotated or truncated: read the new file from its start
            self.offset, self._partial = 0, ''
        try:
            with open(self.path, 'rb') as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError as exc:
            return result(self.name, False, 'cannot read %s: %s' % (self.path, exc.strerror), offset=self.offset)
        self.offset += len(chunk)
        lines = (self._partial + chunk.decode('utf-8', 'replace')).split('\n')
        self._partial = lines.pop()
        for line in lines:
            for pattern in self.patterns:
                if pattern.search(line):
                    self.matches.append(dict(pattern=pattern.pattern, line=line[:300]))
        if self.matches:
            first = self.matches[0]
            return result(self.name, False, 'forbidden line /%s/ logged: %s' % (first['pattern'], first['line']),
                          matches=self.matches[:20], offset=self.offset, start_offset=self.start_offset)
        return result(self.name, True, 'no forbidden line since offset %d' % self.start_offset, offset=self.offset,
                      start_offset=self.start_offset)


class SqlValueCheck(object):
    """A query whose first column of the first row must equal ``expect`` (e.g. 0 orphan rows)."""

    def __init__(self, query, expect, connect, name=None):
        self.query, self.expect, self.connect = query, expect, connect
        self.name = 'sql %s' % (name or query[:60])

    def run(self):
        try:
            conn = self.connect()
        except Exception as exc:  # driver errors differ per engine; the message is what matters
            return result(self.name, False, 'cannot connect: %s' % exc)
        try:
            cur = conn.cursor()
            cur.execute(self.query)
            row = cur.fetchone()
            cur.close()
        except Exception as exc:
            return result(self.name, False, 'query failed: %s' % exc)
        finally:
            conn.close()
        value = row[0] if row else None
        passed = _same_value(value, self.expect)
        return result(self.name, passed, 'value %r, expected %r' % (value, self.expect), value=_plain(value))


def _same_value(value, expected):
    if value == expected:
        return True
    return str(_plain(value)) == str(expected)


def _plain(value):
    if hasattr(value, 'is_integer'):  # Decimal/float from COUNT(*) on some drivers
        return int(value) if value == int(value) else float(value)
    return value
