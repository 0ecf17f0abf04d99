"""prisma_migration_state against the real Prisma CLI 6.19.3 on SQLite (``engine: "js"``, better-sqlite3 adapter).

Both directions: rows the module writes must be what Prisma accepts (and what Prisma writes for
the same migrations on a twin database), and rows Prisma writes must be classified by the module the
way Prisma's schema engine classifies them. Prisma's view comes from ``prisma migrate status``
(the engine's diagnosis JSON, its report text and exit code) and from ``prisma migrate deploy``.
"""
import datetime
import os
import shutil

from ansible_collections.saferelease.core.plugins.module_utils.prisma import compute_checksum, parse_timestamp

from tests.compat.prisma_cli import is_uuid, statuses

INIT = "20250101000000_init"
SHIPMENT = "20250821015630_add_shipment_file_field"
CARRIER = "20250901000000_add_carrier"
CARRIER_SQL = ('-- CreateTable\nCREATE TABLE "Carrier" (\n    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,\n'
               '    "name" TEXT NOT NULL\n);\n')
# Fails half-way on data (two shipments with the same status): "Carrier2" is created, the index is not.
UNIQUE = "20250902000000_unique_status"
UNIQUE_SQL = ('CREATE TABLE "Carrier2" ("id" INTEGER NOT NULL PRIMARY KEY);\n'
              'CREATE UNIQUE INDEX "Shipment_status_key" ON "Shipment"("status");\n')
LATER = "20250903000000_later"
LATER_SQL = 'CREATE TABLE "Later" ("id" INTEGER NOT NULL PRIMARY KEY);\n'
DUPLICATE_STATUS = """INSERT INTO "Shipment" ("trackingNumber", "status") VALUES ('T1', 'pending'), ('T2', 'pending');"""
UNDO_UNIQUE = """DROP TABLE "Carrier2"; DELETE FROM "Shipment" WHERE "trackingNumber" = 'T2';"""


def migrations_ddl(project):
    return project.query("SELECT sql FROM sqlite_master WHERE name = '_prisma_migrations'")


def assert_same_row(mine, theirs, same_storage):
    """A module row against the row Prisma wrote for the same migration on a twin database."""
    for column in ("migration_name", "checksum", "applied_steps_count", "logs", "rolled_back_at"):
        assert mine[column] == theirs[column], (column, mine, theirs)
    assert mine["types"]["logs"] == theirs["types"]["logs"], (mine, theirs)  # NULL stays NULL, '' stays ''
    assert mine["rolled_back_at"] is None
    assert is_uuid(mine["id"]) and is_uuid(theirs["id"]) and mine["id"] != theirs["id"]
    now = datetime.datetime.now(datetime.timezone.utc)
    for row in (mine, theirs):
        started, finished = parse_timestamp(row["started_at"]), parse_timestamp(row["finished_at"])
        assert finished is not None and started <= finished <= now
        assert now - started < datetime.timedelta(minutes=10), row
    if same_storage:
        assert mine["types"] == theirs["types"], (mine, theirs)


def test_module_applied_rows_are_accepted_by_prisma(project, project_factory):
    """Runbook 000: the column exists, the record does not. state=applied (= `prisma migrate resolve --applied`)
    writes the row Prisma writes on a twin; Prisma's status then counts it as applied and `migrate deploy` skips
    it and applies the rest."""
    project.add(INIT)
    twin = project_factory("twin", timestamp_format="unixepoch-ms")
    project.copy_migrations_to(twin)
    assert not project.module("deployed")["failed"]
    assert twin.deploy().applied == [INIT]
    for side in (project, twin):
        side.add(SHIPMENT)
        side.add(CARRIER, CARRIER_SQL)
        side.sql(side.read(SHIPMENT).decode("utf-8"))  # applied by hand, never recorded

    result = project.module("applied", migration=SHIPMENT, through_ansible=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and statuses(result) == {INIT: "applied", SHIPMENT: "applied", CARRIER: "pending"}
    twin.resolve_applied(SHIPMENT)

    mine, theirs = project.rows(), twin.rows()
    assert [r["migration_name"] for r in mine] == [r["migration_name"] for r in theirs] == [INIT, SHIPMENT]
    for a, b in zip(mine, theirs):
        assert_same_row(a, b, same_storage=True)
    assert mine[1]["logs"] == "" and mine[1]["types"]["logs"] == "text" and mine[1]["applied_steps_count"] == 0
    assert mine[1]["checksum"] == compute_checksum(project.read(SHIPMENT))
    assert mine[1]["started_at"] == mine[1]["finished_at"] and theirs[1]["started_at"] == theirs[1]["finished_at"]
    assert migrations_ddl(project) == migrations_ddl(twin)

    status = project.status()
    assert status.has_migrations_table and status.history == "databaseIsBehind"
    assert status.pending == [CARRIER] and status.failed == [] and status.edited == []
    assert status.returncode != 0 and not status.up_to_date

    assert project.deploy().applied == [CARRIER]
    rows = project.rows()
    assert [r["migration_name"] for r in rows] == [INIT, SHIPMENT, CARRIER]
    assert rows[1]["id"] == mine[1]["id"] and rows[1]["applied_steps_count"] == 0
    assert project.status().up_to_date
    after = project.module()
    assert after["up_to_date"] and after["summary"]["applied"] == [INIT, SHIPMENT, CARRIER]

    # the reverse: Prisma's resolve --applied row, read by the module
    read = twin.module()
    assert statuses(read) == {INIT: "applied", SHIPMENT: "applied", CARRIER: "pending"} and not read["up_to_date"]


def _deployed_twins(project_factory, timestamp_format):
    mine = project_factory("module", timestamp_format=timestamp_format)
    theirs = project_factory("prisma", timestamp_format=timestamp_format)
    mine.add(INIT)
    mine.add(SHIPMENT)
    mine.add(CARRIER, CARRIER_SQL)
    mine.copy_migrations_to(theirs)
    return mine, theirs


def test_module_deployed_rows_match_prisma_deploy(project_factory):
    """state=deployed writes the rows `prisma migrate deploy` writes (adapter's default ISO-8601 timestamps on the
    Prisma side: the module stores epoch milliseconds like the native engine, Prisma reads both)."""
    mine, theirs = _deployed_twins(project_factory, None)
    result = mine.module("deployed", through_ansible=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and result["up_to_date"]
    assert [(a["action"], a["migration"]) for a in result["actions"] if a["action"] == "apply"] == [
        ("apply", INIT), ("apply", SHIPMENT), ("apply", CARRIER)]
    assert theirs.deploy().applied == [INIT, SHIPMENT, CARRIER]

    mine_rows, their_rows = mine.rows(), theirs.rows()
    assert [r["migration_name"] for r in mine_rows] == [r["migration_name"] for r in their_rows] == [INIT, SHIPMENT, CARRIER]
    for a, b in zip(mine_rows, their_rows):
        assert_same_row(a, b, same_storage=False)
        assert a["logs"] is None and a["types"]["logs"] == "null" and a["applied_steps_count"] == 1
        assert a["types"]["finished_at"] == "integer" and b["types"]["finished_at"] == "text"
    assert mine.user_schema() == theirs.user_schema()
    assert migrations_ddl(mine) == migrations_ddl(theirs)

    status = mine.status()
    assert status.up_to_date and status.returncode == 0 and status.history is None
    assert status.failed == [] and status.edited == [] and status.local == [INIT, SHIPMENT, CARRIER]
    assert mine.deploy().applied == []
    assert len(mine.rows()) == 3

    # the reverse: Prisma's deploy rows, read by the module
    read = theirs.module()
    assert read["up_to_date"] and read["summary"]["applied"] == [INIT, SHIPMENT, CARRIER]
    for entry in read["migrations"]:
        assert entry["checksum_db"] == entry["checksum_local"] and entry["checksum_matches"]
        assert entry["applied_steps_count"] == 1 and entry["finished_at"] and entry["rolled_back_at"] is None
    redeploy = theirs.module("deployed")
    assert not redeploy["failed"] and not redeploy["changed"] and redeploy["actions"] == []


def test_module_deployed_rows_match_native_storage(project_factory):
    """With the adapter writing epoch milliseconds (what the native schema engine stores in SQLite), the module's
    rows equal Prisma's column by column, storage types included."""
    mine, theirs = _deployed_twins(project_factory, "unixepoch-ms")
    result = mine.module("deployed")
    assert not result["failed"] and result["changed"], result.get("msg")
    assert theirs.deploy().applied == [INIT, SHIPMENT, CARRIER]
    for a, b in zip(mine.rows(), theirs.rows()):
        assert_same_row(a, b, same_storage=True)
        assert a["types"]["started_at"] == "integer"
    status = mine.status()
    assert status.up_to_date and status.edited == []


def test_prisma_written_states_read_by_module(project):
    """pending, applied and failed rows written by `prisma migrate deploy`, and the resolve --applied repair: the
    module's statuses are Prisma's, and both refuse to deploy past a failed migration (P3009)."""
    project.add(INIT)
    project.add(SHIPMENT)
    fresh = project.status()
    # This CLI's adapter path cannot diagnose a database without _prisma_migrations (P1014); the module can.
    assert fresh.returncode != 0 and fresh.error == "P1014", fresh
    before = project.module()
    assert statuses(before) == {INIT: "pending", SHIPMENT: "pending"} and not before["up_to_date"]

    assert project.deploy().applied == [INIT, SHIPMENT]
    project.sql(DUPLICATE_STATUS)
    project.add(UNIQUE, UNIQUE_SQL)
    project.add(LATER, LATER_SQL)
    failed = project.deploy(expect_ok=False)
    assert failed.returncode != 0 and "P2002" in failed.error_codes and failed.applied is None, failed

    status = project.status()
    assert status.failed == [UNIQUE] and status.pending == [LATER] and status.returncode != 0
    result = project.module(through_ansible=True)
    assert not result["failed"], result.get("msg")
    assert result["summary"]["failed"] == status.failed and result["summary"]["pending"] == status.pending
    assert result["summary"]["applied"] == [INIT, SHIPMENT] and not result["up_to_date"]
    entry = [m for m in result["migrations"] if m["name"] == UNIQUE][0]
    assert entry["finished_at"] is None and entry["rolled_back_at"] is None and entry["applied_steps_count"] == 0
    assert "Unique constraint failed" in entry["logs"]

    rows_before = project.rows()
    refused = project.deploy(expect_ok=False)
    assert refused.returncode != 0 and "P3009" in refused.error_codes and UNIQUE in refused.output, refused
    blocked = project.module("deployed")
    assert blocked["failed"] and "P3009" in blocked["msg"] and not blocked["changed"]
    assert project.rows() == rows_before

    # hotfix by hand, then `prisma migrate resolve --applied`: the failed row is rolled back, a new row is applied
    project.sql("""DELETE FROM "Shipment" WHERE "trackingNumber" = 'T2';
                   CREATE UNIQUE INDEX "Shipment_status_key" ON "Shipment"("status");""")
    project.resolve_applied(UNIQUE)
    unique_rows = [r for r in project.rows() if r["migration_name"] == UNIQUE]
    assert len(unique_rows) == 2 and unique_rows[0]["rolled_back_at"] is not None and unique_rows[0]["finished_at"] is None
    assert unique_rows[1]["finished_at"] is not None and unique_rows[1]["logs"] == ""
    status = project.status()
    assert status.failed == [] and status.pending == [LATER]
    result = project.module()
    assert statuses(result) == {INIT: "applied", SHIPMENT: "applied", UNIQUE: "applied", LATER: "pending"}
    assert result["summary"]["pending"] == status.pending


def test_module_failed_and_rolled_back_rows_drive_prisma(project):
    """A failure recorded by state=deployed is a failed migration for Prisma (status and P3009); after undoing it
    by hand, state=rolled_back lets `prisma migrate deploy` apply it again."""
    project.add(INIT)
    project.add(SHIPMENT)
    assert not project.module("deployed")["failed"]
    project.sql(DUPLICATE_STATUS)
    project.add(UNIQUE, UNIQUE_SQL)
    project.add(LATER, LATER_SQL)

    failed = project.module("deployed", through_ansible=True)
    assert failed["failed"] and failed["changed"] and "P3018" in failed["msg"]
    assert statuses(failed)[UNIQUE] == "failed" and statuses(failed)[LATER] == "pending"
    row = [r for r in project.rows() if r["migration_name"] == UNIQUE][0]
    assert row["finished_at"] is None and row["rolled_back_at"] is None and row["applied_steps_count"] == 0
    assert row["logs"] and is_uuid(row["id"])

    status = project.status()
    assert status.failed == [UNIQUE] and status.pending == [LATER] and status.returncode != 0
    rows_before = project.rows()
    refused = project.deploy(expect_ok=False)
    assert refused.returncode != 0 and "P3009" in refused.error_codes and UNIQUE in refused.output, refused
    assert project.rows() == rows_before

    # `prisma migrate resolve --rolled-back` is what Prisma offers here, but on this path it needs the native
    # schema engine, which is not installed (and never downloaded): the module is the way to do it.
    native_only = project.cli("migrate", "resolve", "--rolled-back", UNIQUE)
    assert native_only.returncode != 0 and "Could not find schema-engine binary" in native_only.output, native_only
    assert project.rows() == rows_before

    project.sql(UNDO_UNIQUE)
    rolled = project.module("rolled_back", migration=UNIQUE, through_ansible=True)
    assert not rolled["failed"], rolled.get("msg")
    assert rolled["changed"] and statuses(rolled)[UNIQUE] == "rolled_back" and not rolled["up_to_date"]
    status = project.status()
    # Prisma no longer sees a failure; its status lists only LATER as not yet applied, but deploy re-applies UNIQUE
    assert status.failed == [] and status.pending == [LATER] and status.returncode != 0
    deploy = project.deploy()
    assert deploy.applied == [UNIQUE, LATER]
    unique_rows = [r for r in project.rows() if r["migration_name"] == UNIQUE]
    assert len(unique_rows) == 2 and unique_rows[0]["id"] == row["id"] and unique_rows[0]["rolled_back_at"] is not None
    assert unique_rows[1]["finished_at"] is not None and unique_rows[1]["applied_steps_count"] == 1
    assert project.status().up_to_date
    result = project.module()
    assert result["up_to_date"] and result["summary"]["applied"] == [INIT, SHIPMENT, UNIQUE, LATER]


def test_line_endings_edits_and_database_only_migrations(project):
    """CRLF and LF versions of a script are the same migration for both; an edited script is what Prisma's engine
    calls edited (the module: modified; the CLI still prints "up to date" and deploy applies nothing); a migration
    only in the database is the engine's unpersisted migration (the module: missing_locally)."""
    project.add(INIT)
    project.add(SHIPMENT)
    assert project.deploy().applied == [INIT, SHIPMENT]
    project.add(CARRIER, CARRIER_SQL.replace("\n", "\r\n"))
    deployed = project.module("deployed")
    assert not deployed["failed"] and [a["migration"] for a in deployed["actions"]] == [CARRIER]
    # Prisma's LF rows against CRLF files and the module's CRLF row against an LF file
    project.write(SHIPMENT, project.read(SHIPMENT).replace(b"\n", b"\r\n"))
    project.write(CARRIER, CARRIER_SQL)
    status = project.status()
    assert status.up_to_date and status.edited == [] and status.local == [INIT, SHIPMENT, CARRIER]
    result = project.module()
    assert result["up_to_date"] and result["summary"]["applied"] == [INIT, SHIPMENT, CARRIER]
    assert all(m["checksum_matches"] for m in result["migrations"])

    project.write(SHIPMENT, project.read(SHIPMENT) + b"-- edited after deploy\r\n")
    project.write(CARRIER, CARRIER_SQL + "-- edited after deploy\n")
    shutil.rmtree(os.path.join(project.migrations, INIT))
    status = project.status()
    assert status.edited == [SHIPMENT, CARRIER] and status.failed == [] and status.pending == []
    assert status.history == "migrationsDirectoryIsBehind" and status.db_only == [INIT]
    assert status.up_to_date and status.returncode == 0  # the CLI reports neither edits nor database-only rows
    result = project.module()
    assert result["summary"]["modified"] == status.edited and result["summary"]["missing_locally"] == status.db_only
    assert result["summary"]["pending"] == [] and not result["up_to_date"]
    entry = [m for m in result["migrations"] if m["name"] == SHIPMENT][0]
    assert entry["checksum_matches"] is False and entry["checksum_local"] != entry["checksum_db"]
    # neither re-applies an edited migration
    assert project.deploy().applied == []
    again = project.module("deployed")
    assert not again["failed"] and again["actions"] == [] and not again["changed"]
