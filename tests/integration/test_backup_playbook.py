"""playbooks/backup.yml (runbook 004, step 1) on the demo app deployed as a stack, on each engine."""
import os

import pytest

from tests.harness.ansible_run import run_module

PREFLIGHT = "Preparation: check the database is reachable, the dump tools are present and there is room for the backup"
TAKE = "Step 1: back up the database (one consistent snapshot with routines, triggers and events)"
VERIFY = "Step 1: verify the backup (checksums, then a trial restore compared with its manifest)"
PRUNE = "Step 1: keep only the newest backups"


def backup_dir(site):
    """The demo stack keeps its backups in <app_base_dir>/backups."""
    return os.path.join(site.base, "backups")


def listed(site):
    result = run_module("saferelease.core.db_backup", dict(dest_dir=backup_dir(site), state="info"))
    assert not result["failed"], result["msg"]
    return [(b["name"], b["complete"], b["intact"]) for b in result["backups"]]


def short_counts(row_counts):
    """Row counts keyed by bare table name (PostgreSQL keys carry the schema)."""
    return dict((name.split(".")[-1], count) for name, count in row_counts.items())


# Every engine is reached through DATABASE_URL in the release's .env, as the stacks do.
@pytest.mark.parametrize("engine", ["sqlite", "mysql", "postgresql"])
def test_backup_is_taken_verified_recorded_and_pruned(site_factory, engine):
    site = site_factory(engine)
    run = site.play("backup", app_backup_keep=1, extra_vars=dict(backup_reason="before the 3.0 update"))
    assert run.ok, run
    taken = run.task(TAKE)
    manifest = taken["backup"]["manifest"]
    assert taken["changed"] and taken["backup"]["path"] == os.path.join(backup_dir(site), taken["backup"]["name"])
    assert manifest["engine"] == engine and short_counts(manifest["row_counts"])["_prisma_migrations"] == 2
    assert "Shipment" in short_counts(manifest["row_counts"])
    assert sorted(entry["source"] for entry in manifest["include_paths"]) == [
        os.path.join(site.prisma_dir, "migrations"), os.path.join(site.prisma_dir, "schema.prisma")]
    verified = run.task(VERIFY)
    assert verified["verification"]["problems"] == [] and verified["verification"]["scratch"]
    assert run.task(PRUNE)["removed"] == []
    first = taken["backup"]["name"]
    assert listed(site) == [(first, True, True)]

    stats = run.published_stats()
    assert stats["outcome"] == "success" and stats["backup_name"] == first and stats["verified"]
    audit = [(e["step"], e["result"]) for e in site.audit() if e["playbook"] == "backup"]
    assert audit == [("start", "ok"), ("preparation", "ok"), ("backup", "changed"), ("retention", "ok"), ("finish", "ok")]
    assert all(e["reason"] == "before the 3.0 update" for e in site.audit())
    assert os.listdir(os.path.join(site.base, "state", "records")) and not os.path.exists(os.path.join(site.base, "state", "lock"))

    # A second backup with keep=1 replaces the first.
    again = site.play("backup", app_backup_keep=1)
    assert again.ok, again
    second = again.task(TAKE)["backup"]["name"]
    assert second != first and again.task(PRUNE)["removed"] == [first]
    assert listed(site) == [(second, True, True)]


def test_check_mode_reports_the_plan_and_writes_nothing(site_factory):
    site = site_factory("sqlite")
    assert site.play("backup", extra_vars=dict(backup_name="kept-before")).ok
    audit_before = site.audit()
    run = site.play("backup", check=True, app_backup_keep=1, extra_vars=dict(backup_name="would-be"))
    assert run.ok, run
    planned = run.task(TAKE)
    assert planned["changed"] and planned["backup"]["path"] == os.path.join(backup_dir(site), "would-be")
    assert [r["outcome"] for r in run.results if r["task"] == VERIFY] == ["skipped"]
    # keep=1 counts the backup a real run would take, so the old one is named for removal
    assert run.task(PRUNE)["removed"] == ["kept-before"]
    assert listed(site) == [("kept-before", True, True)]
    assert site.audit() == audit_before


def test_no_room_for_the_backup_stops_before_anything_is_written(site_factory):
    site = site_factory("mysql")
    run = site.play("backup", app_backup_min_free_bytes=10 ** 18)
    assert not run.ok
    message = dict(run.failed_tasks())[PREFLIGHT]
    assert "Not enough free space" in message and "nothing was written" in message
    assert not os.path.exists(backup_dir(site))
    stats = run.published_stats()
    assert stats["outcome"] == "failure" and "Not enough free space" in stats["failure"]
    assert site.audit()[-1]["step"] == "finish" and site.audit()[-1]["result"] == "failed"
    assert not os.path.exists(os.path.join(site.base, "state", "lock")), "the lock was not released"


def test_a_database_that_cannot_be_reached_stops_at_the_preparation(site_factory):
    site = site_factory("sqlite")
    run = site.play("backup", app_database_url="mysql://app:s3cret-pw@127.0.0.1:1/erp")
    assert not run.ok
    message = dict(run.failed_tasks())[PREFLIGHT]
    assert "127.0.0.1:1" in message
    assert "s3cret-pw" not in run.stdout + run.stderr
    assert not os.path.exists(backup_dir(site))
