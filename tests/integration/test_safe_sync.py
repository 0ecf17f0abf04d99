"""playbooks/safe-sync.yml end to end on a real demo app, through each branch of runbook 000."""
import os

import pytest

from tests.harness import servers
from tests.harness.site import PRISMA_DIRS, SHIPMENT_FILE


@pytest.mark.parametrize("engine", sorted(PRISMA_DIRS))
def test_conflict_is_resolved_by_marking_applied_then_a_rerun_changes_nothing(site_factory, engine):
    site = site_factory(engine)
    site.forget_record()
    site.start()
    old_pid = site.app_pid()
    run = site.play("safe-sync")
    assert run.ok, run
    synced = run.task("Step 3: sync the records (rows saved first)")
    assert synced["changed"] and [a["action"] for a in synced["actions"]] == ["mark_applied"]
    assert site.status()["pending"] == [] and SHIPMENT_FILE in site.status()["applied"]
    assert site.app_pid() != old_pid, "the app was not restarted after the records changed"
    gate = run.task("Step 5: gate on the application's health")
    assert gate["healthy"] and gate["attempts"] >= 3
    assert len(site.saved_rows()) == 1
    # The record is present now: the runbook's "already synced" branch does nothing, not even a restart.
    pid = site.app_pid()
    again = site.play("safe-sync")
    assert again.ok, again
    assert not again.task("Step 3: sync the records (rows saved first)")["changed"]
    assert site.app_pid() == pid
    assert [entry["step"] for entry in site.audit()].count("finish") == 2


def test_missing_column_is_applied(site_factory):
    site = site_factory("sqlite")
    site.forget_record()
    site.drop_column()
    site.start()
    run = site.play("safe-sync")
    assert run.ok, run
    actions = run.task("Step 3: sync the records (rows saved first)")["actions"]
    assert [(a["action"], a["migration"]) for a in actions] == [("apply", SHIPMENT_FILE)]
    assert "shipmentFile" in [row[1] for row in site.sql("PRAGMA table_info('Shipment')")]


def test_unreachable_database_stops_with_a_clear_message_and_changes_nothing(site_factory):
    site = site_factory("sqlite")
    site.forget_record()
    site.start()
    pid = site.app_pid()
    closed_port = servers.free_port()
    run = site.play("safe-sync", app_database_url="mysql://app:s3cret-pw@127.0.0.1:%d/erp" % closed_port,
                    app_prisma_dir=os.path.join(site.current, "prisma-mysql"))
    assert not run.ok
    failed = dict(run.failed_tasks())
    message = failed["Step 1: read the migration state (proves the database is reachable)"]
    assert "127.0.0.1:%d" % closed_port in message and "nothing was changed" in message.lower()
    assert "s3cret-pw" not in run.stdout + run.stderr
    assert SHIPMENT_FILE not in site.status()["applied"] and site.app_pid() == pid
    finish = [entry for entry in site.audit() if entry["step"] == "finish"]
    assert finish and finish[-1]["result"] == "failed"
    assert not os.path.exists(os.path.join(site.base, "state", "lock")), "the lock was not released"


def test_check_mode_reports_the_plan_and_changes_nothing(site_factory):
    site = site_factory("postgresql")
    site.forget_record()
    site.start()
    pid = site.app_pid()
    run = site.play("safe-sync", check=True, diff=True)
    assert run.ok, run
    planned = run.task("Step 3: sync the records (rows saved first)")
    assert planned["changed"] and planned["actions"][0]["action"] == "mark_applied"
    assert SHIPMENT_FILE in site.status()["pending"] and site.app_pid() == pid
    assert site.saved_rows() == []
