# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The database side of db_backup: inspect, dump, restore, trial-restore and compare.

Functions take a :class:`DatabaseTarget` (from ``database.py``) and plain values. Dump and restore
commands come from the runners in ``dump_tools.py``; files and manifests from ``backup_store.py``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
import uuid

from ansible_collections.saferelease.core.plugins.module_utils import database as dbmod
from ansible_collections.saferelease.core.plugins.module_utils import backup_store as store
from ansible_collections.saferelease.core.plugins.module_utils.dump_tools import (
    Compressor, MysqlTools, PostgresTools, SecretDir, ToolError, remove_stale_secret_dirs, run_tool,
    stream_from_file, stream_to_file, tool_version)

PRISMA_TABLE = '_prisma_migrations'


class BackupError(Exception):
    """A backup, verification or restore step failed; ``message`` says what to do next."""

    def __init__(self, message, details=None):
        super(BackupError, self).__init__(message)
        self.message = message
        self.details = details or {}

    def __str__(self):
        return self.message


def _jsonable(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return str(value)


def _scalar(conn, sql, params=None):
    rows = dbmod.query_rows(conn, sql, params)
    return rows[0][0] if rows else None


# --- inspection ---------------------------------------------------------------------------

def _prisma_snapshot(conn, target, table_names, qualified):
    if qualified not in table_names:
        return None
    cur = conn.cursor()
    try:
        cur.execute('SELECT * FROM %s ORDER BY 1' % _quote_table(target.engine, qualified))
        cols = [d[0] for d in cur.description]
        return [dict((c, _jsonable(v)) for c, v in zip(cols, row)) for row in cur.fetchall()]
    finally:
        cur.close()


def _quote_table(engine, qualified):
    if engine == 'postgresql':
        schema, _dot, name = qualified.partition('.')
        return '%s.%s' % (dbmod.quote_identifier(engine, schema), dbmod.quote_identifier(engine, name))
    return dbmod.quote_identifier(engine, qualified)


def _count_all(conn, engine, tables):
    counts = {}
    for table in tables:
        counts[table] = int(_scalar(conn, 'SELECT COUNT(*) FROM %s' % _quote_table(engine, table)))
    return counts


def inspect_mysql(conn, target):
    db = target.database
    rows = dbmod.query_rows(conn, "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s", (db,))
    tables = sorted(r[0] for r in rows if r[1] in ('BASE TABLE', 'SYSTEM VERSIONED'))
    views = sorted(r[0] for r in rows if r[1] == 'VIEW')
    routines = sorted('%s %s' % (r[1], r[0]) for r in dbmod.query_rows(
        conn, 'SELECT routine_name, routine_type FROM information_schema.routines WHERE routine_schema = %s', (db,)))
    triggers = sorted(r[0] for r in dbmod.query_rows(conn, 'SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = %s', (db,)))
    events = sorted(r[0] for r in dbmod.query_rows(conn, 'SELECT event_name FROM information_schema.events WHERE event_schema = %s', (db,)))
    size = _scalar(conn, 'SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = %s', (db,))
    charset = dbmod.query_rows(conn, 'SELECT default_character_set_name, default_collation_name FROM information_schema.schemata '
                               'WHERE schema_name = %s', (db,))
    # one consistent snapshot for all counts (InnoDB)
    dbmod.query_rows(conn, 'START TRANSACTION WITH CONSISTENT SNAPSHOT')
    try:
        counts = _count_all(conn, 'mysql', tables)
        prisma = _prisma_snapshot(conn, target, tables, PRISMA_TABLE)
    finally:
        dbmod.query_rows(conn, 'COMMIT')
    return dict(row_counts=counts, views=views, routines=routines, triggers=triggers, events=events,
                size_bytes=int(size or 0), prisma_migrations=prisma,
                charset=charset[0][0] if charset else None, collation=charset[0][1] if charset else None)


_PG_USER_NS = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%' "
               "AND n.nspname NOT LIKE 'pg\\_temp\\_%%'")
_PG_NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = %s.oid AND d.deptype = 'e')"


def inspect_postgresql(conn, target):
    tables = sorted('%s.%s' % r for r in dbmod.query_rows(
        conn, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE c.relkind IN ('r', 'p') AND " + _PG_USER_NS + " AND " + _PG_NOT_EXT % 'c', ()))
    views = sorted('%s.%s' % r for r in dbmod.query_rows(
        conn, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE c.relkind IN ('v', 'm') AND " + _PG_USER_NS + " AND " + _PG_NOT_EXT % 'c', ()))
    routines = sorted('%s.%s(%s)' % r for r in dbmod.query_rows(
        conn, "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
              "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE " + _PG_USER_NS + " AND " + _PG_NOT_EXT % 'p', ()))
    triggers = sorted('%s.%s' % r for r in dbmod.query_rows(
        conn, "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND " + _PG_USER_NS, ()))
    size = _scalar(conn, 'SELECT pg_database_size(current_database())')
    counts = _count_all(conn, 'postgresql', tables)
    prisma = _prisma_snapshot(conn, target, tables, '%s.%s' % (target.namespace, PRISMA_TABLE))
    return dict(row_counts=counts, views=views, routines=routines, triggers=triggers, events=[],
                size_bytes=int(size or 0), prisma_migrations=prisma)


def inspect_sqlite(conn, target=None):
    rows = dbmod.query_rows(conn, "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view', 'trigger') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
    tables = sorted(r[0] for r in rows if r[1] == 'table')
    counts = _count_all(conn, 'sqlite', tables)
    return dict(row_counts=counts, views=sorted(r[0] for r in rows if r[1] == 'view'), routines=[],
                triggers=sorted(r[0] for r in rows if r[1] == 'trigger'), events=[],
                size_bytes=None, prisma_migrations=_prisma_snapshot(conn, dbmod.DatabaseTarget('sqlite', path=':memory:'), tables,
                                                                    PRISMA_TABLE))


def sqlite_integrity(conn):
    rows = dbmod.query_rows(conn, 'PRAGMA integrity_check')
    return [r[0] for r in rows if r[0] != 'ok']


def inspect(conn, target):
    if target.engine == 'mysql':
        return inspect_mysql(conn, target)
    if target.engine == 'postgresql':
        return inspect_postgresql(conn, target)
    return inspect_sqlite(conn, target)


INVENTORY_KEYS = ('views', 'routines', 'triggers', 'events')


def compare_inventory(expected, actual):
    """Differences between a manifest's inventory and a database's (empty list = same)."""
    problems = []
    exp_counts = expected.get('row_counts') or {}
    act_counts = actual.get('row_counts') or {}
    for table in sorted(set(exp_counts) - set(act_counts)):
        problems.append('table %s is missing' % table)
    for table in sorted(set(act_counts) - set(exp_counts)):
        problems.append('table %s is not in the backup' % table)
    for table in sorted(set(exp_counts) & set(act_counts)):
        if exp_counts[table] != act_counts[table]:
            problems.append('table %s has %d rows, the backup has %d' % (table, act_counts[table], exp_counts[table]))
    for key in INVENTORY_KEYS:
        exp = set(expected.get(key) or [])
        act = set(actual.get(key) or [])
        if exp != act:
            problems.append('%s differ: missing %s, unexpected %s' % (key, sorted(exp - act) or 'none', sorted(act - exp) or 'none'))
    return problems


# --- tools ----------------------------------------------------------------------------------

def tool_problems(engine, compression='zstd', pg_format='custom', need_restore=True):
    """Names of the missing external tools for this engine/compression (empty list = all present)."""
    missing = Compressor(compression).missing() if compression else []
    with SecretDir() as secrets:
        if engine == 'mysql':
            missing += MysqlTools(None, secrets).missing(need_dump=True, need_client=need_restore)
        elif engine == 'postgresql':
            missing += PostgresTools(None, secrets).missing(('pg_dump', 'pg_restore') if need_restore else ('pg_dump',))
    return missing


def _make_tools(target, secrets):
    if target.engine == 'mysql':
        return MysqlTools(target, secrets)
    if target.engine == 'postgresql':
        return PostgresTools(target, secrets)
    return None


def with_database(target, database):
    """A copy of ``target`` pointing at another database of the same server."""
    return dbmod.DatabaseTarget(target.engine, host=target.host, port=target.port, user=target.user, password=target.password,
                                database=database, schema=target.schema, path=target.path, params=target.params,
                                socket=target.socket)


def _secrets_of(target):
    return [target.password] if target.password else []


def _dump_name(engine, pg_format, compressor):
    if engine == 'mysql':
        return 'database.sql' + compressor.suffix
    if engine == 'postgresql':
        return 'database.pgdir' if pg_format == 'directory' else 'database.pgdump' + compressor.suffix
    return 'database.sqlite' + compressor.suffix


# --- taking a backup ------------------------------------------------------------------------

def take_backup(target, dest_dir, name, compression='zstd', level=None, threads=0, pg_format='custom', jobs=1,
                include_paths=None, kind='backup', extra_manifest=None):
    """Dump ``target`` into ``<dest_dir>/<name>/`` and publish it atomically.

    Returns ``(path, manifest)``. On failure nothing is published and :class:`BackupError` is raised.
    """
    remove_stale_secret_dirs()
    compressor = Compressor(compression, level, threads)
    started = store.utc_now()
    t0 = time.time()
    try:
        store.ensure_dest_dir(dest_dir)
        partial = store.PartialBackup(dest_dir, name)
    except store.BackupStoreError as exc:
        raise BackupError(exc.message)
    except OSError as exc:
        raise BackupError('Cannot create the backup directory in %s (%s); nothing was written.' % (dest_dir, exc.strerror or exc))
    try:
        with SecretDir() as secrets:
            if target.engine == 'sqlite':
                info, dump_meta, server = _dump_sqlite(target, partial, compressor)
            else:
                info, dump_meta, server = _dump_server(target, partial, compressor, secrets, pg_format, jobs)
        included = partial.copy_include_paths(include_paths)
        finished = store.utc_now()
        duration = max(time.time() - t0, 1e-6)
        manifest = dict(
            kind=kind, engine=target.engine, database=target.as_dict(), host=socket.gethostname(),
            server_version=server.get('server_version'), tools=server.get('tools'),
            started_at=store.iso(started), finished_at=store.iso(finished), duration_s=round(duration, 3),
            dump=dump_meta, database_size_bytes=info.get('size_bytes'), row_counts=info['row_counts'],
            views=info['views'], routines=info['routines'], triggers=info['triggers'], events=info['events'],
            prisma_migrations=info['prisma_migrations'], include_paths=included,
            charset=info.get('charset'), collation=info.get('collation'))
        manifest.update(extra_manifest or {})
        path, manifest = partial.publish(manifest)
        return path, manifest
    except store.BackupStoreError as exc:
        raise BackupError(exc.message + ' Nothing was published.')
    except ToolError as exc:
        raise BackupError('%s. The database was only read; the partial backup was removed, nothing was published.' % target.scrub(exc.message))
    except dbmod.DatabaseError as exc:
        raise BackupError(exc.message)
    except (IOError, OSError) as exc:
        raise BackupError('Writing the backup in %s failed (%s); the partial backup was removed, nothing was published.' % (
            dest_dir, exc.strerror or exc))
    finally:
        partial.discard()


class _Background(object):
    """Runs ``work()`` in a thread; ``result()`` waits for it and re-raises what it raised."""

    def __init__(self, work):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(work,))
        self._thread.daemon = True
        self._thread.start()

    def _run(self, work):
        try:
            self._value = work()
        except Exception as exc:  # handed to the caller of result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _inventory_on_own_connection(target, snapshot=None):
    """The manifest's inventory (row counts and all), read on a second connection so that it can run while
    the dump streams: counting a large database takes a good part of the time a dump does.

    PostgreSQL imports the dump's exported snapshot, so the counts describe exactly what pg_dump wrote;
    MariaDB/MySQL counts come from a consistent snapshot opened as the dump opens its own."""
    conn = dbmod.connect(target)
    try:
        if target.engine == 'mysql':
            return inspect_mysql(conn, target)
        # one core for the counts: parallel workers would take the CPU the dump needs, which finishes later anyway
        dbmod.query_rows(conn, 'SET max_parallel_workers_per_gather = 0')
        dbmod.query_rows(conn, 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
        dbmod.query_rows(conn, 'SET TRANSACTION SNAPSHOT %s', (snapshot,))
        try:
            return inspect_postgresql(conn, target)
        finally:
            dbmod.query_rows(conn, 'COMMIT')
    finally:
        conn.close()


def _dump_server(target, partial, compressor, secrets, pg_format, jobs):
    tools = _make_tools(target, secrets)
    conn = dbmod.connect(target)
    try:
        server_version = dbmod.server_version(conn, target)
        tools_info = dict(compressor=compressor.version())
        compress = compressor.compress_argv()
        if target.engine == 'mysql':
            tools_info['dump'] = tool_version(tools.dump_bin)
            inventory = _Background(lambda: _inventory_on_own_connection(target))
            relpath = _dump_name('mysql', pg_format, compressor)
            size, digest = stream_to_file(partial.file_path(relpath), tools.dump_argv(target.database), tools.env(), compress,
                                          secrets=_secrets_of(target))
            partial.record(relpath, size, digest)
            dump_meta = dict(file=relpath, format='sql', compression=compressor.method, level=compressor.level)
            info = inventory.result()
        else:
            tools_info['dump'] = tool_version(tools.bins['pg_dump'])
            _check_pg_versions(tools, conn)
            # this transaction holds the exported snapshot open until pg_dump and the counts are both done
            dbmod.query_rows(conn, 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY')
            snapshot = _scalar(conn, 'SELECT pg_export_snapshot()')
            inventory = _Background(lambda: _inventory_on_own_connection(target, snapshot))
            relpath = _dump_name('postgresql', pg_format, compressor)
            if pg_format == 'directory':
                level = 0 if compressor.method == 'none' else min(int(compressor.level or 6), 9)
                out = partial.file_path(relpath)
                run_tool(tools.dump_argv(target.database, 'directory', out, jobs, level, snapshot), tools.env(), _secrets_of(target))
                partial.record_tree(relpath)
                dump_meta = dict(file=relpath, format='directory', compression='gzip' if level else 'none', level=level, jobs=jobs)
            else:
                size, digest = stream_to_file(partial.file_path(relpath), tools.dump_argv(target.database, 'custom', snapshot=snapshot),
                                              tools.env(), compress, secrets=_secrets_of(target))
                partial.record(relpath, size, digest)
                dump_meta = dict(file=relpath, format='custom', compression=compressor.method, level=compressor.level)
            info = inventory.result()
            dbmod.query_rows(conn, 'COMMIT')
        return info, dump_meta, dict(server_version=server_version, tools=tools_info)
    finally:
        conn.close()


def _check_pg_versions(tools, conn):
    server_major = int(_scalar(conn, 'SHOW server_version_num')) // 10000
    tool_major = tools.tool_major('pg_dump')
    if tool_major and tool_major < server_major:
        raise ToolError('pg_dump %s is older than the PostgreSQL %s server; install the PostgreSQL %s client tools.' % (
            tool_major, server_major, server_major))


def _dump_sqlite(target, partial, compressor):
    if not os.path.isfile(target.path):
        raise BackupError('The SQLite database %s does not exist; nothing to back up.' % target.path)
    copy = partial.file_path('.sqlite-copy')
    src = sqlite3.connect(target.path, timeout=30)
    try:
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # online backup API: a consistent copy even while the app writes
            problems = sqlite_integrity(dst)
            if problems:
                raise BackupError('PRAGMA integrity_check failed on the copy of %s: %s. The source database is damaged; '
                                  'repair it before backing it up.' % (target.path, '; '.join(problems[:5])))
            info = inspect_sqlite(dst)
            version = _scalar(dst, 'SELECT sqlite_version()')
        finally:
            dst.close()
    finally:
        src.close()
    info['size_bytes'] = os.path.getsize(copy)
    relpath = _dump_name('sqlite', None, compressor)
    if compressor.method == 'none':
        os.rename(copy, partial.file_path(relpath))
        partial.record_existing(relpath)
    else:
        size, digest = stream_to_file(partial.file_path(relpath), compress_argv=compressor.compress_argv(), stdin_path=copy)
        partial.record(relpath, size, digest)
        os.unlink(copy)
    dump_meta = dict(file=relpath, format='sqlite', compression=compressor.method, level=compressor.level)
    return info, dump_meta, dict(server_version=version, tools=dict(dump='sqlite3 backup API %s' % sqlite3.sqlite_version,
                                                                    compressor=compressor.version()))


# --- restoring ------------------------------------------------------------------------------

def _wipe_mysql(conn, target):
    db = target.database

    def q(name):
        return dbmod.quote_identifier('mysql', name)

    dbmod.query_rows(conn, 'SET FOREIGN_KEY_CHECKS = 0')
    try:
        for name, ttype in dbmod.query_rows(conn, 'SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s', (db,)):
            kind = 'VIEW' if ttype == 'VIEW' else ('SEQUENCE' if ttype == 'SEQUENCE' else 'TABLE')
            dbmod.query_rows(conn, 'DROP %s IF EXISTS %s.%s' % (kind, q(db), q(name)))
        for name, rtype in dbmod.query_rows(conn, 'SELECT routine_name, routine_type FROM information_schema.routines WHERE routine_schema = %s', (db,)):
            dbmod.query_rows(conn, 'DROP %s IF EXISTS %s.%s' % ('FUNCTION' if rtype == 'FUNCTION' else 'PROCEDURE', q(db), q(name)))
        for (name,) in dbmod.query_rows(conn, 'SELECT event_name FROM information_schema.events WHERE event_schema = %s', (db,)):
            dbmod.query_rows(conn, 'DROP EVENT IF EXISTS %s.%s' % (q(db), q(name)))
    finally:
        dbmod.query_rows(conn, 'SET FOREIGN_KEY_CHECKS = 1')


def _wipe_postgresql(conn):
    def q(name):
        return dbmod.quote_identifier('postgresql', name)

    schemas = dbmod.query_rows(conn, "SELECT n.nspname, pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE " + _PG_USER_NS, ())
    for name, owner in schemas:
        dbmod.query_rows(conn, 'DROP SCHEMA %s CASCADE' % q(name))
        if name == 'public':
            # pg_dump does not create "public"; recreate it as PostgreSQL 15 ships it
            dbmod.query_rows(conn, 'CREATE SCHEMA public')
            try:
                dbmod.query_rows(conn, 'ALTER SCHEMA public OWNER TO %s' % q(owner))
            except Exception:  # pylint: disable=broad-except
                pass
            dbmod.query_rows(conn, 'GRANT USAGE ON SCHEMA public TO PUBLIC')
    dbmod.query_rows(conn, 'SELECT lo_unlink(oid) FROM pg_largeobject_metadata')


def load_dump(target, backup_path, manifest, jobs=1):
    """Replace the contents of ``target`` with the backup's dump (the target's objects are dropped first)."""
    dump = manifest['dump']
    dump_path = os.path.join(backup_path, dump['file'])
    if target.engine == 'sqlite':
        _load_sqlite(target, dump_path, dump)
        return
    with SecretDir() as secrets:
        tools = _make_tools(target, secrets)
        decompress = Compressor(dump['compression']).decompress_argv() if dump['format'] != 'directory' else None
        conn = dbmod.connect(target)
        try:
            if target.engine == 'mysql':
                _wipe_mysql(conn, target)
            else:
                _wipe_postgresql(conn)
        finally:
            conn.close()
        if target.engine == 'mysql':
            stream_from_file(dump_path, tools.client_argv(target.database), tools.env(), decompress, _secrets_of(target))
        elif dump['format'] == 'directory':
            run_tool(tools.restore_argv(target.database, 'directory', dump_path, jobs), tools.env(), _secrets_of(target))
        else:
            stream_from_file(dump_path, tools.restore_argv(target.database, 'custom'), tools.env(), decompress, _secrets_of(target))


def _decompress_sqlite(dump_path, dump, out_path):
    decompress = Compressor(dump['compression']).decompress_argv()
    if decompress:
        stream_to_file(out_path, compress_argv=decompress, stdin_path=dump_path)
    else:
        shutil.copyfile(dump_path, out_path)


def _load_sqlite(target, dump_path, dump):
    folder = os.path.dirname(target.path)
    tmp = os.path.join(folder, '.%s.restore-%s' % (os.path.basename(target.path), uuid.uuid4().hex[:12]))
    try:
        _decompress_sqlite(dump_path, dump, tmp)
        src = sqlite3.connect(tmp)
        try:
            problems = sqlite_integrity(src)
            if problems:
                raise BackupError('The SQLite file in the backup fails PRAGMA integrity_check (%s); the database was not touched.'
                                  % '; '.join(problems[:5]))
            dst = sqlite3.connect(target.path, timeout=30)
            try:
                src.backup(dst)  # page-level copy into the live file, under SQLite's own locking
            finally:
                dst.close()
        finally:
            src.close()
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def inspect_target(target):
    conn = dbmod.connect(target)
    try:
        info = inspect(conn, target)
        if target.engine == 'sqlite':
            info['integrity'] = sqlite_integrity(conn)
        return info
    finally:
        conn.close()


def scratch_name(target, requested=None):
    if requested:
        return requested
    base = (target.database or 'db')[:40]
    return '%s_verify_%s' % (base, uuid.uuid4().hex[:8])


def trial_restore(target, backup_path, manifest, scratch=None, jobs=1, work_dir=None):
    """Restore into a scratch database (dropped afterwards) and compare it with the manifest.

    Returns ``dict(scratch=..., problems=[...], row_counts={...}, duration_s=...)``.
    """
    t0 = time.time()
    dump = manifest['dump']
    if target.engine == 'sqlite':
        tmpdir = tempfile.mkdtemp(prefix='.verify-', dir=work_dir or os.path.dirname(backup_path))
        path = os.path.join(tmpdir, 'scratch.sqlite')
        try:
            _decompress_sqlite(os.path.join(backup_path, dump['file']), dump, path)
            conn = sqlite3.connect(path)
            try:
                problems = ['integrity_check: %s' % p for p in sqlite_integrity(conn)]
                info = inspect_sqlite(conn)
            finally:
                conn.close()
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        problems += compare_inventory(manifest, info)
        return dict(scratch=path, problems=problems, row_counts=info['row_counts'], duration_s=round(time.time() - t0, 3))
    name = scratch_name(target, scratch)
    scratch_target = with_database(target, name)
    admin = dbmod.connect(target)
    created = False
    try:
        qname = dbmod.quote_identifier(target.engine, name)
        if target.engine == 'mysql':
            charset = manifest.get('charset') or 'utf8mb4'
            collation = manifest.get('collation')
            dbmod.query_rows(admin, 'CREATE DATABASE %s CHARACTER SET %s%s' % (qname, charset, ' COLLATE %s' % collation if collation else ''))
        else:
            dbmod.query_rows(admin, 'CREATE DATABASE %s TEMPLATE template0' % qname)
        created = True
        load_dump(scratch_target, backup_path, manifest, jobs=jobs)
        info = inspect_target(scratch_target)
        problems = compare_inventory(manifest, info)
        return dict(scratch=name, problems=problems, row_counts=info['row_counts'], duration_s=round(time.time() - t0, 3))
    except ToolError as exc:
        raise BackupError('The trial restore of %s into the scratch database %s failed: %s' % (
            backup_path, name, target.scrub(exc.message)))
    finally:
        if created:
            _drop_database(admin, target, name)
        admin.close()


def _drop_database(conn, target, name):
    qname = dbmod.quote_identifier(target.engine, name)
    if target.engine == 'postgresql':
        major = int(_scalar(conn, 'SHOW server_version_num')) // 10000
        dbmod.query_rows(conn, 'DROP DATABASE IF EXISTS %s%s' % (qname, ' WITH (FORCE)' if major >= 13 else ''))
    else:
        dbmod.query_rows(conn, 'DROP DATABASE IF EXISTS %s' % qname)
