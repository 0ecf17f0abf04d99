# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runners for the external dump, restore and compression tools.

One runner per tool family composes every argument vector in one place:

* :class:`MysqlTools` - ``mariadb-dump``/``mysqldump`` and the ``mariadb``/``mysql`` client;
* :class:`PostgresTools` - ``pg_dump``, ``pg_restore`` and ``psql``;
* :class:`Compressor` - ``zstd`` (multi-threaded), ``gzip`` (``pigz`` when present) or nothing.

Secrets never reach an argument vector or the environment of this process: :class:`SecretDir`
writes them into 0600 files inside a private 0700 directory (in ``/dev/shm`` when it exists, so
they never touch a disk) that is removed when the work is done. MariaDB tools read them through
``--defaults-extra-file`` (always the first argument); libpq tools through ``PGPASSFILE`` in the
child's environment only.

:func:`stream_to_file` runs ``producer | compressor`` and reads the compressed stream once,
hashing it (SHA-256) and writing it in the same pass. :func:`stream_from_file` feeds a stored
dump back through the decompressor into a restore tool.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

CHUNK = 1024 * 1024
SECRET_PREFIX = 'saferelease-secret-'


class ToolError(Exception):
    """An external tool is missing or failed; ``message`` says what to do next."""

    def __init__(self, message, returncode=None, stderr=None):
        super(ToolError, self).__init__(message)
        self.message = message
        self.returncode = returncode
        self.stderr = stderr

    def __str__(self):
        return self.message


class OutOfSpaceError(ToolError):
    """The destination filesystem ran out of space while writing."""


def find_tool(names, extra_globs=()):
    """The absolute path of the first of ``names`` found on PATH (or in ``extra_globs``), else None."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for pattern in extra_globs:
        for candidate in sorted(glob.glob(pattern), reverse=True):
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def tool_version(path):
    """The first line ``path --version`` prints (no secrets involved)."""
    try:
        proc = subprocess.run([path, '--version'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return 'unknown (%s)' % exc
    lines = proc.stdout.decode('utf-8', 'replace').strip().splitlines()
    return lines[0].strip() if lines else 'unknown'


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def remove_stale_secret_dirs():
    """Remove secret directories left behind by runs that were killed (their pid is gone)."""
    for base in (_secret_base(), tempfile.gettempdir()):
        if not base:
            continue
        for path in glob.glob(os.path.join(base, SECRET_PREFIX + '*')):
            match = re.match(re.escape(SECRET_PREFIX) + r'(\d+)-', os.path.basename(path))
            if match and not _pid_alive(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)


def _secret_base():
    return '/dev/shm' if os.path.isdir('/dev/shm') and os.access('/dev/shm', os.W_OK) else None


class SecretDir(object):
    """A private 0700 directory holding 0600 credential files; removed on ``close()``."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix='%s%d-' % (SECRET_PREFIX, os.getpid()), dir=_secret_base())
        os.chmod(self.path, 0o700)
        self._count = 0

    def write(self, stem, text):
        self._count += 1
        path = os.path.join(self.path, '%s-%d' % (stem, self._count))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        return path

    def close(self):
        if self.path and os.path.isdir(self.path):
            shutil.rmtree(self.path, ignore_errors=True)
        self.path = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _child_env(drop=(), extra=None):
    env = dict(os.environ)
    for key in drop:
        env.pop(key, None)
    env.update(extra or {})
    env['LC_ALL'] = 'C'
    return env


def _option_value(value):
    """Quote a value for a MariaDB option file."""
    text = str(value)
    text = text.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n').replace('\r', '\\r').replace('\t', '\\t')
    return '"%s"' % text


def _pgpass_field(value):
    return str(value).replace('\\', '\\\\').replace(':', '\\:')


class MysqlTools(object):
    """``mariadb-dump``/``mysqldump`` and the ``mariadb``/``mysql`` client for one target."""

    DUMP_NAMES = ('mariadb-dump', 'mysqldump')
    CLIENT_NAMES = ('mariadb', 'mysql')

    def __init__(self, target, secrets, dump_bin=None, client_bin=None):
        self.target = target
        self.secrets = secrets
        self.dump_bin = dump_bin or find_tool(self.DUMP_NAMES)
        self.client_bin = client_bin or find_tool(self.CLIENT_NAMES)
        self._defaults = None

    def missing(self, need_dump=True, need_client=True):
        missing = []
        if need_dump and not self.dump_bin:
            missing.append('mariadb-dump or mysqldump')
        if need_client and not self.client_bin:
            missing.append('the mariadb or mysql client')
        return missing

    @property
    def is_mariadb_dump(self):
        return 'mariadb' in tool_version(self.dump_bin).lower() if self.dump_bin else False

    def defaults_file(self):
        """The 0600 option file holding the connection, password included."""
        if self._defaults is None:
            t = self.target
            lines = ['[client]']
            if t.user:
                lines.append('user=%s' % _option_value(t.user))
            if t.password is not None:
                lines.append('password=%s' % _option_value(t.password))
            if t.socket:
                lines.append('socket=%s' % _option_value(t.socket))
                lines.append('protocol=socket')
            else:
                lines.append('host=%s' % _option_value(t.host or '127.0.0.1'))
                lines.append('port=%d' % int(t.port or 3306))
                lines.append('protocol=tcp')
            if t.params.get('sslcert'):
                lines.append('ssl-ca=%s' % _option_value(t.params['sslcert']))
            lines.append('default-character-set=utf8mb4')
            lines.append('max-allowed-packet=1G')
            self._defaults = self.secrets.write('my.cnf', '\n'.join(lines) + '\n')
        return self._defaults

    def dump_argv(self, database):
        """A consistent, complete logical dump of one database, without CREATE DATABASE/USE.

        ``--single-transaction`` gives an InnoDB snapshot without locking (``--skip-lock-tables``
        keeps MyISAM tables from forcing LOCK TABLES); routines, triggers and events are included;
        BLOBs as hex so the dump is plain text; no tablespaces (needs PROCESS privilege).
        """
        argv = ['--defaults-extra-file=%s' % self.defaults_file(),
                '--single-transaction', '--skip-lock-tables', '--routines', '--triggers', '--events',
                '--hex-blob', '--default-character-set=utf8mb4', '--quick', '--no-tablespaces',
                '--add-drop-table', '--add-drop-trigger', '--create-options', '--extended-insert',
                '--set-charset', '--tz-utc', '--skip-comments', '--max-allowed-packet=1G']
        if not self.is_mariadb_dump:
            # Oracle's mysqldump: no GTID_PURGED so the dump restores into any server/database.
            argv.append('--set-gtid-purged=OFF')
        return [self.dump_bin] + argv + ['--', database]

    def client_argv(self, database=None):
        argv = [self.client_bin, '--defaults-extra-file=%s' % self.defaults_file(),
                '--default-character-set=utf8mb4', '--binary-mode', '--batch', '--max-allowed-packet=1G']
        if database:
            argv.append('--database=%s' % database)
        return argv

    def env(self):
        return _child_env(drop=('MYSQL_PWD',))


class PostgresTools(object):
    """``pg_dump``, ``pg_restore`` and ``psql`` for one target (password through ``PGPASSFILE``)."""

    EXTRA = ('/usr/lib/postgresql/*/bin/%s', '/usr/pgsql-*/bin/%s')

    def __init__(self, target, secrets, bindir=None):
        self.target = target
        self.secrets = secrets
        self.bins = {}
        for name in ('pg_dump', 'pg_restore', 'psql'):
            if bindir:
                path = os.path.join(bindir, name)
                self.bins[name] = path if os.access(path, os.X_OK) else None
            else:
                self.bins[name] = find_tool([name], [p % name for p in self.EXTRA])
        self._passfile = None

    def missing(self, names=('pg_dump', 'pg_restore')):
        return [n for n in names if not self.bins.get(n)]

    def passfile(self):
        if self._passfile is None:
            t = self.target
            line = '*:*:*:%s:%s\n' % (_pgpass_field(t.user or ''), _pgpass_field(t.password or ''))
            self._passfile = self.secrets.write('pgpass', line)
        return self._passfile

    def _conn_args(self, database):
        t = self.target
        args = ['--host=%s' % (t.socket or t.host or '127.0.0.1'), '--port=%d' % int(t.port or 5432)]
        if t.user:
            args.append('--username=%s' % t.user)
        args.append('--no-password')
        args.append('--dbname=%s' % database)
        return args

    def dump_argv(self, database, fmt='custom', output=None, jobs=1, compress_level=0, snapshot=None):
        """``pg_dump`` of the whole database: custom format to stdout, or directory format (parallel)."""
        argv = [self.bins['pg_dump']] + self._conn_args(database)
        if fmt == 'directory':
            argv += ['--format=directory', '--file=%s' % output, '--jobs=%d' % max(1, int(jobs or 1))]
        else:
            argv += ['--format=custom']
        argv.append('--compress=%d' % int(compress_level))
        if snapshot:
            argv.append('--snapshot=%s' % snapshot)
        return argv

    def restore_argv(self, database, fmt='custom', path=None, jobs=1, single_transaction=True):
        """``pg_restore`` into ``database``: stops at the first error, owners mapped to the login user."""
        argv = [self.bins['pg_restore']] + self._conn_args(database) + ['--exit-on-error', '--no-owner']
        if fmt == 'directory':
            argv += ['--format=directory', '--jobs=%d' % max(1, int(jobs or 1)), path]
        else:
            argv += ['--format=custom']
            if single_transaction:
                argv.append('--single-transaction')
            if path:
                argv.append(path)
        return argv

    def env(self):
        extra = {'PGPASSFILE': self.passfile(), 'PGCONNECT_TIMEOUT': '10'}
        sslmode = self.target.params.get('sslmode')
        if sslmode:
            extra['PGSSLMODE'] = sslmode
        return _child_env(drop=('PGPASSWORD', 'PGSERVICE', 'PGSERVICEFILE'), extra=extra)

    def tool_major(self, name='pg_dump'):
        match = re.search(r'(\d+)(?:\.\d+)?', tool_version(self.bins[name]) if self.bins.get(name) else '')
        return int(match.group(1)) if match else None


class Compressor(object):
    """Streaming compression: ``zstd`` (``-T<threads>``), ``gzip`` (``pigz`` when present) or none."""

    SUFFIX = {'zstd': '.zst', 'gzip': '.gz', 'none': ''}
    DEFAULT_LEVEL = {'zstd': 3, 'gzip': 6, 'none': None}

    def __init__(self, method='zstd', level=None, threads=0):
        if method not in self.SUFFIX:
            raise ToolError('Unknown compression %r; use zstd, gzip or none.' % method)
        self.method = method
        self.level = level if level is not None else self.DEFAULT_LEVEL[method]
        self.threads = int(threads or 0)
        if method == 'zstd':
            self.binary = find_tool(['zstd'])
        elif method == 'gzip':
            self.binary = find_tool(['pigz', 'gzip'])
        else:
            self.binary = None

    @property
    def suffix(self):
        return self.SUFFIX[self.method]

    def missing(self):
        if self.method == 'zstd' and not self.binary:
            return ['zstd']
        if self.method == 'gzip' and not self.binary:
            return ['gzip']
        return []

    def compress_argv(self):
        if self.method == 'none':
            return None
        if self.method == 'zstd':
            level = int(self.level)
            argv = [self.binary, '-q', '-c', '-T%d' % self.threads]
            argv.append('--ultra' if level > 19 else '-%d' % level)
            if level > 19:
                argv.append('-%d' % level)
            return argv
        argv = [self.binary, '-c', '-%d' % int(self.level)]
        if os.path.basename(self.binary) == 'pigz' and self.threads:
            argv += ['-p', str(self.threads)]
        return argv

    @classmethod
    def for_file(cls, path):
        """The compressor matching a stored file's suffix."""
        for method, suffix in cls.SUFFIX.items():
            if suffix and path.endswith(suffix):
                return cls(method)
        return cls('none')

    def decompress_argv(self):
        if self.method == 'none':
            return None
        if self.method == 'zstd':
            return [self.binary, '-q', '-d', '-c']
        return [self.binary, '-d', '-c']

    def version(self):
        return tool_version(self.binary) if self.binary else None


def _scrub(text, secrets):
    for secret in secrets:
        if secret:
            text = text.replace(secret, '********')
    return text


def _read_stderr(handle, secrets):
    handle.seek(0)
    text = handle.read().decode('utf-8', 'replace').strip()
    handle.close()
    text = _scrub(text, secrets)
    return text[-4000:]


def _kill_all(procs):
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.kill()
            except OSError:
                pass
    for proc in procs:
        try:
            proc.wait()
        except OSError:
            pass


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _fail_message(name, proc, err):
    return '%s failed (exit code %s): %s' % (name, proc.returncode, err or 'no error output')


def stream_to_file(out_path, producer_argv=None, producer_env=None, compress_argv=None, stdin_path=None, secrets=()):
    """Run ``producer | compressor`` and write the result to ``out_path``, hashing in the same pass.

    Exactly one of ``producer_argv`` / ``stdin_path`` gives the input. Returns ``(size, sha256)``.
    The file is fsynced. On any failure every child is killed, ``out_path`` is removed and
    :class:`ToolError` (:class:`OutOfSpaceError` for a full disk) is raised.
    """
    procs = []
    errs = []
    stdin_handle = open(stdin_path, 'rb') if stdin_path else None
    digest = hashlib.sha256()
    size = 0
    out = None
    try:
        source = stdin_handle
        if producer_argv:
            err = tempfile.TemporaryFile()
            errs.append(err)
            procs.append(subprocess.Popen(producer_argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                          env=producer_env, close_fds=True))
            source = procs[-1].stdout
        if compress_argv:
            err = tempfile.TemporaryFile()
            errs.append(err)
            procs.append(subprocess.Popen(compress_argv, stdin=source, stdout=subprocess.PIPE, stderr=err,
                                          env=_child_env(), close_fds=True))
            if producer_argv:
                procs[0].stdout.close()
            source = procs[-1].stdout
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        out = os.fdopen(fd, 'wb', buffering=0)
        raw_fd = source.fileno()
        while True:
            chunk = os.read(raw_fd, CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                written = out.write(view)
                view = view[written:]
            size += len(chunk)
        os.fsync(out.fileno())
        out.close()
        out = None
        for proc in procs:
            proc.wait()
        names = []
        if producer_argv:
            names.append(os.path.basename(producer_argv[0]))
        if compress_argv:
            names.append(os.path.basename(compress_argv[0]))
        for name, proc, err in zip(names, procs, errs):
            if proc.returncode != 0:
                raise ToolError(_fail_message(name, proc, _read_stderr(err, secrets)), proc.returncode)
        return size, digest.hexdigest()
    except (IOError, OSError) as exc:
        _kill_all(procs)
        _remove_quietly(out_path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutOfSpaceError('No space left on the device while writing %s (%d bytes written).' % (out_path, size))
        raise ToolError('Writing %s failed: %s' % (out_path, exc))
    except BaseException:
        _kill_all(procs)
        _remove_quietly(out_path)
        raise
    finally:
        _kill_all(procs)
        for proc in procs:
            if proc.stdout:
                proc.stdout.close()
        for err in errs:
            if not err.closed:
                err.close()
        if stdin_handle:
            stdin_handle.close()
        if out is not None:
            out.close()


def stream_from_file(in_path, consumer_argv, consumer_env, decompress_argv=None, secrets=()):
    """Feed ``in_path`` (through ``decompress_argv`` when given) into ``consumer_argv``'s stdin.

    Returns the consumer's stdout as text. Raises :class:`ToolError` on a non-zero exit.
    """
    procs = []
    errs = []
    handle = open(in_path, 'rb')
    try:
        source = handle
        names = []
        if decompress_argv:
            err = tempfile.TemporaryFile()
            errs.append(err)
            procs.append(subprocess.Popen(decompress_argv, stdin=handle, stdout=subprocess.PIPE, stderr=err,
                                          env=_child_env(), close_fds=True))
            names.append(os.path.basename(decompress_argv[0]))
            source = procs[-1].stdout
        err = tempfile.TemporaryFile()
        errs.append(err)
        out = tempfile.TemporaryFile()
        procs.append(subprocess.Popen(consumer_argv, stdin=source, stdout=out, stderr=err, env=consumer_env, close_fds=True))
        names.append(os.path.basename(consumer_argv[0]))
        if decompress_argv:
            procs[0].stdout.close()
        for proc in procs:
            proc.wait()
        # The consumer's error explains a broken pipe in the decompressor, so report it first.
        for name, proc, err in reversed(list(zip(names, procs, errs))):
            if proc.returncode != 0:
                raise ToolError(_fail_message(name, proc, _read_stderr(err, secrets)), proc.returncode)
        out.seek(0)
        return out.read().decode('utf-8', 'replace')
    finally:
        _kill_all(procs)
        for err in errs:
            if not err.closed:
                err.close()
        handle.close()


def run_tool(argv, env, secrets=(), cwd=None):
    """Run one tool to completion; returns stdout text, raises :class:`ToolError` on failure."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              cwd=cwd, check=False, close_fds=True)
    except OSError as exc:
        raise ToolError('Cannot run %s: %s' % (argv[0], exc))
    if proc.returncode != 0:
        err = _scrub(proc.stderr.decode('utf-8', 'replace').strip(), secrets)[-4000:]
        if 'No space left on device' in err:
            raise OutOfSpaceError(_fail_message(os.path.basename(argv[0]), proc, err), proc.returncode)
        raise ToolError(_fail_message(os.path.basename(argv[0]), proc, err), proc.returncode)
    return proc.stdout.decode('utf-8', 'replace')


def hash_file(path):
    """(size, sha256) of one file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
