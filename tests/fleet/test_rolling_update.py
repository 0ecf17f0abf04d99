"""Runbook 003's rolling update on the fleet: nginx on lb, the demo app on app1 and app2 (each on its own
address, same port), MariaDB on db; over SSH as deploy with become, the app running as user app."""
import json
import os

import pytest

from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.fleet_site import FleetLoadBalancer, FleetSite
from tests.harness.load import Load

PORT = 39330
LISTEN = 8080
APPS = ["app1", "app2"]


class RollingFleet(object):
    def __init__(self, fleet, sites, lb, workdir):
        self.fleet = fleet
        self.sites = sites
        self.lb = lb
        self.workdir = workdir

    def play(self, release, **overrides):
        settings = dict(dict(traffic_gate_wait_timeout=20, traffic_gate_interval=0.5, traffic_drain_seconds=1), **overrides)
        instances = dict((name, site.host_vars(**settings)) for name, site in self.sites.items())
        lb = dict(self.fleet.host_vars(self.lb.host), **self.lb.host_vars())
        inventory = dict(all=dict(children=dict(demo=dict(hosts=instances), load_balancers=dict(hosts=dict(lb=lb)))))
        path = os.path.join(self.workdir, "rolling.json")
        with open(path, "w") as handle:
            json.dump(inventory, handle)
        return run_playbook(os.path.join(REPO_ROOT, "playbooks", "rolling-update.yml"), inventory=path,
                            extra_vars=dict(target_hosts="demo", traffic_release=release))

    def address(self, name):
        return "%s:%d" % (self.sites[name].host.address, PORT)


@pytest.fixture(scope="module")
def rolling(prepared_fleet, fleet_mariadb, tmp_path_factory):
    fleet, _run = prepared_fleet
    url = fleet_mariadb.create_database("rolling")
    workdir = str(tmp_path_factory.mktemp("rolling"))
    sites = dict((name, FleetSite(fleet, fleet[name], url, PORT, workdir, "/opt/rolling").deploy()) for name in APPS)
    for site in sites.values():
        site.add_release("1.0.0", "v1").add_release("2.0.0", "v2").add_release("2.0.1-bad", "v2.0.1", fault="error500")
    lb = FleetLoadBalancer(fleet["lb"], LISTEN).start(["%s:%d" % (fleet[name].address, PORT) for name in APPS])
    yield RollingFleet(fleet, sites, lb, workdir)
    for site in sites.values():
        site.host.run("pkill -u app || true")


def test_the_first_rollout_starts_every_instance_and_puts_it_in_the_pool(rolling):
    run = rolling.play("1.0.0")
    assert run.ok, run
    assert run.published_stats()["updated"] == APPS
    for name, site in rolling.sites.items():
        assert site.release_of() == "1.0.0"
        user, _pid = site.app_process()
        assert user == "app", "the instance runs as its own user on %s" % name
        assert site.health()[0] == 200
    assert rolling.lb.pool() == dict((rolling.address(name), False) for name in APPS)


def test_a_release_rolls_across_both_hosts_under_load_without_a_failed_request(rolling):
    with Load(LISTEN, rate=30, host=rolling.lb.host.address) as load:
        run = rolling.play("2.0.0")
    assert run.ok, run
    assert load.failed() == [], "no request may fail while instances are drained and restarted"
    assert load.served_by("v1") and load.served_by("v2"), "the load ran through the update"
    assert run.published_stats()["updated"] == APPS
    assert [site.release_of() for site in rolling.sites.values()] == ["2.0.0", "2.0.0"]
    assert rolling.lb.pool() == dict((rolling.address(name), False) for name in APPS)


def test_a_bad_release_stops_at_app1_which_goes_back_while_app2_is_not_touched(rolling):
    with Load(LISTEN, rate=30, host=rolling.lb.host.address) as load:
        run = rolling.play("2.0.1-bad", traffic_gate_wait_timeout=4)
    assert not run.ok
    assert load.failed() == [], "app1 was drained before it got the bad release"
    published = run.published_stats()
    assert (published["failed"], published["restored"], published["not_touched"]) == ("app1", True, ["app2"])
    assert [site.release_of() for site in rolling.sites.values()] == ["2.0.0", "2.0.0"]
    assert all(site.health()[0] == 200 for site in rolling.sites.values())
    assert rolling.lb.pool() == dict((rolling.address(name), False) for name in APPS)
