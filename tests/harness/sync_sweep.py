"""Run ``prisma_migration_state`` over a whole migration history the way an operator would.

``deploy`` applies the history to an empty database (``state=deployed``); ``sweep`` then takes
every migration in turn, deletes its row and runs ``state=synced``: a migration that ran must be
marked applied or reported undecidable, never run again and never left failed, and the schema
must come out exactly as it went in (compared with :func:`schema_fingerprint`, which reads the
catalog with its own queries, not the module's). ``reapply`` drops the objects of additive
migrations by hand and expects ``synced`` to apply them again.

Each run of the module is the module file itself in a child process, as Ansible would run it.
"""
import json
import os
import re
import subprocess
import sys
import time

from tests.harness.collection import COLLECTIONS_PATH

MODULE = "ansible_collections.saferelease.core.plugins.modules.prisma_migration_state"


def run_module(params, check=False):
    """The module's JSON result for ``params`` (run as Ansible runs a module: a child process reading its arguments)."""
    args = dict(params, _ansible_check_mode=check, _ansible_diff=False)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
    proc = subprocess.run([sys.executable, "-m", MODULE], input=json.dumps(dict(ANSIBLE_MODULE_ARGS=args)),
                          capture_output=True, text=True, env=env, check=False, timeout=600)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("the module printed no JSON:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))


def placeholder(database):
    return "?" if database.engine == "sqlite" else "%s"


def rows_of(database, name):
    p = placeholder(database)
    return database.execute("SELECT id, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM "
                            "_prisma_migrations WHERE migration_name = %s" % p, (name,))


def failed_rows(database):
    return database.execute("SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NULL AND rolled_back_at IS NULL")


# --- an independent picture of the schema ------------------------------------------------------------

_FINGERPRINT = {
    "postgresql": [
        "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, is_nullable, column_default, "
        "udt_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
        "SELECT t.typname, e.enumlabel, e.enumsortorder FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid ORDER BY 1, 3",
        "SELECT proname, md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2",
        "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
        "SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1",
        "SELECT polname FROM pg_policy ORDER BY 1",
        "SELECT extname FROM pg_extension ORDER BY 1",
        "SELECT objsubid, description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid "
        "WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 2",
    ],
    "mysql": [
        "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 2",
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, COLLATION FROM "
        "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 2, 4",
        "SELECT CONSTRAINT_NAME, TABLE_NAME, UPDATE_RULE, DELETE_RULE, REFERENCED_TABLE_NAME FROM "
        "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY 1",
        "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() "
        "ORDER BY 1",
        "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1",
        "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1",
    ],
    "sqlite": [
        # columns by name: a column added again lands at the end of the stored CREATE TABLE text, as any re-add would
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk FROM sqlite_master m JOIN pragma_table_info(m.name) p "
        "WHERE m.type = 'table' ORDER BY 1, 2",
        "SELECT m.name, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete FROM sqlite_master m "
        "JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY 1, 3",
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type <> 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1, 2",
    ],
}


def schema_fingerprint(database):
    """Everything the catalog shows about the schema except ``_prisma_migrations``' rows, as one comparable value."""
    parts = []
    for query in _FINGERPRINT[database.engine]:
        found = database.execute(query) or []
        parts.append([tuple(str(v) for v in row) for row in found if "_prisma_migrations" not in " ".join(map(str, row))])
    return parts


def fingerprint_diff(first, second):
    lines = []
    for a, b in zip(first, second):
        for row in a:
            if row not in b:
                lines.append("- %s" % (row,))
        for row in b:
            if row not in a:
                lines.append("+ %s" % (row,))
    return "\n".join(lines[:20])


# --- deploy, sweep, re-apply ------------------------------------------------------------------------

class Outcome(object):
    """What ``synced`` did with one migration whose row was deleted."""

    def __init__(self, name, decision, probe, reason, acted, elapsed, problems):
        self.name = name
        self.decision = decision
        self.probe = probe
        self.reason = reason
        self.acted = acted
        self.elapsed = elapsed
        self.problems = problems

    @property
    def decided(self):
        return self.decision in ("mark_applied", "apply") and self.acted

    def as_dict(self):
        return dict(name=self.name, decision=self.decision, probe=self.probe, reason=self.reason, acted=self.acted,
                    elapsed_s=round(self.elapsed, 3), problems=self.problems)


def deploy(database, migrations_dir):
    start = time.time()
    result = run_module(dict(database_url=database.url, migrations_dir=migrations_dir, state="deployed"))
    elapsed = time.time() - start
    if result.get("failed"):
        raise AssertionError("deployed failed: %s" % result.get("msg"))
    status = run_module(dict(database_url=database.url, migrations_dir=migrations_dir))
    if not status.get("up_to_date"):
        raise AssertionError("not up to date after deployed: %s" % status.get("summary"))
    return elapsed


def sweep_one(database, migrations_dir, name, reference):
    """Delete ``name``'s row, run synced, check the outcome; leaves the database as it found it."""
    problems = []
    p = placeholder(database)
    database.execute("DELETE FROM _prisma_migrations WHERE migration_name = %s" % p, (name,))
    start = time.time()
    result = run_module(dict(database_url=database.url, migrations_dir=migrations_dir, state="synced"))
    elapsed = time.time() - start
    decisions = [d for d in result.get("sync") or [] if d["migration"] == name]
    if not decisions:
        return Outcome(name, "error", None, result.get("msg"), False, elapsed, ["no decision: %s" % result.get("msg")])
    decision = decisions[0]
    rows = rows_of(database, name)
    if decision["decision"] == "mark_applied":
        if len(rows) != 1 or rows[0][4] != 0 or rows[0][2] is None:
            problems.append("marked applied, but its row is %r" % (rows,))
    elif decision["decision"] == "apply":
        if decision["probe"] != "empty":
            problems.append("ran again a migration that had run (probe %s)" % decision["probe"])
    elif decision["decision"] == "conflict":
        problems.append("called a fully applied migration a conflict: %s" % decision.get("reason"))
    elif not result.get("failed"):
        problems.append("undecidable, yet the task did not fail")
    if decision["decision"] in ("undecidable", "conflict") and rows:
        problems.append("undecidable, yet a row was written")
    if failed_rows(database):
        problems.append("left failed rows: %s" % failed_rows(database))
    if not rows:
        # the report's own command for a migration that ran
        repaired = run_module(dict(database_url=database.url, migrations_dir=migrations_dir, state="applied", migration=name))
        if repaired.get("failed"):
            problems.append("state=applied failed: %s" % repaired.get("msg"))
    now = schema_fingerprint(database)
    if now != reference:
        problems.append("the schema changed:\n%s" % fingerprint_diff(reference, now))
    return Outcome(name, decision["decision"], decision.get("probe"), decision.get("reason"), decision.get("acted"), elapsed,
                   problems)


_OBJECT_SQL = {
    "column": {"postgresql": 'ALTER TABLE "{0}" DROP COLUMN "{1}"', "sqlite": 'ALTER TABLE "{0}" DROP COLUMN "{1}"',
               "mysql": "ALTER TABLE `{0}` DROP COLUMN `{1}`"},
    "index": {"postgresql": 'DROP INDEX "{1}"', "sqlite": 'DROP INDEX "{1}"', "mysql": "DROP INDEX `{1}` ON `{0}`"},
    "table": {"postgresql": 'DROP TABLE "{0}"', "sqlite": 'DROP TABLE "{0}"', "mysql": "DROP TABLE `{0}`"},
}


def reappliable(corpus):
    """Additive migrations whose objects no later migration mentions: (name, [statements that drop them])."""
    found = []
    for position, (name, _sql, step) in enumerate(corpus.migrations):
        if not step.undo:
            continue
        later = "\n".join(sql for _n, sql, _s in corpus.migrations[position + 1:])
        # a SQLite table rebuild re-creates the whole table: nothing may have touched that table since
        rebuilt = re.findall(r'CREATE TABLE "new_([^"]+)"', _sql)
        identifiers = [item[-1] for item in step.undo] + rebuilt
        tables = set(item[1] for item in step.undo)
        mentioned = any(re.search(r'[`"]%s[`"]' % re.escape(identifier), later) for identifier in identifiers) or any(
            re.search(r'(DROP TABLE|RENAME TABLE|ALTER TABLE) [`"]%s[`"]( RENAME TO|;|\s*$)' % re.escape(table), later, re.M)
            for table in tables)
        if not mentioned:
            found.append((name, [_OBJECT_SQL[item[0]][corpus.engine].format(*item[1:]) for item in step.undo]))
    return found


def reapply_one(database, migrations_dir, name, drops, reference):
    problems = []
    for statement in drops:
        database.execute(statement)
    p = placeholder(database)
    database.execute("DELETE FROM _prisma_migrations WHERE migration_name = %s" % p, (name,))
    result = run_module(dict(database_url=database.url, migrations_dir=migrations_dir, state="synced"))
    decision = next((d for d in result.get("sync") or [] if d["migration"] == name), {})
    if decision.get("decision") != "apply":
        problems.append("expected apply, got %s (%s)" % (decision.get("decision"), decision.get("reason") or result.get("msg")))
    rows = rows_of(database, name)
    if len(rows) != 1 or rows[0][4] != 1 or rows[0][5] is not None:
        problems.append("its row is not the row of an applied migration: %r" % (rows,))
    now = schema_fingerprint(database)
    if now != reference:
        problems.append("the schema is not back as it was:\n%s" % fingerprint_diff(reference, now))
    return problems
