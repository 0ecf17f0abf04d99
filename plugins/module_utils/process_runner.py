# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The runners for the process managers health_gate asks: pm2 and systemctl.

Every pm2 and systemctl command line is composed here, run without a shell, with a timeout and in
the C locale (their answers are parsed). Both runners only ask; none of them changes a process.

pm2 starts its daemon on the first command it is given, so :class:`Pm2Runner` looks for a live
daemon (``$PM2_HOME/pm2.pid``) before it runs ``pm2 jlist``: a gate must not leave a new, empty
pm2 daemon behind when the one it should ask is down.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import subprocess


class ProcessToolError(Exception):
    """pm2 or systemctl could not give an answer; the message says why and what to check."""


def pid_alive(pid):
    """Whether ``pid`` is a running process (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, it is just not ours
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[-1].split()[0] != 'Z'
    except (OSError, IndexError):
        return True  # no /proc to ask: kill(0) said it exists


def read_pid_file(path):
    """The pid written in ``path``, or None when the file is missing or holds no number."""
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def run_tool(argv, environ=None, timeout=15):
    """``(returncode, stdout, stderr)`` of ``argv``; a missing binary is 127 and a timeout 124, as in a shell."""
    env = dict(os.environ, LC_ALL='C')
    env.update(environ or {})
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except OSError as exc:
        return 127, '', '%s: %s' % (argv[0], exc.strerror)
    except subprocess.TimeoutExpired:
        return 124, '', '%s did not answer within %ss' % (' '.join(argv), timeout)
    return done.returncode, done.stdout, done.stderr


def first_line(text):
    lines = (text or '').strip().splitlines()
    return lines[0].strip() if lines else ''


def parse_jlist(output):
    """The process list ``pm2 jlist`` printed.

    When pm2 had to start its daemon first it prints a banner and coloured ``[PM2]`` lines before
    the JSON, so the list is the last line that parses as a JSON array.
    """
    for line in reversed((output or '').splitlines()):
        line = line.strip()
        if line.startswith('['):
            try:
                processes = json.loads(line)
            except ValueError:
                continue
            if isinstance(processes, list):
                return processes
    raise ProcessToolError('pm2 jlist printed no process list: %r' % (output or '')[-200:])


def pm2_instances(processes, name):
    """The instances of app ``name`` (several in cluster mode), with the figures a gate reports."""
    instances = []
    for process in processes:
        if process.get('name') != name:
            continue
        env = process.get('pm2_env') or {}
        instances.append(dict(pm_id=process.get('pm_id'), pid=process.get('pid'), status=env.get('status'),
                              restarts=int(env.get('restart_time') or 0),
                              unstable_restarts=int(env.get('unstable_restarts') or 0)))
    return instances


class Pm2Runner(object):
    """``pm2`` for one daemon, chosen by ``pm2_home`` (default: ``$PM2_HOME``, else ``~/.pm2`` as pm2 does)."""

    def __init__(self, binary='pm2', pm2_home=None, timeout=15):
        self.binary = binary
        self.home = pm2_home or os.environ.get('PM2_HOME') or os.path.join(os.path.expanduser('~'), '.pm2')
        self.timeout = timeout

    def daemon_pid(self):
        pid = read_pid_file(os.path.join(self.home, 'pm2.pid'))
        return pid if pid and pid_alive(pid) else None

    def jlist(self):
        """Every process the daemon manages (``pm2 jlist``); ProcessToolError when there is no answer."""
        if self.daemon_pid() is None:
            raise ProcessToolError('the pm2 daemon of PM2_HOME=%s is not running (no live pid in pm2.pid), so no app '
                                   'is online; start the app with pm2 or set pm2_home to the daemon that runs it' % self.home)
        code, out, err = run_tool([self.binary, 'jlist'], {'PM2_HOME': self.home}, self.timeout)
        if code != 0:
            raise ProcessToolError('pm2 jlist failed (exit %d): %s' % (code, first_line(err) or first_line(out)))
        return parse_jlist(out)


class SystemctlRunner(object):
    """``systemctl`` of the host's service manager."""

    def __init__(self, binary='systemctl', timeout=15):
        self.binary = binary
        self.timeout = timeout

    def is_active(self, unit):
        """The unit's state word (``active``, ``activating``, ``failed``, ``inactive`` ...).

        ``systemctl is-active`` exits non-zero for every state but ``active`` and still prints the
        state; when it prints none, systemd itself did not answer (e.g. not booted with systemd).
        """
        code, out, err = run_tool([self.binary, 'is-active', unit], timeout=self.timeout)
        state = first_line(out)
        if state and ' ' not in state:
            return state
        raise ProcessToolError('systemctl is-active %s gave no state (exit %d): %s' % (unit, code, first_line(err) or 'no output'))
