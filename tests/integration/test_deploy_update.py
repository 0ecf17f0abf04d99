"""Runbooks 002 and 004 on the real demo app: pre-deploy-check.yml, deploy-update.yml and recover-sqlite.yml."""
import hashlib
import os
import sqlite3

from tests.harness.ansible_run import run_module

# Runbook 004's migrate_user_concurrency.py in miniature: adds a column through the app's own
# database layer; --verify exits 0 when the column is there. COLUMN lets a release ship the bug.
MIGRATION_SCRIPT = '''"""Adds Shipment.priority; --verify exits 0 when it exists."""
import sys

from demo_app import config, db

COLUMN = "{column}"


def column_exists(conn):
    if conn.engine == "sqlite":
        return any(row[1] == COLUMN for row in conn.execute('PRAGMA table_info("Shipment")').fetchall())
    if conn.engine == "mysql":
        sql = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'Shipment' AND column_name = %s"
    else:
        sql = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'Shipment' AND column_name = %s"
    return conn.scalar(sql, (COLUMN,)) == 1


with db.connect(config.load_settings().database_url) as conn:
    if "--verify" in sys.argv:
        print("column %s: %s" % (COLUMN, "present" if column_exists(conn) else "missing"))
        sys.exit(0 if column_exists(conn) else 1)
    if not column_exists(conn):
        conn.execute("ALTER TABLE %s ADD COLUMN %s INTEGER NOT NULL DEFAULT 0" % (conn.quote("Shipment"), conn.quote(COLUMN)))
        conn.commit()
        print("added %s" % COLUMN)
'''
HAS_PRIORITY = {"sqlite": "SELECT COUNT(*) FROM pragma_table_info('Shipment') WHERE name = 'priority'",
                "mysql": "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() "
                         "AND table_name = 'Shipment' AND column_name = 'priority'"}
ORPHANS = [dict(table="ShipmentItem", column="shipmentId", parent="Shipment")]


def priority_step(engine, verify_with_sql=True):
    return dict(name="add Shipment.priority",
                check=dict(sql=HAS_PRIORITY[engine], expect=1),
                apply=dict(command=["python3", "migrate_priority.py"]),
                verify=dict(sql=HAS_PRIORITY[engine], expect=1) if verify_with_sql
                else dict(command=["python3", "migrate_priority.py", "--verify"]))


def stage_v3(site, column="priority", fault=None):
    settings = {"DEMO_RELEASE": "v3"}
    if fault:
        settings["DEMO_FAULT"] = fault
    return site.stage("v3", settings, {"migrate_priority.py": MIGRATION_SCRIPT.format(column=column)})


def columns(site):
    if site.engine == "sqlite":
        return [row[1] for row in site.sql('PRAGMA table_info("Shipment")')]
    return [row[0] for row in site.sql("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                                       "AND table_name = 'Shipment'")]


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


# --- pre-deploy-check.yml (runbook 002) ---------------------------------------------------------

PRECHECK = dict(precheck_smoke_seconds=2)


def test_precheck_passes_a_good_build_and_reports_every_figure(site_factory):
    site = site_factory("sqlite")
    build = stage_v3(site)
    run = site.play("pre-deploy-check", extra_vars=dict(precheck_release_dir=build, precheck_version_expect=r"3\.0\.0"), **PRECHECK)
    assert run.ok, run
    report = run.task("Report every check with its figure")["msg"]
    assert "PASS  version: demo_app 3.0.0 (release v3) (expected matches 3\\.0\\.0)" in report
    assert "PASS  migrations applied: 2 applied, pending: none (expected every migration of the build applied)" in report
    assert any(line.startswith("PASS  database file size: ") for line in report)
    assert "PASS  table ShipmentItem: present (expected present)" in report
    stats = run.published_stats()
    assert stats["verdict"] == "pass" and stats["checks"] == len(report) and stats["failed_checks"] == []
    # The smoke test used a temporary database: the site's own database and release are untouched.
    assert site.current_release() == "initial" and "priority" not in columns(site)
    # This run's own scratch directory is gone (other workers' runs may be making theirs meanwhile).
    scratch = run.task("Smoke test: make a temporary directory")["path"]
    assert "saferelease-precheck-" in scratch and not os.path.exists(scratch)


def test_precheck_stops_the_build_that_skips_its_migrations(site_factory):
    """Runbook 002's incident: the build logged "skipping migration" and left a 0-byte database."""
    site = site_factory("sqlite")
    build = stage_v3(site, fault="skip_migrations")
    run = site.play("pre-deploy-check", extra_vars=dict(precheck_release_dir=build), **PRECHECK)
    assert not run.ok
    report = run.task("Report every check with its figure")["msg"]
    failed = sorted(line.split(":")[0] for line in report if line.startswith("FAIL"))
    assert failed == ["FAIL  database file size", "FAIL  database not empty", "FAIL  forbidden log lines",
                      "FAIL  migrations applied", "FAIL  table Shipment", "FAIL  table ShipmentItem",
                      "FAIL  table _prisma_migrations"]
    assert "FAIL  database file size: 0 bytes (expected >= 1024 bytes)" in report
    assert any("skipping migration" in line for line in report if line.startswith("FAIL  forbidden log lines"))
    stats = run.published_stats()
    assert stats["outcome"] == "failure" and stats["verdict"] == "fail" and "forbidden log lines" in stats["failed_checks"]
    assert "7 of 13 checks failed, do not deploy this build" in stats["failure"]


def test_precheck_finds_a_small_artifact_a_wrong_version_and_a_missing_script(site_factory):
    site = site_factory("sqlite")
    build = stage_v3(site)
    os.chmod(os.path.join(build, "migrate_priority.py"), 0o644)
    run = site.play("pre-deploy-check", extra_vars=dict(
        precheck_release_dir=build, precheck_version_expect=r"^demo_app 4\.", precheck_smoke_command=[],
        precheck_artifact_min_bytes=10485760, precheck_required_paths=["static/index.html"],
        precheck_executables=["migrate_priority.py"]))
    assert not run.ok
    stats = run.published_stats()
    assert stats["failed_checks"] == ["artifact demo_app/__main__.py", "version", "file static/index.html",
                                      "executable migrate_priority.py"]
    report = run.task("Report every check with its figure")["msg"]
    assert "FAIL  executable migrate_priority.py: mode 0644 (not executable) (expected present, executable)" in report


def scratch_tables(scratch):
    return scratch.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")[0][0]


def test_precheck_smoke_test_on_a_scratch_mariadb_database_leaves_it_empty(site_factory, mariadb_db):
    site = site_factory("sqlite")
    build = stage_v3(site)
    mysql_prisma = os.path.join(build, "prisma-mysql")
    run = site.play("pre-deploy-check", extra_vars=dict(
        precheck_release_dir=build, precheck_scratch_database_url=mariadb_db.url,
        precheck_migrations_dir=os.path.join(mysql_prisma, "migrations"),
        precheck_smoke_environment=dict(PYTHONPATH=build, DEMO_PRISMA_DIR=mysql_prisma, DEMO_MIGRATE_ON_START="1")),
        **PRECHECK)
    assert run.ok, run
    report = run.task("Report every check with its figure")["msg"]
    assert "PASS  database not empty: 3 tables (expected >= 1 table)" in report
    assert "PASS  migrations applied: 2 applied, pending: none (expected every migration of the build applied)" in report
    assert not any(line.startswith("PASS  database file size") for line in report)
    assert scratch_tables(mariadb_db) == 0

    # A scratch database that holds a table is refused and left as it is.
    mariadb_db.execute("CREATE TABLE keep_me (id INT)")
    refused = site.play("pre-deploy-check", extra_vars=dict(precheck_release_dir=build,
                                                            precheck_scratch_database_url=mariadb_db.url), **PRECHECK)
    assert not refused.ok
    assert "FAIL  smoke test: Smoke test: stop unless the scratch database is empty: The scratch database is not empty" in " ".join(
        refused.task("Report every check with its figure")["msg"])
    assert scratch_tables(mariadb_db) == 1


# --- deploy-update.yml (runbook 004) ------------------------------------------------------------

def test_update_backs_up_migrates_checks_and_is_idempotent(site_factory):
    site = site_factory("sqlite").start()
    build = stage_v3(site)
    update = dict(update_release_name="v3", update_source_dir=build, update_migrations=[priority_step("sqlite")],
                  update_orphan_checks=ORPHANS, update_reason="3.0 with concurrency limits")
    run = site.play("deploy-update", extra_vars=update, update_gate_interval=0.5)
    assert run.ok, run
    assert site.current_release() == "v3" and site.health()[1]["release"] == "v3" and "priority" in columns(site)
    stats = run.published_stats()
    assert stats["outcome"] == "success" and stats["previous_release"] == "initial" and stats["rollback_level"] == 0
    assert stats["backup_verified"] and stats["backup_used"] and stats["health"] == "pass"
    assert [(m["name"], m["done_before"], m["applied"], m["verified"]) for m in stats["migrations"]] == [
        ("add Shipment.priority", False, True, True)]
    assert stats["integrity"] == ["value 0, expected 0"]
    backups = run_module("saferelease.core.db_backup", dict(dest_dir=os.path.join(site.base, "backups"), state="info"))["backups"]
    assert [(b["name"], b["complete"], b["intact"]) for b in backups] == [(stats["backup_used"], True, True)]
    steps = [(e["step"], e["result"]) for e in site.audit() if e["playbook"] == "deploy-update"]
    assert steps[:5] == [("start", "ok"), ("preflight", "ok"), ("backup", "changed"),
                         ("migration add Shipment.priority", "changed"), ("integrity", "ok")]

    # The same update again: the check finds the column, so the apply is skipped.
    again = site.play("deploy-update", extra_vars=update, update_gate_interval=0.5)
    assert again.ok, again
    assert [(m["done_before"], m["applied"]) for m in again.published_stats()["migrations"]] == [(True, False)]
    assert site.current_release() == "v3"


def test_update_whose_verify_fails_stops_and_rolls_back(site_factory, webhook):
    site = site_factory("sqlite").start()
    # The script has a typo: it adds "priorty", so the verify (column priority) fails.
    build = stage_v3(site, column="priorty")
    run = site.play("deploy-update", update_gate_interval=0.5, extra_vars=dict(
        update_release_name="v3", update_source_dir=build, update_migrations=[priority_step("sqlite")],
        execution_webhook_url=webhook.url))
    assert not run.ok
    assert "Migration step 'add Shipment.priority' did not verify after its apply: value 0, expected 1." in run.published_stats()["failure"]
    stats = run.published_stats()
    assert stats["phase"] == "database_changed" and stats["rollback_level"] == 1 and stats["level_reached"] == 1
    assert stats["healthy"] and stats["outcome"] == "failure"
    # Level 1: the previous release runs again; additive damage stays (level 3 would take it back).
    status, body = site.health()
    assert site.current_release() == "initial" and (status, body["release"]) == (200, "v2")
    assert "priorty" in columns(site)
    assert [e["event"] for e in webhook.events] == ["start", "failure"]
    assert webhook.events[-1]["service_status"] == "healthy"


def test_update_policy_level3_restores_this_runs_backup_and_the_release(site_factory):
    site = site_factory("sqlite").start()
    build = stage_v3(site, column="priorty")
    run = site.play("deploy-update", update_gate_interval=0.5, rollback_gate_interval=0.5, extra_vars=dict(
        update_release_name="v3", update_source_dir=build, update_migrations=[priority_step("sqlite")],
        update_rollback_policy=dict(before_switch=0, code_only=1, database_changed=3),
        update_rollback_confirm="CONFIRM_FULL_ROLLBACK"))
    assert not run.ok
    stats = run.published_stats()
    assert stats["rollback_level"] == 3 and stats["level_reached"] == 3 and stats["healthy"]
    assert site.current_release() == "initial" and site.health()[0] == 200
    assert "priorty" not in columns(site) and "priority" not in columns(site)
    steps = [e["step"] for e in site.audit() if e["playbook"] == "deploy-update"]
    assert steps.index("update failed") < steps.index("release rollback") < steps.index("level 3 restore")


def test_update_policy_level3_without_the_token_changes_nothing_more(site_factory):
    site = site_factory("sqlite").start()
    build = stage_v3(site, column="priorty")
    run = site.play("deploy-update", update_gate_interval=0.5, extra_vars=dict(
        update_release_name="v3", update_source_dir=build, update_migrations=[priority_step("sqlite")],
        update_rollback_policy=dict(before_switch=0, code_only=1, database_changed=3)))
    assert not run.ok
    stats = run.published_stats()
    assert stats["rollback_level"] == 3 and not stats["healthy"]
    assert "it needs rollback_confirm=CONFIRM_FULL_ROLLBACK" in dict(run.failed_tasks())["Stop with the reason"]
    assert "priorty" in columns(site)


def test_update_stops_on_orphan_rows_and_names_the_table_and_count(site_factory):
    site = site_factory("sqlite").start()
    site.sql('INSERT INTO "Shipment" ("id", "trackingNumber", "status") VALUES (7, \'T-7\', \'new\')')
    for item in range(3):
        site.sql('INSERT INTO "ShipmentItem" ("shipmentId", "sku", "quantity") VALUES (7, \'S-%d\', 1)' % item)
    # Runbook 004's orphans: parent rows deleted with foreign keys off.
    conn = sqlite3.connect(site.sqlite_path)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute('DELETE FROM "Shipment" WHERE "id" = 7')
    conn.commit()
    conn.close()
    build = stage_v3(site)
    run = site.play("deploy-update", update_gate_interval=0.5, extra_vars=dict(
        update_release_name="v3", update_source_dir=build, update_orphan_checks=ORPHANS))
    assert not run.ok
    assert ("Integrity checks failed: orphan rows in ShipmentItem.shipmentId (no Shipment.id): value 3, expected 0"
            in run.published_stats()["failure"])
    stats = run.published_stats()
    assert stats["phase"] == "code_only" and stats["rollback_level"] == 1 and stats["healthy"]
    assert site.current_release() == "initial"


def test_update_refuses_malformed_steps_before_anything_changes(site_factory):
    site = site_factory("sqlite").start()
    build = stage_v3(site)
    run = site.play("deploy-update", extra_vars=dict(update_release_name="v3", update_source_dir=build, update_migrations=[
        dict(name="no verify", apply=dict(command=["true"])), dict(name="bad apply", apply=dict(sql="DROP TABLE x"),
                                                                   verify=dict(command=["true"]))]))
    assert not run.ok
    message = run.published_stats()["failure"]
    assert "update_migrations[0] (no verify): verify must be {sql: query, expect: value} or {command: [argv]}." in message
    assert "update_migrations[1] (bad apply): apply must be {command: [argv]} or {prisma: deployed}." in message
    assert site.current_release() == "initial" and not os.path.isdir(os.path.join(site.base, "backups"))


def test_update_in_check_mode_changes_nothing(site_factory):
    site = site_factory("sqlite").start()
    before = digest(site.sqlite_path)
    build = stage_v3(site)
    run = site.play("deploy-update", check=True, extra_vars=dict(
        update_release_name="v3", update_source_dir=build, update_migrations=[priority_step("sqlite")]))
    assert run.ok, run
    assert site.current_release() == "initial" and digest(site.sqlite_path) == before
    assert not os.path.isdir(os.path.join(site.base, "backups")) or not os.listdir(os.path.join(site.base, "backups"))


def test_update_on_mariadb_with_command_verify(site_factory):
    site = site_factory("mysql").start()
    build = stage_v3(site)
    run = site.play("deploy-update", update_gate_interval=0.5, extra_vars=dict(
        update_release_name="v3", update_source_dir=build, update_orphan_checks=ORPHANS,
        update_migrations=[priority_step("mysql", verify_with_sql=False)]))
    assert run.ok, run
    assert "priority" in columns(site) and site.health()[1]["release"] == "v3"
    assert run.published_stats()["migrations"][0]["verify"] == "exit 0: column priority: present"


# --- recover-sqlite.yml (runbook 002's recovery) -------------------------------------------------

def test_recovery_rebuilds_a_zero_byte_database(site_factory):
    site = site_factory("sqlite").start()
    open(site.sqlite_path, "w").close()  # runbook 002: the database file is 0 bytes
    assert site.health()[0] in (500, 503)
    run = site.play("recover-sqlite", recover_gate_interval=0.5)
    assert run.ok, run
    status, body = site.health()
    assert status == 200 and body["schema"] == "ok" and os.path.getsize(site.sqlite_path) >= 1024
    stats = run.published_stats()
    assert stats["recovered"] and stats["size_bytes_before"] == 0 and stats["verdict"] == "pass"
    assert os.path.getsize(stats["kept_copy"]) == 0
    assert site.status()["pending"] == []

    # Healthy now: a second run (what a schedule does) changes nothing.
    again = site.play("recover-sqlite")
    assert again.ok and not again.published_stats()["recovered"]


def test_recovery_rebuilds_a_missing_database_from_a_schema_file(site_factory):
    site = site_factory("sqlite").start()
    schema = os.path.join(site.base, "schema.sql")
    with open(schema, "w") as handle:
        handle.write('CREATE TABLE "Shipment" ("id" INTEGER PRIMARY KEY, "trackingNumber" TEXT NOT NULL UNIQUE, '
                     '"status" TEXT NOT NULL DEFAULT \'new\', "shipmentFile" TEXT, "createdAt" DATETIME, "updatedAt" DATETIME);\n')
    os.unlink(site.sqlite_path)
    run = site.play("recover-sqlite", app_prisma_dir="", app_sqlite_schema_file=schema, recover_gate_interval=0.5,
                    extra_vars=dict(recover_sqlite_path=site.sqlite_path))
    assert run.ok, run
    assert site.health()[0] == 200 and run.published_stats()["kept_copy"] == ""


def test_recovery_never_rebuilds_a_database_that_holds_tables(site_factory):
    site = site_factory("sqlite").start()
    site.sql('DROP TABLE "ShipmentItem"')
    site.sql('DROP TABLE "Shipment"')
    before = digest(site.sqlite_path)
    run = site.play("recover-sqlite")
    assert not run.ok
    message = run.published_stats()["failure"]
    assert "holds 1 table(s), so its schema is not rebuilt" in message, message
    assert digest(site.sqlite_path) == before and site.app_pid()
