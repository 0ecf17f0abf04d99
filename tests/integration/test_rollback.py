"""Runbook 001's tiered rollback on the real demo app: each level, escalation, and the faults."""
import json
import os
import shutil

import pytest

from tests.harness.ansible_run import run_module
from tests.harness.site import SHIPMENT_FILE

BAD_MIGRATION = "20250901000000_add_broken_index"
BROKEN_SQL = {"sqlite": 'CREATE INDEX "broken" ON "NoSuchTable"("x");',
              "postgresql": 'CREATE INDEX "broken" ON "NoSuchTable"("x");',
              "mysql": "CREATE INDEX `broken` ON `NoSuchTable`(`x`);"}
CONFIRMED = dict(rollback_confirm="CONFIRM_FULL_ROLLBACK", rollback_reason="orders table dropped by a bad script")


def take_backup(site, name):
    result = run_module("saferelease.core.db_backup", dict(
        database_url=site.url, schema_dir=site.prisma_dir, dest_dir=os.path.join(site.base, "backups"), name=name,
        include_paths=[os.path.join(site.prisma_dir, "migrations"), os.path.join(site.prisma_dir, "schema.prisma")]))
    assert not result["failed"], result["msg"]
    return result


def shipments(site):
    return sorted(row[0] for row in site.sql('SELECT "trackingNumber" FROM "Shipment"'.replace(
        '"', "`" if site.engine == "mysql" else '"')))


def add_shipment(site, number):
    quote = "`" if site.engine == "mysql" else '"'
    site.sql("INSERT INTO {q}Shipment{q} ({q}trackingNumber{q}, {q}status{q}) VALUES ('{n}', 'new')".format(q=quote, n=number))


def test_level1_puts_the_previous_release_back(site_factory, webhook):
    site = site_factory("sqlite").start()
    site.release("v3-bad", settings={"DEMO_RELEASE": "v3", "DEMO_FAULT": "error500"})
    assert site.health()[0] == 500
    run = site.play("rollback-level1", extra_vars=dict(rollback_reason="500s after 3.0", execution_webhook_url=webhook.url,
                                                       execution_impact="checkout returns 500"))
    assert run.ok, run
    status, body = site.health()
    assert site.current_release() == "initial" and status == 200 and body["release"] == "v2"
    published = run.published_stats()
    assert published["outcome"] == "success" and int(published["level_reached"]) == 1
    steps = [(e["step"], e["result"]) for e in site.audit() if e["playbook"] == "rollback-level1"]
    assert ("level 1 release rollback", "changed") in steps and ("level 1 health gate", "ok") in steps
    assert all(e["level"] == "1" and e["reason"] == "500s after 3.0" for e in site.audit() if e["playbook"] == "rollback-level1")
    with open(os.path.join(site.base, "state", "releases.json")) as handle:
        assert json.load(handle)["stack"] == ["initial"]
    # runbook 001's notifications: at the start and at the end, with its message fields
    assert [e["event"] for e in webhook.events] == ["start", "success"]
    start, success = webhook.events
    assert (start["level"], start["reason"], start["impact"], start["eta"]) == ("1", "500s after 3.0", "checkout returns 500", "5 minutes")
    assert start["owner"] and "Reason: 500s after 3.0" in start["text"] and "Impact: checkout returns 500" in start["text"]
    assert (success["verification"], success["service_status"], success["finished_at"] > "") == ("passed", "healthy", True)
    assert "completed" in success["text"] and "Verification: passed" in success["text"]


@pytest.mark.parametrize("engine", ["sqlite", "mysql", "postgresql"])
def test_failed_migration_record_escalates_from_level1_to_level2(site_factory, engine):
    site = site_factory(engine)
    site.set_env("DEMO_MIGRATE_ON_START", "1")  # the stack runs `prisma migrate deploy` before it starts
    site.start()
    site.release("v3-migration", migrations={BAD_MIGRATION: BROKEN_SQL[engine]})
    assert site.health()[0] is None, "the release with the broken migration should not be serving"
    run = site.play("rollback")
    assert run.ok, run
    published = run.published_stats()
    assert int(published["level_reached"]) == 2 and published["healthy"] in (True, "True")
    assert published["verdicts"]["level1"]["healthy"] in (False, "False")
    assert site.health()[0] == 200 and site.current_release() == "initial"
    rows = site.sql("SELECT migration_name, rolled_back_at FROM _prisma_migrations WHERE migration_name = '%s'" % BAD_MIGRATION)
    assert len(rows) == 1 and rows[0][1] is not None, "the failed record should be marked rolled back, as Prisma does"
    assert len(site.saved_rows()) == 1, "the _prisma_migrations rows were not saved before the repair"


@pytest.fixture
def damaged_site(site_factory):
    """A healthy site with a verified backup, then damaged: rows gone and the table dropped."""
    site = site_factory("sqlite").start()
    add_shipment(site, "TRK-BEFORE-BACKUP")
    take_backup(site, "nightly")
    add_shipment(site, "TRK-AFTER-BACKUP")
    site.sql('DROP TABLE "ShipmentItem"')
    site.sql('DROP TABLE "Shipment"')
    assert site.health()[0] == 503
    return site


def test_level3_is_refused_without_confirmation_and_changes_nothing(damaged_site, webhook):
    run = damaged_site.play("rollback", extra_vars=dict(rollback_level=2, execution_webhook_url=webhook.url))
    assert not run.ok
    message = run.published_stats()["failure"]
    assert "Level 3 (full database restore) is needed: level 2:" in message and "CONFIRM_FULL_ROLLBACK" in message
    [failure] = webhook.of("failure")
    assert failure["service_status"] == "unhealthy" and failure["verification"] == "failed"
    assert "run rollback-level3.yml" in failure["next_action"] and "Level 3 (full database restore)" in failure["text"]
    assert "Next action: Level 3 (full restore) is needed" in failure["text"]
    assert damaged_site.sql("SELECT name FROM sqlite_master WHERE name = 'Shipment'") == []
    direct = damaged_site.play("rollback-level3", extra_vars=dict(rollback_confirm="yes", rollback_reason="x"))
    assert not direct.ok and "needs rollback_confirm=CONFIRM_FULL_ROLLBACK" in direct.published_stats()["failure"]


def test_escalation_reaches_level3_and_restores_data_and_migrations(damaged_site):
    migrations = os.path.join(damaged_site.prisma_dir, "migrations")
    shutil.rmtree(os.path.join(migrations, SHIPMENT_FILE))  # the migrations folder was damaged too
    run = damaged_site.play("rollback", extra_vars=dict(rollback_level=2, **CONFIRMED))
    assert run.ok, run
    published = run.published_stats()
    assert int(published["level_reached"]) == 3 and published["backup_used"] == "nightly"
    assert os.path.isdir(published["emergency_backup"]), "no emergency snapshot was taken before the restore"
    assert shipments(damaged_site) == ["TRK-BEFORE-BACKUP"]
    assert os.path.isfile(os.path.join(migrations, SHIPMENT_FILE, "migration.sql"))
    assert damaged_site.health()[0] == 200

    # Damaged again: the emergency snapshot is newer than the nightly backup but holds the damage,
    # so Level 3 must not pick it on its own.
    damaged_site.sql('DROP TABLE "ShipmentItem"')
    damaged_site.sql('DROP TABLE "Shipment"')
    again = damaged_site.play("rollback-level3", extra_vars=CONFIRMED)
    assert again.ok, again
    assert again.published_stats()["backup_used"] == "nightly" and shipments(damaged_site) == ["TRK-BEFORE-BACKUP"]


def test_level3_refuses_a_missing_or_corrupt_backup_before_touching_the_database(damaged_site):
    missing = damaged_site.play("rollback-level3", extra_vars=dict(rollback_backup_name="does-not-exist", **CONFIRMED))
    assert not missing.ok and "Backup does-not-exist does not exist" in missing.published_stats()["failure"]
    nightly = os.path.join(damaged_site.base, "backups", "nightly")
    with open(os.path.join(nightly, "manifest.json")) as handle:
        dump = [f for f in json.load(handle)["files"] if f.startswith("database.")][0]
    with open(os.path.join(nightly, dump), "r+b") as handle:
        handle.seek(20)
        byte = handle.read(1)
        handle.seek(20)
        handle.write(bytes([byte[0] ^ 0xFF]))
    corrupt = damaged_site.play("rollback-level3", extra_vars=dict(rollback_backup_name="nightly", **CONFIRMED))
    assert not corrupt.ok and "Backup nightly is not complete and intact" in corrupt.published_stats()["failure"]
    assert damaged_site.sql("SELECT name FROM sqlite_master WHERE name = 'Shipment'") == []
    assert [d for d in os.listdir(os.path.join(damaged_site.base, "backups")) if d.startswith("emergency")] == []


def test_a_second_run_is_refused_while_the_lock_is_held(site_factory):
    site = site_factory("sqlite").start()
    lock = os.path.join(site.base, "state", "lock")
    os.makedirs(lock)
    with open(os.path.join(lock, "owner.json"), "w") as handle:
        json.dump(dict(run_id="20261123T000000Z-rollback-1", operator="alice", started_at="2026-11-23T00:00:00Z"), handle)
    run = site.play("rollback-level1")
    assert not run.ok
    message = dict(run.failed_tasks())["Stop when another run holds the lock"]
    assert "locked by another run (20261123T000000Z-rollback-1" in message and "alice" in message
    assert site.current_release() == "initial" and os.path.isdir(lock)


def test_app_that_never_becomes_healthy_reports_the_gate_and_level(site_factory):
    site = site_factory("sqlite").start()
    site.release("v3-bad", settings={"DEMO_RELEASE": "v3", "DEMO_FAULT": "error500"})
    site.release("v4-bad", settings={"DEMO_RELEASE": "v4", "DEMO_FAULT": "error500"})
    run = site.play("rollback-level1")
    assert not run.ok
    failure = run.published_stats()["failure"]
    assert failure.startswith("Rollback did not restore health: level 1: Health gate fail")
    assert "status 500" in failure and site.current_release() == "v3-bad"


def test_database_down_during_level2(site_factory, unused_port):
    site = site_factory("sqlite").start()
    run = site.play("rollback-level2", app_database_url="mysql://app:pw-s3cret@127.0.0.1:%d/erp" % unused_port,
                    app_prisma_dir=os.path.join(site.current, "prisma-mysql"))
    assert not run.ok
    failure = run.published_stats()["failure"]
    assert "level 2: Level 2: read the migration records" in failure and "127.0.0.1:%d" % unused_port in failure
    assert "pw-s3cret" not in run.stdout + run.stderr + failure


def test_no_room_for_an_emergency_snapshot_stops_before_any_level(site_factory):
    site = site_factory("sqlite").start()
    site.release("v3-bad", settings={"DEMO_RELEASE": "v3", "DEMO_FAULT": "error500"})
    run = site.play("rollback", rollback_min_free_bytes=10 ** 18)
    assert not run.ok
    failure = run.published_stats()["failure"]
    assert "MiB free on" in failure and "rollback_min_free_bytes" in failure and "nothing was changed" in failure
    assert site.current_release() == "v3-bad"
    assert not [e for e in site.audit() if e["step"].startswith("level")]
