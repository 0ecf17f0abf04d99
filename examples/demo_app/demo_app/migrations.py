"""The app's own `migrate`: applies a Prisma migrations folder and books it as `prisma migrate deploy` does.

Rows in _prisma_migrations must be indistinguishable from the Prisma CLI's, because the
collection's prisma_migration_state module and the real Prisma CLI read them afterwards.
"""
import hashlib
import os
import re
import uuid

from . import db

# The DDL Prisma's schema engine runs when the table is missing (sql-schema-connector, per flavour).
MIGRATIONS_TABLE_DDL = {
    "sqlite": """CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);
""",
    "mysql": """CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
""",
    "postgresql": """CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
""",
}

# The advisory locks Prisma takes, so this runner and a real `prisma migrate deploy` never overlap.
ADVISORY_LOCK = {
    "mysql": "SELECT GET_LOCK('prisma_migrate', 10)",
    "postgresql": "SELECT pg_advisory_lock(72707369)",
}

LOCK_PROVIDER = re.compile(r'^\s*provider\s*=\s*"([^"]+)"', re.MULTILINE)


class MigrationError(Exception):
    """Migrating stopped; the message names the migration and the database's error."""


def checksum(script_bytes):
    return hashlib.sha256(script_bytes).hexdigest()


def local_migrations(migrations_dir):
    """[(name, script bytes)] in name order: the timestamp prefix makes that the creation order."""
    if not os.path.isdir(migrations_dir):
        raise MigrationError("migrations folder %s does not exist" % migrations_dir)
    found = []
    for name in sorted(os.listdir(migrations_dir)):
        script = os.path.join(migrations_dir, name, "migration.sql")
        if os.path.isfile(script):
            with open(script, "rb") as handle:
                found.append((name, handle.read()))
    return found


def check_lock_provider(migrations_dir, engine):
    """Refuse migrations written for another engine, as Prisma does (P3019)."""
    lock_file = os.path.join(migrations_dir, "migration_lock.toml")
    if not os.path.isfile(lock_file):
        return
    with open(lock_file, encoding="utf-8") as handle:
        match = LOCK_PROVIDER.search(handle.read())
    provider = match.group(1) if match else ""
    if provider and provider != engine:
        raise MigrationError(
            "migration_lock.toml in %s is for provider %r but DATABASE_URL is %s; "
            "point DEMO_PRISMA_DIR at the %s migrations" % (migrations_dir, provider, engine, engine))


def migration_rows(database):
    if not database.table_exists("_prisma_migrations"):
        return []
    return database.query(
        "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count"
        " FROM _prisma_migrations ORDER BY started_at ASC")


def summarize(rows, local_names):
    """Names per state. A migration counts as applied when a finished, not rolled-back row exists."""
    applied = [r["migration_name"] for r in rows if r["finished_at"] is not None and r["rolled_back_at"] is None]
    failed = [r["migration_name"] for r in rows if r["finished_at"] is None and r["rolled_back_at"] is None]
    pending = [name for name in local_names if name not in applied]
    return {"applied": applied, "failed": failed, "pending": pending}


def status(url, migrations_dir):
    with db.connect(url) as database:
        rows = migration_rows(database)
    names = [name for name, _unused in local_migrations(migrations_dir)]
    return summarize(rows, names)


def deploy(url, migrations_dir, log):
    """Apply every pending migration in order; returns the names applied. Stops at the first failure."""
    check_lock_provider(migrations_dir, url.engine)
    local = local_migrations(migrations_dir)
    with db.connect(url, create=True, multi_statements=True) as database:
        if url.engine in ADVISORY_LOCK:
            database.execute(ADVISORY_LOCK[url.engine])
        if not database.table_exists("_prisma_migrations"):
            database.run_script(MIGRATIONS_TABLE_DDL[url.engine])
        state = summarize(migration_rows(database), [name for name, _unused in local])
        if state["failed"]:
            raise MigrationError(
                "migration %s failed earlier and is not resolved; fix it and mark it rolled back or applied "
                "before deploying (Prisma P3009)" % state["failed"][0])
        pending = [(name, script) for name, script in local if name in state["pending"]]
        log("%d migration(s) found, %d pending" % (len(local), len(pending)))
        for name, script in pending:
            log("Applying migration `%s`" % name)
            apply_one(database, name, script)
        return [name for name, _unused in pending]


def apply_one(database, name, script):
    """Book and run one migration in the order Prisma does: started row, script, step count, finished_at."""
    row_id = str(uuid.uuid4())
    database.execute(
        "INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name) VALUES (%s, %s, %s, %s)",
        (row_id, checksum(script), database.now(), name))
    try:
        database.run_script(script.decode("utf-8"))
    except db.DatabaseError as exc:
        # Prisma keeps the failed row (finished_at NULL) with the error in logs: that is what
        # blocks the next deploy until someone resolves it.
        database.execute("UPDATE _prisma_migrations SET logs = %s WHERE id = %s", (str(exc), row_id))
        raise MigrationError("migration %s failed: %s" % (name, exc)) from exc
    database.execute(
        "UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1 WHERE id = %s", (row_id,))
    database.execute("UPDATE _prisma_migrations SET finished_at = %s WHERE id = %s", (database.now(), row_id))
