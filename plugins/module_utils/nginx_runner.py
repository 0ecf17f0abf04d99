# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one runner for the nginx binary: ``-t``, ``-T``, ``-V``, ``-s reload`` and the reload check.

Every command is ``nginx [-p prefix] [-c conf] ...`` so that tests, reloads and the pid file all
refer to the same instance. A reload is only reported done once the master has started worker
processes that were not there before (the master forks new workers only after it parsed and
applied the new configuration; a rejected reload leaves the old workers alone) and every old
worker has stopped accepting (it exited or calls itself "shutting down").
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import subprocess
import time

# A directive starts a line or follows the end of another directive or the opening of a block.
PID_RE = re.compile(r'(?:^|[;{])\s*pid\s+("[^"]+"|\'[^\']+\'|[^;\s]+)\s*;', re.M)
ERROR_LOG_RE = re.compile(r'(?:^|[;{])\s*error_log\s+("[^"]+"|\'[^\']+\'|[^;\s]+)', re.M)
VERSION_RE = re.compile(r'nginx version: (\S+)')
CONFIGURE_RE = re.compile(r'--([a-z-]+)=(\S+)')


class NginxError(Exception):
    """An nginx command failed; ``step`` is test, reload, pid or run; ``output`` is what nginx said."""

    def __init__(self, message, step='run', output=''):
        super(NginxError, self).__init__(message)
        self.message = message
        self.step = step
        self.output = output

    def __str__(self):
        return self.message


def strip_comments(config_text):
    return '\n'.join(line.split('#', 1)[0] for line in config_text.splitlines())


def parse_version(text):
    match = VERSION_RE.search(text or '')
    return match.group(1) if match else None


def parse_configure(text):
    """``--prefix=...`` style settings from ``nginx -V`` as a dict (``pid-path``, ``prefix``, ...)."""
    return dict(CONFIGURE_RE.findall(text or ''))


def _unquote(value):
    return value[1:-1] if value[:1] in ('"', "'") and value[-1:] == value[:1] else value


def parse_pid_path(dump):
    """The ``pid`` directive of an ``nginx -T`` dump (only valid in the main context), or None."""
    match = PID_RE.search(strip_comments(dump or ''))
    return _unquote(match.group(1)) if match else None


def parse_error_log(dump):
    """The first file ``error_log`` of an ``nginx -T`` dump, or None (stderr and syslog are no files)."""
    for value in ERROR_LOG_RE.findall(strip_comments(dump or '')):
        value = _unquote(value)
        if value != 'stderr' and not value.startswith(('syslog:', 'memory:')):
            return value
    return None


def process_children(parent):
    """Pids of the live (not zombie) children of ``parent``, from /proc."""
    children = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except (IOError, OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(parent) and fields[0] != 'Z':
            children.add(int(entry))
    return children


def process_title(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
    except (IOError, OSError):
        return ''


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == 1  # EPERM: alive, owned by someone else
    return True


class NginxRunner(object):
    """Runs one nginx instance's binary with its prefix and main configuration."""

    def __init__(self, binary='nginx', conf=None, prefix=None, timeout=60):
        self.binary = binary
        self.conf = conf
        self.prefix = prefix
        self.timeout = timeout
        self._configure = None

    def argv(self, *args):
        command = [self.binary]
        if self.prefix:
            command += ['-p', self.prefix]
        if self.conf:
            command += ['-c', self.conf]
        return command + list(args)

    def run(self, *args, **kwargs):
        step = kwargs.get('step', 'run')
        try:
            done = subprocess.run(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=self.timeout,
                                  env=dict(os.environ, LC_ALL='C'), check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise NginxError('cannot run %s: %s' % (self.binary, exc), step)
        stdout = done.stdout.decode('utf-8', 'replace')
        stderr = done.stderr.decode('utf-8', 'replace').strip()
        if done.returncode != 0:
            raise NginxError(stderr or 'nginx %s exited with %d' % (' '.join(args), done.returncode), step, stderr)
        return stdout, stderr

    # --- what the binary and the configuration say ----------------------------------------------

    def configure(self):
        """``nginx -V``: version and build settings (prefix, default pid path, ...)."""
        if self._configure is None:
            _stdout, stderr = self.run('-V')
            self._configure = dict(parse_configure(stderr), version=parse_version(stderr))
        return self._configure

    def version(self):
        return self.configure().get('version')

    def test(self):
        """``nginx -t``: nginx's own verdict; raises :class:`NginxError` (step ``test``) with its message."""
        _stdout, stderr = self.run('-t', step='test')
        return stderr

    def dump(self):
        """``nginx -T``: the full configuration nginx would load (also a syntax test)."""
        stdout, _stderr = self.run('-T', '-q', step='test')
        return stdout

    def _absolute(self, path):
        if os.path.isabs(path):
            return path
        return os.path.join(self.prefix or self.configure().get('prefix', '/'), path)

    def locations(self):
        """``(pid_file, error_log)`` of the configuration, from one ``nginx -T``; error_log may be None."""
        dump = self.dump()
        pid_file = self._absolute(parse_pid_path(dump) or self.configure().get('pid-path', 'logs/nginx.pid'))
        error_log = parse_error_log(dump)
        return pid_file, (self._absolute(error_log) if error_log else None)

    # --- the running instance --------------------------------------------------------------------

    def master_pid(self, pid_file=None):
        pid_file = pid_file or self.locations()[0]
        try:
            with open(pid_file) as handle:
                pid = int(handle.read().strip())
        except (IOError, OSError, ValueError) as exc:
            raise NginxError('no nginx master pid in %s (%s)' % (pid_file, getattr(exc, 'strerror', None) or exc), 'pid')
        if not pid_alive(pid):
            raise NginxError('nginx master %d from %s is not running' % (pid, pid_file), 'pid')
        return pid

    def workers(self, master):
        return process_children(master)

    def reload(self, timeout=10.0, poll=0.05):
        """Graceful reload, then wait until it demonstrably took effect.

        Returns ``dict(master, old_workers, new_workers, seconds)``; raises :class:`NginxError`
        (step ``reload``) with the error log lines nginx wrote meanwhile when it did not.
        """
        pid_file, error_log = self.locations()
        master = self.master_pid(pid_file)
        old = self.workers(master)
        log_offset = _file_size(error_log)
        started = time.monotonic()
        self.run('-s', 'reload', step='reload')
        deadline = started + timeout
        while time.monotonic() < deadline:
            current = self.workers(master)
            new = current - old
            if new and all(pid not in current or 'shutting down' in process_title(pid) for pid in old):
                return dict(master=master, old_workers=sorted(old), new_workers=sorted(new),
                            seconds=round(time.monotonic() - started, 3))
            if not pid_alive(master):
                break
            time.sleep(poll)
        said = _read_from(error_log, log_offset)
        raise NginxError('nginx (master %d) started no new worker process within %.0fs after the reload signal, so it '
                         'still runs its previous configuration%s' % (
                             master, timeout, ('; its error log says: %s' % said) if said else ''), 'reload', said)


def _file_size(path):
    try:
        return os.path.getsize(path) if path else None
    except OSError:
        return None


def _read_from(path, offset, limit=2000):
    if not path or offset is None:
        return ''
    try:
        with open(path, 'rb') as handle:
            handle.seek(offset)
            return handle.read()[-limit:].decode('utf-8', 'replace').strip()
    except (IOError, OSError):
        return ''
