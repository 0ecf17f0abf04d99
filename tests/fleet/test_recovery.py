"""Runbooks 001, 002 and 004 on the fleet: backup.yml, the tiered rollback escalating 1 → 2 → 3 onto that
backup, and pre-deploy-check.yml. The app on app1 as user app, MariaDB on db, over SSH as deploy with become."""
import pytest

from tests.harness.fleet_site import FleetSite

BASE_DIR = "/opt/recovery"
CONFIRMED = dict(rollback_confirm="CONFIRM_FULL_ROLLBACK", rollback_reason="orders dropped by a bad script")


@pytest.fixture(scope="module")
def site(prepared_fleet, fleet_mariadb, tmp_path_factory):
    fleet, _run = prepared_fleet
    url = fleet_mariadb.create_database("recovery")
    yield FleetSite(fleet, fleet["app1"], url, 39340, str(tmp_path_factory.mktemp("recovery")), BASE_DIR).deploy()
    fleet["app1"].run("pkill -u app || true")


def shipments(mariadb):
    return mariadb.sql("SELECT trackingNumber FROM Shipment ORDER BY 1", "recovery").split()


def add_shipment(mariadb, number):
    mariadb.sql("INSERT INTO Shipment (trackingNumber, status) VALUES ('%s', 'new')" % number, "recovery")


def test_backup_playbook_takes_a_verified_backup_only_root_can_read(site, fleet_mariadb):
    add_shipment(fleet_mariadb, "TRK-BEFORE-BACKUP")
    run = site.play("backup", extra_vars=dict(backup_name="nightly", backup_reason="before the release"))
    assert run.ok, run
    published = run.published_stats()
    assert published["outcome"] == "success"
    listing = site.host.run("stat -c '%%U %%a %%n' %s/backups/nightly %s/backups/nightly/*" % (BASE_DIR, BASE_DIR)).stdout
    modes = dict((path.rsplit("/", 1)[-1], (owner, mode)) for owner, mode, path in (line.split(" ", 2) for line in listing.splitlines()))
    # the directory closes the backup to everyone but root; the dump and its manifest are root's alone too
    assert modes["nightly"] == ("root", "700") and modes["manifest.json"] == ("root", "600"), listing
    assert [mode for name, mode in modes.items() if name.startswith("database.")] == [("root", "600")], listing
    # the app's user cannot read the dump, even to list it
    assert site.host.run("ls %s/backups/nightly" % BASE_DIR, user="app", check=False).returncode != 0


def test_rollback_escalates_from_level1_through_level2_to_level3_onto_the_fleet_backup(site, fleet_mariadb):
    add_shipment(fleet_mariadb, "TRK-AFTER-BACKUP")
    site.add_release("v3", "v3")
    site.host.run("ln -sfn %s/releases/v3 %s && echo '{\"stack\": [\"initial\", \"v3\"], \"events\": []}' > %s/state/releases.json"
                  % (BASE_DIR, site.current, BASE_DIR))
    site.host.run("cp -p %s/releases/initial/.env %s/releases/v3/.env" % (BASE_DIR, BASE_DIR))
    fleet_mariadb.sql("DROP TABLE ShipmentItem; DROP TABLE Shipment", "recovery")
    run = site.play("rollback", extra_vars=CONFIRMED, rollback_gate_wait_timeout=6)
    assert run.ok, run
    published = run.published_stats()
    assert int(published["level_reached"]) == 3 and published["backup_used"] == "nightly", published
    assert published["verdicts"]["level1"]["healthy"] in (False, "False")
    assert site.host.run("test -d %s" % published["emergency_backup"], check=False).returncode == 0, \
        "the emergency snapshot is on the app host, where the database client ran"
    assert shipments(fleet_mariadb) == ["TRK-BEFORE-BACKUP"]
    assert site.release_of() == "initial"
    assert site.app_process()[0] == "app"
    status, body = site.health()
    assert status == 200 and body["release"] == "v2", body


def test_pre_deploy_check_passes_a_good_build_on_the_host_and_stops_a_broken_one(site):
    site.add_release("v4", "v4", under="staging")
    build = BASE_DIR + "/staging/v4"
    run = site.play("pre-deploy-check", extra_vars=dict(precheck_release_dir=build, precheck_version_expect=r"4"),
                    precheck_smoke_seconds=2)
    assert run.ok, run
    report = run.task("Report every check with its figure", host="app1")["msg"]
    assert any(line.startswith("PASS  version: demo_app") and "(release v4)" in line for line in report), report
    assert site.release_of() == "initial", "a check deploys nothing"

    site.host.run("rm %s/demo_app/__main__.py" % build)
    broken = site.play("pre-deploy-check", extra_vars=dict(precheck_release_dir=build), precheck_smoke_seconds=2)
    assert not broken.ok
    assert "demo_app/__main__.py" in str(broken.failed_tasks())
