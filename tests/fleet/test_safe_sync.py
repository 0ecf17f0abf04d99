"""Runbook 000 on the fleet: the app on app1 as user app, MariaDB on the db host, over SSH as deploy with become."""
import pytest

from tests.harness.fleet_site import SHIPMENT_FILE, FleetSite


@pytest.fixture(scope="module")
def site(prepared_fleet, fleet_mariadb, tmp_path_factory):
    fleet, _run = prepared_fleet
    url = fleet_mariadb.create_database("demo")
    yield FleetSite(fleet, fleet["app1"], url, 39310, str(tmp_path_factory.mktemp("site")), "/opt/safe-sync").deploy()
    fleet["app1"].run("pkill -u app || true")


def test_safe_sync_repairs_the_record_restarts_the_app_as_its_user_and_gates(site, fleet_mariadb):
    fleet_mariadb.sql("DELETE FROM _prisma_migrations WHERE migration_name = '%s'" % SHIPMENT_FILE, "demo")
    run = site.play("safe-sync", extra_vars=dict(safe_sync_restart="always"))
    assert run.ok, run
    actions = run.task("Step 3: sync the records (rows saved first)", host="app1")["actions"]
    assert [(a["action"], a["migration"]) for a in actions] == [("mark_applied", SHIPMENT_FILE)]
    assert fleet_mariadb.sql("SELECT count(*) FROM _prisma_migrations WHERE migration_name = '%s' AND finished_at IS NOT "
                             "NULL" % SHIPMENT_FILE, "demo").strip() == "1"
    user, pid = site.app_process()
    assert user == "app" and pid > 1
    status, body = site.health()
    assert status == 200 and body["schema"] == "ok", body


def test_the_same_flow_with_pipelining(site):
    run = site.play("safe-sync", env=dict(ANSIBLE_PIPELINING="1"))
    assert run.ok, run
    assert run.task("Step 3: sync the records (rows saved first)", host="app1")["actions"] == []
    assert site.health()[0] == 200
