# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks besides HTTP, and the gate that polls them all.

Each check is a small object with ``run()`` returning ``{name, passed, msg, ...figures}``, so the
gate can poll them together and report every figure. A result with ``final: true`` is a failure
that waiting cannot undo (a forbidden line was logged); the gate stops at it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import decimal
import math
import os
import re
import socket
import time

from ansible_collections.saferelease.core.plugins.module_utils.database import DatabaseError, describe_error
from ansible_collections.saferelease.core.plugins.module_utils.process_runner import (
    ProcessToolError, pid_alive, pm2_instances, read_pid_file)


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
        pid = read_pid_file(self.pid_file)
        if pid is None:
            return result(self.name, False, 'no readable pid in %s' % self.pid_file, pid=None)
        if not pid_alive(pid):
            return result(self.name, False, 'pid %d from %s is not running' % (pid, self.pid_file), pid=pid)
        return result(self.name, True, 'pid %d is running' % pid, pid=pid)


class Pm2Check(object):
    """Every instance of the pm2 app is ``online`` and none restarted since the previous poll.

    ``pm2 status`` shows a crash-looping app as ``online`` most of the time, with its restart
    counter climbing; so a poll in which the counter rose fails, and consecutive_successes then
    asks for polls without restarts.
    """

    def __init__(self, app, runner):
        self.app, self.runner = app, runner
        self.name = 'process pm2 %s' % app
        self.first_restarts = None
        self.last_restarts = None

    def run(self):
        try:
            instances = pm2_instances(self.runner.jlist(), self.app)
        except ProcessToolError as exc:
            return result(self.name, False, str(exc), instances=0)
        if not instances:
            return result(self.name, False, 'pm2 has no app named %s' % self.app, instances=0)
        states = [i['status'] for i in instances]
        restarts = sum(i['restarts'] for i in instances)
        previous = self.last_restarts
        if self.first_restarts is None:
            self.first_restarts = restarts
        self.last_restarts = restarts
        online = states.count('online')
        figures = dict(instances=len(instances), online=online, restarts=restarts,
                       restarts_during_gate=max(0, restarts - self.first_restarts), pids=[i['pid'] for i in instances])
        if online < len(instances):
            return result(self.name, False, '%d of %d instances online (%s)' % (online, len(instances), ', '.join(states)),
                          **figures)
        if previous is not None and restarts > previous:
            return result(self.name, False, 'restarted %d time(s) since the previous poll (%d during the gate): '
                          'online, but not staying up' % (restarts - previous, figures['restarts_during_gate']), **figures)
        return result(self.name, True, '%d of %d instances online' % (online, len(instances)), **figures)


class SystemdCheck(object):
    def __init__(self, unit, runner):
        self.unit, self.runner = unit, runner
        self.name = 'process systemd %s' % unit

    def run(self):
        try:
            state = self.runner.is_active(self.unit)
        except ProcessToolError as exc:
            return result(self.name, False, str(exc), state=None)
        return result(self.name, state == 'active', 'unit is %s' % state, state=state)


class ForbiddenLogLines(object):
    """Regexes that must not appear in lines written to ``path`` after ``offset`` (runbook 002's
    "skipping migration"). Reads only what is new on each call, so it can run during a whole gate.

    Without an offset it starts at the file's size when the gate begins. A file that shrank or was
    replaced (log rotation) is read again from its start.
    """

    def __init__(self, path, patterns, offset=None):
        self.path = path
        self.patterns = [re.compile(p) for p in patterns]
        self.name = 'log_file %s' % path
        size, self.inode = self._stat()
        self.offset = size if offset is None else int(offset)
        self.start_offset = self.offset
        self.matches = []
        self._partial = ''

    def _stat(self):
        try:
            stat = os.stat(self.path)
        except OSError:
            return 0, None
        return stat.st_size, stat.st_ino

    def _read_new_text(self):
        size, inode = self._stat()
        if inode != self.inode or size < self.offset:
            self.offset, self.inode, self._partial = 0, inode, ''
        with open(self.path, 'rb') as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        self.offset += len(chunk)
        lines = (self._partial + chunk.decode('utf-8', 'replace')).split('\n')
        self._partial = lines.pop()  # a line still being written is judged once it is complete
        return lines

    def run(self):
        try:
            lines = self._read_new_text()
        except OSError as exc:
            return result(self.name, False, 'cannot read %s: %s' % (self.path, exc.strerror), offset=self.offset,
                          start_offset=self.start_offset, matches=[])
        for line in lines:
            for pattern in self.patterns:
                if pattern.search(line):
                    self.matches.append(dict(pattern=pattern.pattern, line=line[:300]))
        figures = dict(offset=self.offset, start_offset=self.start_offset, matches=self.matches[:20])
        if self.matches:
            first = self.matches[0]
            return result(self.name, False, 'forbidden line /%s/ logged: %s' % (first['pattern'], first['line']),
                          final=True, **figures)
        return result(self.name, True, 'no forbidden line since offset %d' % self.start_offset, **figures)


# A gate reads; these make the database refuse writes should a query try one.
READ_ONLY_SESSION = {
    'sqlite': 'PRAGMA query_only = ON',
    'mysql': 'SET SESSION TRANSACTION READ ONLY',
    'postgresql': 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
}


class SqlValueCheck(object):
    """A query whose first column of the first row must equal ``expect`` (e.g. 0 orphan rows),
    run in a read-only session."""

    def __init__(self, query, expect, target, connect, name=None):
        self.query, self.expect, self.target, self.connect = query, expect, target, connect
        self.name = 'sql %s' % (name or query[:60])

    def run(self):
        try:
            conn = self.connect()
        except DatabaseError as exc:
            return result(self.name, False, 'cannot connect: %s' % exc, value=None)
        try:
            cur = conn.cursor()
            cur.execute(READ_ONLY_SESSION[self.target.engine])
            cur.execute(self.query)
            row = cur.fetchone()
            cur.close()
        except Exception as exc:  # each driver raises its own error classes; the message is what matters
            return result(self.name, False, 'query failed: %s' % describe_error(self.target, exc), value=None)
        finally:
            conn.close()
        value = plain_value(row[0]) if row else None
        passed = same_value(value, self.expect)
        return result(self.name, passed, 'value %r, expected %r' % (value, self.expect), value=value)


def same_value(value, expected):
    """Equal, or equal as text: YAML gives ``0`` where a driver returns ``Decimal('0')`` or ``'0'``."""
    return value == expected or str(value) == str(expected)


def plain_value(value):
    """Decimal and float results (SUM(), COUNT(*) on some drivers) as plain numbers for the report."""
    if isinstance(value, (float, decimal.Decimal)):
        finite = math.isfinite(value)
        return int(value) if finite and value == int(value) else float(value)
    return value


def failed_summary(results):
    """``name: why`` for every failed check, the way the gate's message names them."""
    return '; '.join('%s: %s' % (r['name'], r['msg']) for r in results if not r['passed'])


class Gate(object):
    """Polls the checks every ``interval`` seconds (a fixed rate: a slow poll does not push the
    next ones back) until they pass ``needed`` times in a row; ``observe`` keeps polling and stops
    at the first failure. ``last`` holds the results of the latest poll."""

    def __init__(self, checks, interval, clock=time.monotonic, sleep=time.sleep):
        self.checks = checks
        self.interval = float(interval)
        self.clock, self.sleep = clock, sleep
        self.attempts = 0
        self.last = []

    def poll(self):
        self.attempts += 1
        self.last = [check.run() for check in self.checks]
        return all(r['passed'] for r in self.last)

    def final_failure(self):
        return any(r.get('final') and not r['passed'] for r in self.last)

    def _wait_for_tick(self, tick, deadline):
        """Sleep until ``tick`` and return it; None when it falls after ``deadline``. After an overrun poll the
        next one starts at once."""
        tick = max(tick, self.clock())
        if tick > deadline:
            return None
        self.sleep(max(0.0, tick - self.clock()))
        return tick

    def wait_until_healthy(self, needed, wait_timeout):
        """``'passed'``, ``'final'`` (a failure waiting cannot undo) or ``'timeout'``."""
        started = tick = self.clock()
        deadline = started + wait_timeout
        streak = 0
        while True:
            streak = streak + 1 if self.poll() else 0
            if streak >= needed:
                return 'passed'
            if self.final_failure():
                return 'final'
            tick = self._wait_for_tick(tick + self.interval, deadline)
            if tick is None:
                return 'timeout'

    def observe(self, duration):
        """True when every poll during ``duration`` seconds passed."""
        tick = self.clock()
        deadline = tick + duration
        while True:
            tick = self._wait_for_tick(tick + self.interval, deadline)
            if tick is None:
                return True
            if not self.poll():
                return False
