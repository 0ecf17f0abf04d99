"""Runbook 003's blue-green and canary on the fleet: nginx on lb (its own inventory host), both colours
on app1 and app2 (each colour a port on each host, reached at the host's inventory address), MariaDB on
db, under load through the load balancer; over SSH as deploy with become, each colour running as user app."""
import json
import os
import urllib.request

import pytest

from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.fleet_site import FleetLoadBalancer, FleetSite
from tests.harness.load import Load

BASE_DIR = "/opt/colours"
APPS = ["app1", "app2"]
PORTS = dict(blue=39351, green=39352)
LISTEN = 8081
SITE = "colours"
CANARY = dict(nginx_site_split_key="$arg_user", traffic_canary_interval=3, traffic_canary_min_requests=15,
              traffic_canary_steps=[50, 100], traffic_canary_latency_floor_ms=200)


class ColourFleet(object):
    def __init__(self, fleet, sites, nginx, workdir):
        self.fleet = fleet
        self.sites = sites
        self.nginx = nginx
        self.workdir = workdir

    def play(self, playbook, release, **overrides):
        settings = dict(traffic_colour_ports=PORTS, traffic_gate_wait_timeout=20, traffic_gate_interval=0.5,
                        traffic_observe=2, traffic_observe_samples=30, traffic_keep_warm=0, nginx_site_name=SITE)
        settings.update(overrides)
        apps = {}
        for name, site in self.sites.items():
            # each host's colours serve on its own address; the colour's port comes as PORT
            command = ["/usr/bin/python3", "-m", "demo_app", "serve", "--host", site.host.address]
            # relative to the colour's own link, where the colour runs
            apps[name] = site.host_vars(app_service_command=command, app_service_environment=dict(DEMO_ENV_FILE=".env"),
                                        **settings)
        # the load balancer's own nginx settings: where it listens is its business, not the app hosts'
        lb = dict(self.fleet.host_vars(self.nginx.host), **self.nginx.host_vars())
        lb.update(nginx_site_listen="%s:%d" % (self.nginx.host.address, LISTEN))
        inventory = dict(all=dict(children=dict(demo=dict(hosts=apps), load_balancers=dict(hosts=dict(lb=lb)))))
        path = os.path.join(self.workdir, "colours.json")
        with open(path, "w") as handle:
            json.dump(inventory, handle)
        return run_playbook(os.path.join(REPO_ROOT, "playbooks", playbook + ".yml"), inventory=path,
                            extra_vars=dict(target_hosts="demo", traffic_release=release))

    def colour_users(self, colour):
        """The user each app host runs ``colour`` as, None where it does not run."""
        return [(self.sites[name].app_process("demo-" + colour) or (None,))[0] for name in APPS]

    def serving(self):
        """X-Release-Pool of a few requests through the load balancer."""
        pools = set()
        for _request in range(5):
            with urllib.request.urlopen("http://%s:%d/api/version" % (self.nginx.host.address, LISTEN), timeout=5) as answer:
                pools.add(answer.headers.get("X-Release-Pool"))
        return pools

    def pools(self):
        """The servers of each colour in the routing on the load balancer."""
        with open(self.nginx.host.path("%s/%s_split.conf" % (self.nginx.conf_dir, SITE))) as handle:
            text = handle.read()
        return dict((colour, sorted(line.split()[1].rstrip(";") for line in text.split("upstream %s_%s {" % (SITE, colour))[1]
                                    .split("}")[0].strip().splitlines())) for colour in PORTS)


@pytest.fixture(scope="module")
def colours(prepared_fleet, fleet_mariadb, tmp_path_factory):
    fleet, _run = prepared_fleet
    workdir = str(tmp_path_factory.mktemp("colours"))
    url = fleet_mariadb.create_database("colours")
    sites = dict((name, FleetSite(fleet, fleet[name], url, PORTS["blue"], workdir, BASE_DIR).deploy()) for name in APPS)
    for site in sites.values():
        for name, release, fault in (("1.0.0", "v1", None), ("2.0.0", "v2", None), ("3.0.0-bad", "v3", "error_rate:0.2")):
            site.add_release(name, release, fault)
        # the first colour has no colour before it to carry the .env over from: the operator put it there
        site.host.run("cp -p %s/releases/initial/.env %s/releases/1.0.0/.env" % (BASE_DIR, BASE_DIR))
    nginx = FleetLoadBalancer(fleet["lb"], LISTEN).start()
    yield ColourFleet(fleet, sites, nginx, workdir)
    for site in sites.values():
        site.host.run("pkill -u app || true")
    nginx.host.run("rm -f %s/%s_* && nginx -s reload" % (nginx.conf_dir, SITE))


def test_first_release_then_a_switch_under_load_fails_no_request(colours):
    first = colours.play("blue-green", "1.0.0")
    assert first.ok, first
    assert colours.colour_users("blue") == ["app", "app"] and colours.serving() == {"blue"}
    addresses = [colours.sites[name].host.address for name in APPS]
    assert colours.pools() == dict((colour, ["%s:%d" % (address, port) for address in addresses]) for colour, port in PORTS.items())
    for name in APPS:
        written = colours.sites[name].host.run("test -e /etc/nginx/conf.d/%s_split.conf" % SITE, check=False)
        assert written.returncode != 0, "the routing lives on lb only, nothing of it on the app host %s" % name

    with Load(LISTEN, rate=30, host=colours.nginx.host.address) as load:
        run = colours.play("blue-green", "2.0.0")
    assert run.ok, run
    assert load.failed() == [] and load.served_by("v1") and load.served_by("v2")
    published = run.published_stats()
    assert published["live"] == "green" and published["stopped"] == "blue"
    assert colours.serving() == {"green"} and colours.colour_users("green") == ["app", "app"]
    assert colours.colour_users("blue") == [None, None]
    for name in APPS:
        mode = colours.sites[name].host.run("stat -c '%%U %%a' %s/releases/2.0.0/.env" % BASE_DIR).stdout.split()
        assert mode == ["app", "600"], "the colour's env file stays the app's own on %s, readable by nobody else" % name


def test_a_bad_canary_is_aborted_by_itself_and_traffic_stays_on_green(colours):
    with Load(LISTEN, rate=40, host=colours.nginx.host.address) as load:
        run = colours.play("canary", "3.0.0-bad", **CANARY)
        aborted_at = load.requests[-1][0]
    assert not run.ok
    published = run.published_stats()
    assert published["aborted"] and published["live"] == "green", published
    assert [s["verdict"] for s in published["steps"]] == ["fail"]
    assert {r[2] for r in load.failed()} == {"blue"}, "only the bad release's own errors, on the canary colour"
    assert all(r[2] == "green" for r in load.requests if r[0] > aborted_at)
    assert colours.serving() == {"green"} and colours.colour_users("blue") == [None, None]
