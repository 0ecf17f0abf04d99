# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Prisma Migrate's bookkeeping, natively: the migrations folder and the ``_prisma_migrations`` table.

Behaviour follows prisma-engines ``schema-engine`` (connectors/schema-connector checksum.rs and
migrations_directory.rs, sql-schema-connector's migration persistence and flavours, and the
core commands apply_migrations, mark_migration_applied, mark_migration_rolled_back and
diagnose_migration_history), so rows written here are the rows the Prisma CLI writes and the
statuses reported are the ones ``prisma migrate status`` reports.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import email.utils
import hashlib
import json
import math
import os
import re
import tempfile
import time
import uuid

from ansible_collections.saferelease.core.plugins.module_utils.database import (
    describe_error,
    execute_sql,
    placeholder,
    query_rows,
    quote_identifier,
)
from ansible_collections.saferelease.core.plugins.module_utils.sql_script import split_script, SqlScriptError

MIGRATIONS_TABLE = '_prisma_migrations'
MIGRATION_SCRIPT = 'migration.sql'
LOCK_FILE = 'migration_lock.toml'
# Lock identities Prisma Migrate uses (sql-schema-connector flavours).
POSTGRES_LOCK_ID = 72707369
MYSQL_LOCK_NAME = 'prisma_migrate'
DEFAULT_LOCK_TIMEOUT = 10

STATUSES = ('applied', 'pending', 'failed', 'rolled_back', 'modified', 'missing_locally')
# A migration is any folder Prisma finds (spaces and "copy" included); only what could leave the folder is refused.
MIGRATION_NAME_FORBIDDEN_RE = re.compile(r'[/\x00-\x1f\x7f]|\.\.')
MAX_MIGRATION_NAME_BYTES = 200  # Prisma's P3010

# Prisma's create_migrations_table, per flavour, verbatim.
MIGRATIONS_TABLE_DDL = {
    'postgresql': '''CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
''',
    'mysql': '''CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
''',
    'sqlite': '''CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);
''',
}

RECORD_COLUMNS = ('id', 'checksum', 'finished_at', 'migration_name', 'logs', 'rolled_back_at', 'started_at',
                  'applied_steps_count')


# --- errors --------------------------------------------------------------------------------

class PrismaError(Exception):
    """A refusal or failure with Prisma's error code where Prisma has one (``code``)."""

    def __init__(self, message, code=None, details=None):
        super(PrismaError, self).__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}

    def __str__(self):
        return '%s: %s' % (self.code, self.message) if self.code else self.message


class MigrationsDirError(PrismaError):
    """The migrations folder is missing or unreadable."""


class MigrationNameError(PrismaError):
    """A migration name is malformed or unknown."""


class MigrationStateError(PrismaError):
    """The requested change is not allowed in the current state (P3008/P3009/P3011/P3012/...)."""


class MigrationApplyError(PrismaError):
    """A migration script failed (P3018); its row now holds the error in ``logs``."""


class LockTimeoutError(PrismaError):
    """Prisma's migrate lock was held by someone else for longer than the wait allowed."""


# --- checksums (schema-connector/src/checksum.rs) --------------------------------------------

def compute_checksum(script):
    """Lowercase SHA-256 hex of the script's raw bytes (what Prisma stores in ``checksum``)."""
    if not isinstance(script, bytes):
        script = script.encode('utf-8')
    return hashlib.sha256(script).hexdigest()


def _legacy_format(digest):
    # An old schema engine formatted each byte with {:x}, dropping leading zeros (prisma-engines#1887).
    return ''.join('%x' % b for b in bytearray(digest))


def checksum_matches(script, checksum):
    """Whether ``checksum`` (as stored) matches the script, the way Prisma compares.

    The script also matches with CRLF turned into LF and with LF turned into CRLF; a stored
    checksum that is not 64 characters long is compared in the legacy unpadded format.
    """
    if not isinstance(script, bytes):
        script = script.encode('utf-8')
    checksum = checksum or ''
    legacy = bool(checksum) and len(checksum) != 64
    for variant in (script, script.replace(b'\r\n', b'\n'), script.replace(b'\n', b'\r\n')):
        digest = hashlib.sha256(variant).digest()
        rendered = _legacy_format(digest) if legacy else ''.join('%02x' % b for b in bytearray(digest))
        if rendered == checksum:
            return True
    return False


# --- migration folder ----------------------------------------------------------------------

def validate_migration_name(name):
    """Return ``name`` if it is a plausible migration folder name, else raise :class:`MigrationNameError`."""
    if name is None or name == '':
        raise MigrationNameError('No migration name given; set migration to the folder name, e.g. 20250821015630_add_shipment_file_field.')
    name = str(name)
    if len(name.encode('utf-8')) > MAX_MIGRATION_NAME_BYTES:
        raise MigrationNameError('The migration name is longer than 200 bytes, which Prisma does not allow.', code='P3010')
    if MIGRATION_NAME_FORBIDDEN_RE.search(name) or name.strip() in ('', '.'):
        raise MigrationNameError(
            'Invalid migration name %s: give the name of the migration folder, e.g. 20250821015630_add_shipment_file_field. '
            'A name with "/", "..", NUL or control characters cannot be a migration folder; nothing was changed.'
            % json.dumps(name))
    return name


class LocalMigration(object):
    """One ``<migrations_dir>/<name>/migration.sql``."""

    def __init__(self, name, path, script=None, error=None):
        self.name = name
        self.path = path
        self.script = script
        self.error = error

    @property
    def checksum(self):
        return compute_checksum(self.script) if self.script is not None else None

    @property
    def text(self):
        if self.script is None:
            return None
        return self.script.decode('utf-8', 'replace')

    def matches(self, checksum):
        return self.script is not None and checksum_matches(self.script, checksum)

    def read_script(self):
        """The script as text; raises :class:`MigrationsDirError` (Prisma's P3015) when unreadable."""
        if self.script is None:
            raise MigrationsDirError('Could not find the migration file at %s (%s). Please delete the directory or restore the '
                                     'migration file.' % (self.path, self.error or 'missing'), code='P3015')
        try:
            return self.script.decode('utf-8')
        except UnicodeDecodeError:
            raise MigrationsDirError('The migration file %s is not UTF-8 text, which Prisma requires.' % self.path)


class MigrationsDirectory(object):
    """The migrations folder: ``migration_lock.toml`` provider and migrations sorted by name."""

    def __init__(self, path, migrations, lock_content=None):
        self.path = path
        self.migrations = migrations
        self.lock_content = lock_content
        self._by_name = dict((m.name, m) for m in migrations)

    @property
    def provider(self):
        """Provider from migration_lock.toml as Prisma reads it; None without a lock file."""
        if self.lock_content is None:
            return None
        for line in self.lock_content.splitlines():
            if line.startswith('provider'):
                value = line[len('provider = '):] if line.startswith('provider = ') else line
                return value.strip('"')
        return '<PROVIDER NOT FOUND>'

    @property
    def names(self):
        return [m.name for m in self.migrations]

    def get(self, name):
        return self._by_name.get(name)


def read_migrations_dir(path):
    """Read the migrations folder like the Prisma CLI: every sub-folder is a migration, sorted by name."""
    if not path:
        raise MigrationsDirError('No migrations_dir given; point it at prisma/migrations.')
    if not os.path.exists(path):
        raise MigrationsDirError('The migrations folder %s does not exist. Point migrations_dir at the prisma/migrations folder '
                                 'of the deployed release; nothing was changed.' % path)
    if not os.path.isdir(path):
        raise MigrationsDirError('migrations_dir %s is not a folder; point it at prisma/migrations.' % path)
    lock_content = None
    lock_path = os.path.join(path, LOCK_FILE)
    if os.path.isfile(lock_path):
        with open(lock_path, 'rb') as handle:
            lock_content = handle.read().decode('utf-8', 'replace')
    migrations = []
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        raise MigrationsDirError('Cannot list the migrations folder %s (%s).' % (path, exc.strerror or exc))
    for entry in entries:
        folder = os.path.join(path, entry)
        if not os.path.isdir(folder):
            continue
        script_path = os.path.join(folder, MIGRATION_SCRIPT)
        try:
            with open(script_path, 'rb') as handle:
                migrations.append(LocalMigration(entry, script_path, script=handle.read()))
        except (IOError, OSError) as exc:
            migrations.append(LocalMigration(entry, script_path, error=exc.strerror or str(exc)))
    return MigrationsDirectory(path, migrations, lock_content)


def check_provider(migrations_dir, engine):
    """Raise Prisma's P3019 when migration_lock.toml names another provider than the database's."""
    expected = migrations_dir.provider
    if expected is not None and expected != engine:
        raise MigrationStateError(
            'The datasource provider `%s` (from DATABASE_URL) does not match the one specified in the migration_lock.toml, `%s`. '
            'Point database_url/env_file at a %s database or migrations_dir at the migrations written for %s; nothing was changed.'
            % (engine, expected, expected, engine), code='P3019')


# --- timestamps ----------------------------------------------------------------------------

_UTC = datetime.timezone.utc
_ISO_RE = re.compile(
    r'^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$')


def parse_timestamp(value):
    """Any timestamp form Prisma accepts in ``_prisma_migrations`` → aware UTC datetime (or None).

    Covers driver datetimes (naive = UTC, as Prisma writes them), SQLite epoch milliseconds
    (integer or digits), ``YYYY-MM-DD HH:MM:SS[.fff]``, RFC 3339 and RFC 2822 text.
    """
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    if isinstance(value, bool):
        raise ValueError('not a timestamp: %r' % value)
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value / 1000.0, _UTC)
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    text = str(value).strip()
    if re.match(r'^-?\d+(\.\d+)?$', text):
        return datetime.datetime.fromtimestamp(float(text) / 1000.0, _UTC)
    match = _ISO_RE.match(text)
    if match:
        year, month, day, hour, minute, second, frac, zone = match.groups()
        micro = int((frac or '0')[:6].ljust(6, '0'))
        result = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro)
        offset = datetime.timedelta(0)
        if zone and zone not in ('Z', 'z', 'UTC'):
            sign = -1 if zone[0] == '-' else 1
            digits = zone[1:].replace(':', '')
            offset = sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        return (result - offset).replace(tzinfo=_UTC)
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        raise ValueError('unrecognised timestamp %r' % text)
    return parse_timestamp(parsed)


def format_timestamp(value):
    """ISO 8601 UTC with milliseconds (``2025-08-21T01:56:30.123Z``), None stays None."""
    if value is None:
        return None
    value = parse_timestamp(value)
    return value.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (value.microsecond // 1000)


def _utc_now():
    now = datetime.datetime.now(_UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def db_timestamp(engine, value):
    """The value Prisma binds for a timestamp: SQLite epoch millis, MySQL naive UTC, PostgreSQL aware UTC."""
    if engine == 'sqlite':
        return int(round((value - datetime.datetime(1970, 1, 1, tzinfo=_UTC)).total_seconds() * 1000))
    if engine == 'mysql':
        return value.astimezone(_UTC).replace(tzinfo=None)
    return value


# --- records -------------------------------------------------------------------------------

class MigrationRecord(object):
    """One row of ``_prisma_migrations``."""

    def __init__(self, id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count):
        self.id = id
        self.checksum = checksum
        self.finished_at = parse_timestamp(finished_at)
        self.migration_name = migration_name
        self.logs = logs
        self.rolled_back_at = parse_timestamp(rolled_back_at)
        self.started_at = parse_timestamp(started_at)
        self.applied_steps_count = int(applied_steps_count or 0)

    @property
    def is_applied(self):
        return self.finished_at is not None and self.rolled_back_at is None

    @property
    def is_failed(self):
        return self.finished_at is None and self.rolled_back_at is None

    @property
    def is_rolled_back(self):
        return self.rolled_back_at is not None

    @property
    def state(self):
        if self.is_rolled_back:
            return 'rolled_back'
        return 'applied' if self.finished_at is not None else 'failed'

    def as_dict(self):
        return dict(id=self.id, migration_name=self.migration_name, checksum=self.checksum,
                    started_at=format_timestamp(self.started_at), finished_at=format_timestamp(self.finished_at),
                    rolled_back_at=format_timestamp(self.rolled_back_at), applied_steps_count=self.applied_steps_count,
                    logs=self.logs)


def table_ref(target):
    """The quoted name of Prisma's table for ``target`` (schema-qualified on PostgreSQL)."""
    if target.engine == 'postgresql':
        return '%s.%s' % (quote_identifier('postgresql', target.namespace), quote_identifier('postgresql', MIGRATIONS_TABLE))
    return quote_identifier(target.engine, MIGRATIONS_TABLE)


def migrations_table_exists(conn, target):
    """Whether ``_prisma_migrations`` exists where Prisma looks for it."""
    if target.engine == 'sqlite':
        rows = query_rows(conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,))
    elif target.engine == 'mysql':
        rows = query_rows(conn, 'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() '
                          'AND TABLE_NAME = %s', (MIGRATIONS_TABLE,))
    else:
        rows = query_rows(conn, 'SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
                          "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')", (target.namespace, MIGRATIONS_TABLE))
    return bool(rows)


def user_tables(conn, target):
    """Base tables in the target's namespace other than Prisma's own (for Prisma's P3005 check)."""
    if target.engine == 'sqlite':
        rows = query_rows(conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    elif target.engine == 'mysql':
        rows = query_rows(conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'")
    else:
        rows = query_rows(conn, 'SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
                          "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')", (target.namespace,))
    return sorted(r[0] for r in rows if r[0] != MIGRATIONS_TABLE)


def create_migrations_table(conn, target):
    """Create ``_prisma_migrations`` with Prisma's DDL for the engine."""
    ddl = MIGRATIONS_TABLE_DDL[target.engine]
    if target.engine == 'postgresql':
        ddl = ddl.replace('CREATE TABLE _prisma_migrations', 'CREATE TABLE ' + table_ref(target), 1)
    execute_sql(conn, ddl)


def read_records(conn, target):
    """All rows ordered by ``started_at`` as Prisma lists them; None when the table does not exist."""
    if not migrations_table_exists(conn, target):
        return None
    rows = query_rows(conn, 'SELECT %s FROM %s ORDER BY started_at ASC' % (', '.join(RECORD_COLUMNS), table_ref(target)))
    records = []
    for row in rows:
        try:
            records.append(MigrationRecord(*row))
        except ValueError as exc:
            raise PrismaError('Cannot read a timestamp in %s row %r: %s. Fix the row by hand; nothing was changed.'
                              % (MIGRATIONS_TABLE, row[0], exc))
    return records


# --- status (diagnose_migration_history) ---------------------------------------------------

def _effective_record(records):
    for predicate in (lambda r: r.is_applied, lambda r: r.is_failed):
        matching = [r for r in records if predicate(r)]
        if matching:
            return matching[-1]
    return records[-1]


def classify(migrations_dir, records):
    """Status per migration exactly as ``prisma migrate status`` decides it.

    Returns ``(migrations, summary, up_to_date)``: one dict per migration (local ones in folder
    order, then the ones only in the database), lists of names per status, and whether every
    migration is applied. A migration is ``failed`` when one of its rows has neither
    ``finished_at`` nor ``rolled_back_at``; ``modified`` when the first row Prisma finds for it
    does not match the local file's checksum; ``pending`` when it has no row at all;
    ``rolled_back`` when all of its rows are rolled back (``migrate deploy`` applies it again);
    ``missing_locally`` when rows exist but no folder does - unless one of them is failed: Prisma
    lists such a migration under both headings and refuses to deploy (P3009) until it is resolved,
    so ``failed`` is the status that says what to do.
    """
    records = records or []
    by_name = {}
    for record in records:
        by_name.setdefault(record.migration_name, []).append(record)
    summary = dict((status, []) for status in STATUSES)
    entries = []
    names = list(migrations_dir.names)
    for record in records:
        if record.migration_name not in names and record.migration_name not in migrations_dir.names:
            names.append(record.migration_name)
    seen = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        local = migrations_dir.get(name)
        rows = by_name.get(name, [])
        entry = dict(name=name, local=local is not None, records=len(rows),
                     checksum_local=local.checksum if local else None, checksum_db=None, checksum_matches=None,
                     started_at=None, finished_at=None, rolled_back_at=None, applied_steps_count=None, logs=None)
        if rows:
            effective = _effective_record(rows)
            entry.update(checksum_db=effective.checksum, started_at=format_timestamp(effective.started_at),
                         finished_at=format_timestamp(effective.finished_at),
                         rolled_back_at=format_timestamp(effective.rolled_back_at),
                         applied_steps_count=effective.applied_steps_count, logs=effective.logs)
        if local is None:
            status = 'failed' if any(r.is_failed for r in rows) else 'missing_locally'
        elif not rows:
            status = 'pending'
        else:
            # Prisma compares the first row (by started_at) it finds for the name
            matches = local.matches(rows[0].checksum)
            entry['checksum_matches'] = matches
            if any(r.is_failed for r in rows):
                status = 'failed'
            elif not matches:
                status = 'modified'
            elif any(r.is_applied for r in rows):
                status = 'applied'
            else:
                status = 'rolled_back'
        entry['status'] = status
        summary[status].append(name)
        entries.append(entry)
    up_to_date = all(not summary[s] for s in STATUSES if s != 'applied')
    return entries, summary, up_to_date


# --- plans ---------------------------------------------------------------------------------

def _action(action, migration=None, **extra):
    result = dict(action=action, migration=migration)
    result.update(extra)
    return result


def plan_mark_applied(migrations_dir, records, name, table_exists=True):
    """What ``prisma migrate resolve --applied NAME`` does; [] when it is already applied.

    Prisma refuses an applied migration with P3008; here that is simply "nothing to do".
    """
    local = migrations_dir.get(name)
    if local is None:
        raise MigrationNameError(
            'The migration %s could not be found in %s. Please make sure that the migration exists, and that you included the '
            'whole name of the directory (example: "20201207184859_initial_migration"); nothing was changed.'
            % (name, migrations_dir.path), code='P3017')
    local.read_script()
    rows = [r for r in (records or []) if r.migration_name == name]
    if any(r.finished_at is not None for r in rows):
        return []
    actions = []
    if not table_exists:
        actions.append(_action('create_migrations_table'))
    for row in rows:
        if row.is_failed:
            actions.append(_action('mark_rolled_back', name, id=row.id, reason='unfinished earlier attempt'))
    actions.append(_action('mark_applied', name, checksum=local.checksum))
    return actions


def plan_mark_rolled_back(records, name):
    """What ``prisma migrate resolve --rolled-back NAME`` does; P3011 / P3012 refusals as Prisma's.

    Returns [] when every unfinished row is already rolled back (a repeated run).
    """
    rows = [r for r in (records or []) if r.migration_name == name]
    if not rows:
        raise MigrationStateError('Migration `%s` cannot be rolled back because it was never applied to the database. '
                                  'Check the name (the whole folder name); nothing was changed.' % name, code='P3011')
    if all(r.finished_at is not None for r in rows):
        raise MigrationStateError('Migration `%s` cannot be rolled back because it is not in a failed state. To forget a '
                                  'successful migration use state=absent (deletes its record); nothing was changed.' % name,
                                  code='P3012')
    return [_action('mark_rolled_back', name, id=r.id) for r in rows if r.is_failed]


def plan_delete(records, name):
    """Delete every row of ``name`` (runbook 001, level 2); [] when there is none."""
    return [_action('delete_record', name, id=r.id) for r in (records or []) if r.migration_name == name]


def _failed_details(records):
    lines = []
    for r in records:
        if r.is_failed:
            logs = (r.logs or '').strip()
            lines.append('The `%s` migration started at %s failed%s' % (
                r.migration_name, format_timestamp(r.started_at), ' with the following logs:\n' + logs if logs else ''))
    return '\n'.join(lines)


def plan_deploy(migrations_dir, records, table_exists=True, existing_tables=None):
    """What ``prisma migrate deploy`` would do: apply every local migration without a live row.

    Refuses like Prisma: P3009 when a failed migration exists, P3005 when the table is missing
    but the schema is not empty.
    """
    actions = []
    if not table_exists:
        if existing_tables:
            raise MigrationStateError(
                'The database schema is not empty (tables: %s) but has no _prisma_migrations table. Baseline it first: '
                'state=synced marks migrations whose objects already exist as applied, or state=applied per migration; '
                'nothing was changed.' % ', '.join(existing_tables[:10]), code='P3005')
        actions.append(_action('create_migrations_table'))
    records = records or []
    if any(r.is_failed for r in records):
        raise MigrationStateError(
            'migrate found failed migrations in the target database, new migrations will not be applied. Resolve them first '
            '(state=rolled_back after undoing their partial effects, or state=applied if they did complete, or state=synced '
            'to decide by probing); nothing was changed.\n' + _failed_details(records), code='P3009')
    live = set(r.migration_name for r in records if r.rolled_back_at is None)
    for local in migrations_dir.migrations:
        if local.name not in live:
            local.read_script()
            actions.append(_action('apply', local.name, checksum=local.checksum))
    return actions


def plan_sync(migrations_dir, records, prober, table_exists=True, only=None):
    """Runbook 000's decision for every migration not applied (pending, rolled back or failed).

    ``prober.probe(name, applied, pending_after)`` returns a report whose ``state`` is ``present``
    (every change the migration makes is in the database), ``absent`` (none is), ``empty``
    (nothing to see and nothing that running it could change), ``partial`` or ``unprobeable``;
    ``prober.would_fail(name, report)`` lists why running it now would be wrong (it would fail, or
    leave objects other than the history with it in place has them).

    Every candidate is decided, in folder order: ``mark_applied``, ``apply``, ``undecidable`` or
    ``conflict``. Actions are planned for the decided ones before the first that is not; nothing
    after it is changed. Returns ``(actions, decisions, blocked)``: ``blocked`` lists the
    decisions that need a human (with the statement that stopped each and the commands that
    resolve it).
    """
    records = records or []
    entries, summary, _up = classify(migrations_dir, records)
    candidates = [e['name'] for e in entries if e['status'] in ('pending', 'rolled_back', 'failed') and e['local']]
    if only is not None:
        if migrations_dir.get(only) is None:
            raise MigrationNameError('The migration %s is not in %s; check the name (the whole folder name). Nothing was changed.'
                                     % (only, migrations_dir.path), code='P3017')
    applied = set(e['name'] for e in entries if e['status'] in ('applied', 'modified') and e['local'])
    missing = summary['missing_locally']
    decisions, actions, blocked = [], [], []
    if candidates and not table_exists and (only is None or only in candidates):
        actions.append(_action('create_migrations_table'))
    for position, name in enumerate(candidates):
        if only is not None and name != only:
            continue
        local = migrations_dir.get(name)
        local.read_script()
        others = list(candidates[position + 1:]) if only is None else [n for n in candidates if n != name]
        if missing:
            decision = dict(migration=name, probe='unprobeable', decision='undecidable',
                            reason='applied migration(s) %s have no folder here, so what they changed cannot be modelled; '
                                   'sync from the release that has them' % ', '.join(missing))
        else:
            report = prober.probe(name, applied, others)
            decision = _decide(prober, name, report)
        rows = [r for r in records if r.migration_name == name]
        acted = not blocked and decision['decision'] in ('mark_applied', 'apply')
        decision['acted'] = acted
        if acted:
            for row in rows:
                if row.is_failed:
                    actions.append(_action('mark_rolled_back', name, id=row.id, reason='unfinished earlier attempt'))
            actions.append(_action(decision['decision'], name, checksum=local.checksum, reason=decision['reason']))
            applied.add(name)
        elif decision['decision'] in ('undecidable', 'conflict'):
            decision['resolve'] = _resolve_commands(name, decision)
            blocked.append(decision)
            if decision.get('probe') == 'unprobeable' and decision.get('present') and not decision.get('absent'):
                applied.add(name)  # its schema changes are in place: later ones are judged as if it ran
        decisions.append(decision)
    failed_left = [r.migration_name for r in records if r.is_failed and r.migration_name not in candidates]
    if failed_left and any(a['action'] == 'apply' for a in actions):
        raise MigrationStateError('Failed migrations outside this sync block new migrations: %s. Resolve them first; nothing '
                                  'was changed.' % ', '.join(sorted(set(failed_left))), code='P3009')
    return actions, decisions, blocked


def _decide(prober, name, report):
    decision = dict(migration=name, probe=report.state)
    decision.update(report.as_dict())
    if report.state == 'present':
        decision['decision'] = 'mark_applied'
    elif report.state in ('absent', 'empty'):
        problems = prober.would_fail(name, report)
        if problems:
            decision.update(decision='conflict', reason='running it now would not do what its history did: %s'
                            % '; '.join(problems[:5]))
        else:
            decision['decision'] = 'apply'
    elif report.state == 'partial':
        decision['decision'] = 'conflict'
    else:
        decision['decision'] = 'undecidable'
    return decision


def _resolve_commands(name, decision):
    quoted = json.dumps(name)
    if decision['decision'] == 'conflict':
        return ['Finish or undo the partial change by hand (or restore a backup), then run state=synced again.']
    return ['If it ran: state=applied migration=%s (the same as: npx prisma migrate resolve --applied %s).' % (quoted, quoted),
            'If it did not run: state=deployed (applies it and the migrations after it, as prisma migrate deploy does).']


def sync_blocked_message(blocked, actions):
    """The failure message of a sync that could not decide everything (what was done, what is left, how to resolve)."""
    done = [a for a in actions if a['action'] in ('mark_applied', 'apply')]
    lines = []
    for decision in blocked:
        stopped = decision.get('stopped_by')
        where = ' (line %d: %s)' % (stopped['line'], stopped['statement']) if stopped else ''
        kind = 'is partly applied' if decision['decision'] == 'conflict' and decision.get('probe') == 'partial' else \
            ('cannot be run safely' if decision['decision'] == 'conflict' else 'cannot be decided')
        detail = decision.get('reason') or ''
        if decision.get('probe') == 'partial':
            detail = 'exists: %s | missing: %s' % (', '.join(decision.get('present') or []) or '-',
                                                   ', '.join(decision.get('absent') or []) or '-')
        lines.append('%s %s%s: %s. %s' % (decision['migration'], kind, where, detail, ' '.join(decision.get('resolve') or [])))
    head = ('%d migration(s) synced before it; ' % len(done)) if done else 'Nothing was changed; '
    return ('Sync stopped at %s: %snothing after it was changed.\n' % (blocked[0]['migration'], head)) + '\n'.join(lines)


# --- simulation (check mode and diff) ------------------------------------------------------

def simulate(records, actions, now=None):
    """The rows as they would be after ``actions`` (new rows get id ``(new)``)."""
    now = now or _utc_now()
    result = [MigrationRecord(r.id, r.checksum, r.finished_at, r.migration_name, r.logs, r.rolled_back_at, r.started_at,
                              r.applied_steps_count) for r in (records or [])]
    for action in actions:
        kind = action['action']
        if kind == 'mark_rolled_back':
            for r in result:
                if r.id == action['id']:
                    r.rolled_back_at = now
        elif kind == 'mark_applied':
            result.append(MigrationRecord('(new)', action['checksum'], now, action['migration'], '', None, now, 0))
        elif kind == 'apply':
            result.append(MigrationRecord('(new)', action['checksum'], now, action['migration'], None, None, now, 1))
        elif kind == 'delete_record':
            result = [r for r in result if r.id != action['id']]
    return result


def render_records(records):
    """Rows as text, one line each, for ``--diff``."""
    if records is None:
        return '(no _prisma_migrations table)\n'
    lines = []
    for r in records:
        lines.append('%s  %-11s  checksum=%s  started=%s  finished=%s  rolled_back=%s  steps=%d  id=%s' % (
            r.migration_name, r.state, (r.checksum or '')[:16], format_timestamp(r.started_at),
            format_timestamp(r.finished_at), format_timestamp(r.rolled_back_at), r.applied_steps_count, r.id))
    return '\n'.join(lines) + '\n' if lines else '(no rows)\n'


# --- writes (sql-schema-connector migration persistence) ------------------------------------

def _p(target):
    return placeholder(target.engine)


def insert_applied(conn, target, name, checksum, now=None):
    """Row as ``resolve --applied`` writes it: uuid4, logs '', started_at = finished_at = now, 0 steps."""
    now = now or _utc_now()
    new_id = str(uuid.uuid4())
    p = _p(target)
    ts = db_timestamp(target.engine, now)
    execute_sql(conn, 'INSERT INTO %s (id, checksum, logs, started_at, finished_at, migration_name) VALUES (%s, %s, %s, %s, %s, %s)'
                % (table_ref(target), p, p, p, p, p, p), (new_id, checksum, '', ts, ts, name))
    return new_id


def insert_started(conn, target, name, checksum, now=None):
    """Row as ``migrate deploy`` writes it before running the script: logs NULL, no finished_at."""
    now = now or _utc_now()
    new_id = str(uuid.uuid4())
    p = _p(target)
    execute_sql(conn, 'INSERT INTO %s (id, checksum, started_at, migration_name) VALUES (%s, %s, %s, %s)'
                % (table_ref(target), p, p, p, p), (new_id, checksum, db_timestamp(target.engine, now), name))
    return new_id


def record_successful_step(conn, target, record_id):
    p = _p(target)
    execute_sql(conn, 'UPDATE %s SET applied_steps_count = applied_steps_count + 1 WHERE id = %s' % (table_ref(target), p), (record_id,))


def record_finished(conn, target, record_id, now=None):
    p = _p(target)
    execute_sql(conn, 'UPDATE %s SET finished_at = %s WHERE id = %s' % (table_ref(target), p, p),
                (db_timestamp(target.engine, now or _utc_now()), record_id))


def record_failed_step(conn, target, record_id, logs):
    p = _p(target)
    execute_sql(conn, 'UPDATE %s SET logs = %s WHERE id = %s' % (table_ref(target), p, p), (logs, record_id))


def mark_rolled_back_by_id(conn, target, record_id, now=None):
    p = _p(target)
    execute_sql(conn, 'UPDATE %s SET rolled_back_at = %s WHERE id = %s' % (table_ref(target), p, p),
                (db_timestamp(target.engine, now or _utc_now()), record_id))


def delete_record_by_id(conn, target, record_id):
    p = _p(target)
    return execute_sql(conn, 'DELETE FROM %s WHERE id = %s' % (table_ref(target), p), (record_id,))


def _apply_error_logs(name, code, error):
    # Prisma stores the Display of its P3018 ApplyMigrationError in `logs`.
    return ('A migration failed to apply. New migrations cannot be applied before the error is recovered from. Read more about '
            'how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve\n\n'
            'Migration name: %s\n\nDatabase error code: %s\n\nDatabase error:\n%s\n' % (name, code, error))


def run_script(conn, target, name, script):
    """Run a migration script the way Prisma's connector does; returns None or ``(code, error)``.

    PostgreSQL: the whole script in one simple-query call (one implicit transaction). MySQL:
    statement by statement (MySQL DDL is not transactional either way), naming the failing
    query number as Prisma does. SQLite: ``executescript``, like rusqlite's ``execute_batch``.
    """
    if target.engine == 'postgresql':
        if not split_script(script, 'postgresql'):
            return None
        import psycopg2
        cur = conn.cursor()
        try:
            cur.execute(script)
        except psycopg2.Error as exc:
            return (exc.pgcode or 'none', describe_error(target, exc))
        finally:
            cur.close()
        return None
    if target.engine == 'sqlite':
        import sqlite3
        try:
            conn.executescript(script)
        except sqlite3.Error as exc:
            code = getattr(exc, 'sqlite_errorcode', None)
            return (str(code) if code is not None else 'none', str(exc))
        return None
    import pymysql
    try:
        statements = split_script(script, 'mysql')
    except SqlScriptError as exc:
        return ('none', exc.message)
    for index, statement in enumerate(statements):
        cur = conn.cursor()
        try:
            cur.execute(statement.text)
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 'none'
            message = exc.args[1] if len(exc.args) > 1 else str(exc)
            return (str(code), '%s\n\nPlease check the query number %d from the migration file.'
                    % (describe_error(target, message), index + 1))
        finally:
            cur.close()
    return None


def apply_migration(conn, target, local):
    """Apply one migration exactly as ``migrate deploy`` records it; raises :class:`MigrationApplyError`."""
    script = local.read_script()
    record_id = insert_started(conn, target, local.name, compute_checksum(local.script))
    failure = run_script(conn, target, local.name, script)
    if failure is None:
        record_successful_step(conn, target, record_id)
        record_finished(conn, target, record_id)
        return record_id
    code, error = failure
    logs = _apply_error_logs(local.name, code, error)
    record_failed_step(conn, target, record_id, logs)
    raise MigrationApplyError('Migration %s failed to apply (database error code %s): %s. Its row is now marked failed '
                              '(finished_at NULL, error in logs); fix the cause, undo any partial change, then run '
                              'state=rolled_back and deploy again.' % (local.name, code, error), code='P3018',
                              details=dict(id=record_id, database_error_code=code, database_error=error))


def execute_actions(conn, target, migrations_dir, actions):
    """Carry out planned actions in order; each gets ``done: true`` (and ``id`` for new rows)."""
    done = []
    for action in actions:
        kind = action['action']
        if kind == 'create_migrations_table':
            create_migrations_table(conn, target)
        elif kind == 'mark_rolled_back':
            mark_rolled_back_by_id(conn, target, action['id'])
        elif kind == 'mark_applied':
            action['id'] = insert_applied(conn, target, action['migration'], action['checksum'])
        elif kind == 'delete_record':
            delete_record_by_id(conn, target, action['id'])
        elif kind == 'apply':
            try:
                action['id'] = apply_migration(conn, target, migrations_dir.get(action['migration']))
            except MigrationApplyError as exc:
                action['done'] = False
                action['error'] = exc.message
                exc.details['actions'] = done + [action]
                raise
        else:
            raise ValueError('unknown action %r' % kind)
        action['done'] = True
        done.append(action)
    return done


# --- advisory lock -------------------------------------------------------------------------

class MigrationLock(object):
    """The lock Prisma Migrate takes, waited for at most ``timeout`` seconds.

    PostgreSQL ``pg_advisory_lock(72707369)``, MySQL ``GET_LOCK('prisma_migrate', n)``,
    SQLite ``PRAGMA main.locking_mode=EXCLUSIVE`` plus an exclusive transaction to take it now.
    """

    def __init__(self, conn, target, timeout=DEFAULT_LOCK_TIMEOUT):
        self.conn = conn
        self.target = target
        self.timeout = max(0, timeout)
        self.held = False

    def _timeout_error(self, holder=''):
        return LockTimeoutError(
            'Timed out after %ss waiting for the Prisma migrate lock on %s%s: another `prisma migrate` (or this module) is '
            'running. Wait for it to finish or raise lock_timeout; nothing was changed.' % (self.timeout, self.target.redacted(), holder))

    def acquire(self):
        engine = self.target.engine
        if engine == 'postgresql':
            deadline = time.time() + self.timeout
            while True:
                rows = query_rows(self.conn, 'SELECT pg_try_advisory_lock(%d)' % POSTGRES_LOCK_ID)
                if rows and rows[0][0]:
                    break
                if time.time() >= deadline:
                    raise self._timeout_error()
                time.sleep(0.2)
        elif engine == 'mysql':
            rows = query_rows(self.conn, "SELECT GET_LOCK('%s', %d)" % (MYSQL_LOCK_NAME, int(math.ceil(self.timeout))))
            if not rows or rows[0][0] != 1:
                raise self._timeout_error()
        else:
            import sqlite3
            try:
                execute_sql(self.conn, 'PRAGMA busy_timeout = %d' % int(self.timeout * 1000))
                execute_sql(self.conn, 'PRAGMA main.locking_mode=EXCLUSIVE')
                execute_sql(self.conn, 'BEGIN EXCLUSIVE')
                execute_sql(self.conn, 'COMMIT')
            except sqlite3.OperationalError as exc:
                if 'locked' in str(exc) or 'busy' in str(exc):
                    raise self._timeout_error(' (database file locked)')
                raise
        self.held = True
        return self

    def release(self):
        if not self.held:
            return
        self.held = False
        engine = self.target.engine
        try:
            if engine == 'postgresql':
                query_rows(self.conn, 'SELECT pg_advisory_unlock(%d)' % POSTGRES_LOCK_ID)
            elif engine == 'mysql':
                query_rows(self.conn, "SELECT RELEASE_LOCK('%s')" % MYSQL_LOCK_NAME)
            else:
                execute_sql(self.conn, 'PRAGMA main.locking_mode=NORMAL')
                query_rows(self.conn, 'SELECT count(*) FROM sqlite_master')
        except Exception:  # pylint: disable=broad-except
            # closing the connection releases the lock in every engine
            pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False


# --- backup of the bookkeeping -------------------------------------------------------------

def backup_records(records, path, target):
    """Write the rows as JSON (mode 0600) before a change; returns the file written.

    ``path`` may be a file path or an existing directory (a timestamped file is created in it).
    The file appears atomically (temp file + rename).
    """
    stamp = _utc_now().strftime('%Y%m%dT%H%M%S.%f')[:-3] + 'Z'
    if os.path.isdir(path):
        path = os.path.join(path, '_prisma_migrations-%s.json' % stamp)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o700)
    payload = dict(table=MIGRATIONS_TABLE, engine=target.engine, database=target.redacted(), taken_at=format_timestamp(_utc_now()),
                   table_exists=records is not None, rows=[r.as_dict() for r in (records or [])])
    fd, tmp = tempfile.mkstemp(prefix='.prisma-migrations-', dir=folder)
    try:
        with os.fdopen(fd, 'w') as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write('\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
