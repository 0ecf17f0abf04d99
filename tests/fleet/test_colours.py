"""Runbook 003's blue-green and canary on the fleet, nginx beside the app on app2 (prepared with
host_roles [app, lb]), MariaDB on db, under load through nginx; over SSH as deploy with become, each
colour running as user app. Separate load balancer hosts for the colours are not supported yet."""
import os
import urllib.request

import pytest

from tests.fleet.conftest import APP_VARS, fleet_inventory
from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.fleet_site import FleetLoadBalancer, FleetSite
from tests.harness.load import Load

BASE_DIR = "/opt/colours"

PORTS = dict(blue=39351, green=39352)
LISTEN = 8081
CANARY = dict(nginx_site_split_key="$arg_user", traffic_canary_interval=3, traffic_canary_min_requests=15,
              traffic_canary_steps=[50, 100], traffic_canary_latency_floor_ms=200)


class ColourFleet(object):
    def __init__(self, site, nginx):
        self.site = site
        self.nginx = nginx
        self.host = site.host

    def play(self, playbook, release, **overrides):
        address = self.host.address
        settings = dict(app_service_command=["/usr/bin/python3", "-m", "demo_app", "serve", "--host", address],
                        # relative to the colour's own link, where the colour runs
                        app_service_environment=dict(DEMO_ENV_FILE=".env"),
                        traffic_colour_ports=PORTS, traffic_colour_host=address, traffic_gate_wait_timeout=20,
                        traffic_gate_interval=0.5, traffic_observe=2, traffic_observe_samples=30, traffic_keep_warm=0,
                        nginx_site_name="demo", nginx_site_listen="%s:%d" % (address, LISTEN), nginx_site_reload_timeout=10)
        settings.update(overrides)
        return run_playbook(os.path.join(REPO_ROOT, "playbooks", playbook + ".yml"), inventory=self.site.inventory(**settings),
                            extra_vars=dict(traffic_release=release))

    def colour_process(self, colour):
        """The user a colour's process runs as; None when it does not run."""
        found = self.site.app_process("demo-" + colour)
        return found[0] if found else None

    def serving(self):
        """X-Release-Pool of a few requests through nginx."""
        pools = set()
        for _request in range(5):
            with urllib.request.urlopen("http://%s:%d/api/version" % (self.host.address, LISTEN), timeout=5) as answer:
                pools.add(answer.headers.get("X-Release-Pool"))
        return pools


@pytest.fixture(scope="module")
def colours(prepared_fleet, fleet_mariadb, tmp_path_factory):
    fleet, _run = prepared_fleet
    workdir = str(tmp_path_factory.mktemp("colours"))
    host = fleet["app2"]
    # nginx beside the app: prepare-host with the host's roles named
    inventory = fleet_inventory(fleet, os.path.join(workdir, "prepare.json"), ["app2"], dict(APP_VARS, host_roles=["app", "lb"]))
    prepared = run_playbook(os.path.join(REPO_ROOT, "playbooks", "prepare-host.yml"), inventory=inventory)
    assert prepared.ok, prepared
    nginx = FleetLoadBalancer(host, LISTEN).start()
    site = FleetSite(fleet, host, fleet_mariadb.create_database("colours"), PORTS["blue"], workdir, BASE_DIR).deploy()
    for name, release, fault in (("1.0.0", "v1", None), ("2.0.0", "v2", None), ("3.0.0-bad", "v3", "error_rate:0.2")):
        site.add_release(name, release, fault)
    # the first colour has no colour before it to carry the .env over from: the operator put it there
    host.run("cp -p %s/releases/initial/.env %s/releases/1.0.0/.env" % (BASE_DIR, BASE_DIR))
    yield ColourFleet(site, nginx)
    host.run("pkill -u app || true; nginx -s quit || true")


def test_first_release_then_a_switch_under_load_fails_no_request(colours):
    first = colours.play("blue-green", "1.0.0")
    assert first.ok, first
    assert colours.colour_process("blue") == "app" and colours.serving() == {"blue"}

    with Load(LISTEN, rate=30, host=colours.host.address) as load:
        run = colours.play("blue-green", "2.0.0")
    assert run.ok, run
    assert load.failed() == [] and load.served_by("v1") and load.served_by("v2")
    published = run.published_stats()
    assert published["live"] == "green" and published["stopped"] == "blue"
    assert colours.serving() == {"green"} and colours.colour_process("green") == "app"
    assert colours.colour_process("blue") is None
    mode = colours.host.run("stat -c '%%U %%a' %s/releases/2.0.0/.env" % BASE_DIR).stdout.split()
    assert mode == ["app", "600"], "the colour's env file stays the app's own, readable by nobody else"


def test_a_bad_canary_is_aborted_by_itself_and_traffic_stays_on_green(colours):
    with Load(LISTEN, rate=40, host=colours.host.address) as load:
        run = colours.play("canary", "3.0.0-bad", **CANARY)
        aborted_at = load.requests[-1][0]
    assert not run.ok
    published = run.published_stats()
    assert published["aborted"] and published["live"] == "green", published
    assert [s["verdict"] for s in published["steps"]] == ["fail"]
    assert {r[2] for r in load.failed()} == {"blue"}, "only the bad release's own errors, on the canary colour"
    assert all(r[2] == "green" for r in load.requests if r[0] > aborted_at)
    assert colours.serving() == {"green"} and colours.colour_process("blue") is None
