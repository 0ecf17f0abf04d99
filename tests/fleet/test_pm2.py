"""pm2 under the application's own user on the fleet: prepare-host gives app2 Node.js and pm2 (its stack runs
under pm2), then safe-sync restarts the app through pm2; over SSH as deploy with become, the pm2 daemon and
the app running as user app with PM2_HOME in app's home, nothing of pm2 under root."""
import json
import os

import pytest

from tests.fleet.conftest import APP_VARS, fleet_inventory
from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.fleet_site import FleetSite

PM2_HOME = "/home/app/.pm2"


@pytest.fixture(scope="module")
def pm2_site(prepared_fleet, fleet_mariadb, tmp_path_factory):
    fleet, _run = prepared_fleet
    host = fleet["app2"]
    workdir = str(tmp_path_factory.mktemp("pm2"))
    inventory = fleet_inventory(fleet, os.path.join(workdir, "prepare.json"), ["app2"], dict(APP_VARS, app_service_manager="pm2"))
    prepared = run_playbook(os.path.join(REPO_ROOT, "playbooks", "prepare-host.yml"), inventory=inventory)
    assert prepared.ok, prepared
    site = FleetSite(fleet, host, fleet_mariadb.create_database("pm2"), 39370, workdir, "/opt/pm2").deploy()
    yield site
    host.run("cd / && runuser -u app -- env PM2_HOME=%s pm2 kill >/dev/null 2>&1; pkill -u app || true" % PM2_HOME)


def pm2_apps(host):
    """``pm2 jlist`` of app's daemon, asked as app: name -> (status, pid)."""
    out = host.run("cd / && runuser -u app -- env PM2_HOME=%s pm2 jlist" % PM2_HOME).stdout
    listing = [line for line in out.splitlines() if line.startswith("[")][-1]
    return dict((app["name"], (app["pm2_env"]["status"], app["pid"])) for app in json.loads(listing))


def test_safe_sync_restarts_the_app_under_pm2_as_its_own_user(pm2_site):
    host = pm2_site.host
    run = pm2_site.play("safe-sync", extra_vars=dict(safe_sync_restart="always"), app_service_manager="pm2")
    assert run.ok, run
    status, pid = pm2_apps(host)["demo"]
    assert status == "online"
    assert host.run("ps -o user= -p %d" % pid).stdout.strip() == "app", "the app runs as its own user"
    daemon = host.run("cat %s/pm2.pid" % PM2_HOME).stdout.strip()
    assert host.run("ps -o user= -p %s" % daemon).stdout.strip() == "app", "pm2's daemon is app's own"
    assert host.run("test -e /root/.pm2 || test -e /home/deploy/.pm2", check=False).returncode != 0, \
        "no pm2 daemon of root or deploy was spawned"
    assert pm2_site.health()[0] == 200

    again = pm2_site.play("safe-sync", app_service_manager="pm2")
    assert again.ok, again
    assert pm2_apps(host)["demo"] == ("online", pid), "nothing to sync: pm2's app was left alone"
