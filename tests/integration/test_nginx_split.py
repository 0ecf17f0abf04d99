"""nginx_split and the nginx_site role on real nginx: blue-green, canary shares, sticky raises, forced routing,
refused inputs, and two load balancers switched together.

Requests always go through real nginx routing. Where thousands of requests are needed, the pools are
tiny ``return`` servers in the same nginx (their body names the colour), so a test takes seconds; the
blue-green and two-load-balancer tests use the demo app in two colours.
"""
import collections
import concurrent.futures
import http.client
import json
import os
import re
import socket
import sys

import pytest

from ansible_collections.saferelease.core.plugins.module_utils import canary_analysis
from ansible_collections.saferelease.core.plugins.module_utils.nginx_runner import process_children
from tests.harness.ansible_run import run_module, run_playbook
from tests.harness.servers import NginxServer, free_port

APP = "demo"
MODULE = "saferelease.core.nginx_split"
SITE_PLAY = """\
- name: Route the demo through nginx
  hosts: all
  gather_facts: false
  roles:
    - role: saferelease.core.nginx_site
"""
COLOUR_SERVERS = """\
server {{ listen 127.0.0.1:{blue}; location / {{ return 200 "blue\\n"; }} }}
server {{ listen 127.0.0.1:{green}; location / {{ return 200 "green\\n"; }} }}
"""


# --- helpers ---------------------------------------------------------------------------------------

class Site(object):
    """One nginx with the demo's server block on its own port."""

    def __init__(self, nginx):
        self.nginx = nginx
        self.port = free_port()
        self.split_file = os.path.join(nginx.conf_dir, "%s_split.conf" % APP)
        self.server_file = os.path.join(nginx.conf_dir, "%s_vhost.conf" % APP)
        self.access_log = os.path.join(nginx.prefix, "logs", "%s_split.log" % APP)

    def role_vars(self, **routing):
        values = dict(nginx_site_name=APP, nginx_site_conf_dir=self.nginx.conf_dir,
                      nginx_site_listen="127.0.0.1:%d" % self.port, nginx_site_access_log=self.access_log,
                      nginx_site_nginx_conf=self.nginx.main_conf, nginx_site_nginx_prefix=self.nginx.prefix,
                      nginx_site_reload_timeout=5)
        values.update(("nginx_site_%s" % key, value) for key, value in routing.items())
        return values

    def module_args(self, **routing):
        args = dict(name=APP, path=self.nginx.conf_dir, nginx_conf=self.nginx.main_conf, nginx_prefix=self.nginx.prefix)
        args.update(routing)
        return args

    def workers(self):
        return process_children(self.nginx.pid)

    def read(self, path=None):
        with open(path or self.split_file) as handle:
            return handle.read()


def colour_pools(nginx):
    """Two ``return`` servers in ``nginx`` whose body is their colour; returns the pools for them."""
    ports = dict(blue=free_port(), green=free_port())
    with open(os.path.join(nginx.conf_dir, "colours.conf"), "w") as handle:
        handle.write(COLOUR_SERVERS.format(**ports))
    nginx.reload()
    return dict((colour, ["127.0.0.1:%d" % port]) for colour, port in ports.items())


def app_pools(demo_app_factory):
    apps = dict((colour, demo_app_factory(color=colour)) for colour in ("blue", "green"))
    return dict((colour, ["127.0.0.1:%d" % app.port]) for colour, app in apps.items())


def apply_site(tmp_path, extra_vars=None, inventory=None):
    playbook = tmp_path / "site.yml"
    playbook.write_text(SITE_PLAY)
    return run_playbook(str(playbook), extra_vars=extra_vars, inventory=inventory)


def fetch(port, paths, headers=None, connections=4):
    """GET every path through nginx on ``connections`` keep-alive connections.

    Returns ``[(path, status, X-Release-Pool, colour that answered)]``; the colour comes from the demo
    app's X-Demo-Color header or the colour server's body.
    """
    def worker(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        rows = []
        try:
            for path in chunk:
                conn.request("GET", path, headers=headers or {})
                answer = conn.getresponse()
                body = answer.read().decode().strip()
                rows.append((path, answer.status, answer.getheader("X-Release-Pool"),
                             answer.getheader("X-Demo-Color") or body))
        finally:
            conn.close()
        return rows
    chunks = [paths[index::connections] for index in range(connections)]
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        return [row for rows in pool.map(worker, chunks) for row in rows]


def served_by(rows):
    """Counter of (pool header, colour that answered); every answer must be a 200."""
    assert all(status == 200 for _path, status, _pool, _colour in rows), collections.Counter(r[1] for r in rows)
    return collections.Counter((pool, colour) for _path, _status, pool, colour in rows)


def pool_of_each_key(rows):
    return dict((path.split("uid=", 1)[1], pool) for path, _status, pool, _colour in rows)


# --- blue-green ------------------------------------------------------------------------------------

def test_blue_green_switch_sends_every_request_to_the_active_pool(nginx_server, demo_app_factory, tmp_path):
    site = Site(nginx_server)
    pools = app_pools(demo_app_factory)
    run = apply_site(tmp_path, site.role_vars(pools=pools, active="blue"))
    assert run.ok, run
    assert served_by(fetch(site.port, ["/api/version"] * 1000)) == {("blue", "blue"): 1000}

    switched = run_module(MODULE, site.module_args(pools=pools, active="green"), diff=True)
    assert not switched["failed"], switched["msg"]
    assert switched["changed"] and switched["validated"] and switched["reloaded"]
    assert switched["active"] == "green" and switched["weights"] == {"blue": 0, "green": 100}
    assert switched["path"] == site.split_file and switched["backup_file"] == site.split_file + ".previous"
    assert re.search(r"\*\s+demo_blue;", switched["diff"]["before"]) and re.search(r"\*\s+demo_green;", switched["diff"]["after"])
    assert set(switched["nginx"]["reload"]["new_workers"]) <= site.workers()
    assert served_by(fetch(site.port, ["/api/version"] * 1000)) == {("green", "green"): 1000}

    # The shared JSON access log names the pool, so health_gate can tell the colours apart.
    entries, skipped = canary_analysis.read_entries(site.access_log, 0)
    assert skipped == 0 and len(entries) == 2000
    assert collections.Counter(e["pool"] for e in entries) == {"blue": 1000, "green": 1000}
    last = entries[-1]
    assert sorted(last) == sorted(["time", "msec", "app", "pool", "upstream_addr", "status", "upstream_status",
                                   "request_time", "upstream_response_time", "method", "uri", "split_key"])
    assert last["app"] == APP and last["status"] == 200 and isinstance(last["request_time"], float)
    assert last["upstream_addr"] == pools["green"][0] and last["uri"] == "/api/version" and last["split_key"] == "127.0.0.1"

    workers = site.workers()
    again = run_module(MODULE, site.module_args(pools=pools, active="green"))
    assert not again["failed"] and not again["changed"] and not again["reloaded"]
    assert site.workers() == workers  # no reload happened

    back = run_module(MODULE, site.module_args(state="restored"))
    assert back["changed"] and back["reloaded"] and back["active"] == "blue"
    assert served_by(fetch(site.port, ["/api/version"] * 100)) == {("blue", "blue"): 100}


def test_check_mode_reports_the_change_and_touches_nothing(nginx_server, tmp_path):
    site = Site(nginx_server)
    pools = colour_pools(nginx_server)
    assert apply_site(tmp_path, site.role_vars(pools=pools, active="blue")).ok
    before, workers = site.read(), site.workers()
    listing = sorted(os.listdir(nginx_server.conf_dir))

    checked = run_module(MODULE, site.module_args(pools=pools, weights={"blue": 75, "green": 25}), check=True, diff=True)
    assert not checked["failed"] and checked["changed"] and not checked["reloaded"] and not checked["validated"]
    assert re.search(r"75%\s+demo_blue;\s+\*\s+demo_green;", checked["diff"]["after"])
    assert site.read() == before and site.workers() == workers and sorted(os.listdir(nginx_server.conf_dir)) == listing

    role_check = run_playbook(str(tmp_path / "site.yml"), extra_vars=site.role_vars(pools=pools, active="green"), check=True)
    assert role_check.ok, role_check
    assert site.read() == before and site.workers() == workers
    assert served_by(fetch(site.port, ["/"] * 50)) == {("blue", "blue"): 50}


# --- canary ------------------------------------------------------------------------------------------

def test_canary_share_and_sticky_raise_from_5_to_10_percent(nginx_server, tmp_path):
    site = Site(nginx_server)
    pools = colour_pools(nginx_server)
    keys = ["user-%05d" % index for index in range(10000)]
    paths = ["/?uid=%s" % key for key in keys]
    run = apply_site(tmp_path, site.role_vars(pools=pools, weights={"blue": 95, "green": 5}, canary="green",
                                              split_key="$arg_uid"))
    assert run.ok, run
    at_five = fetch(site.port, paths)
    counts = served_by(at_five)
    assert set(counts) == {("blue", "blue"), ("green", "green")}
    assert abs(counts[("green", "green")] / 100.0 - 5) <= 2, counts
    on_canary = set(key for key, pool in pool_of_each_key(at_five).items() if pool == "green")

    raised = run_module(MODULE, site.module_args(pools=pools, weights={"blue": 90, "green": 10}, canary="green",
                                                 split_key="$arg_uid"))
    assert raised["changed"] and raised["reloaded"], raised["msg"]
    assert re.search(r"10%\s+demo_green;\s+\*\s+demo_blue;", site.read())  # the canary bucket comes first
    at_ten = fetch(site.port, paths)
    counts = served_by(at_ten)
    assert abs(counts[("green", "green")] / 100.0 - 10) <= 2, counts
    now_on_canary = set(key for key, pool in pool_of_each_key(at_ten).items() if pool == "green")
    assert on_canary <= now_on_canary, "%d clients left the canary" % len(on_canary - now_on_canary)
    assert len(now_on_canary) > len(on_canary)

    info = run_module("saferelease.core.nginx_split_info", dict(name=APP, path=nginx_server.conf_dir))
    assert (info["exists"], info["active"], info["weights"], info["canary"], info["split_key"], info["pending"]) == \
        (True, None, {"blue": 90, "green": 10}, "green", "$arg_uid", False)
    assert info["pools"] == dict((pool, [dict(address=server)]) for pool, (server,) in pools.items()) and not info["changed"]
    missing = run_module("saferelease.core.nginx_split_info", dict(name="other", path=nginx_server.conf_dir))
    assert not missing["exists"] and missing["pools"] == {} and missing["active"] is None

    # health_gate's canary analysis reads the same figures from the access log.
    verdict, _reasons, figures = canary_analysis.analyse_log(site.access_log, "green", "blue", window_s=3600, min_requests=100)
    assert verdict == "pass"
    assert figures["canary"]["requests"] == len(on_canary) + len(now_on_canary)


def test_forced_header_and_cookie_routing(nginx_server, tmp_path):
    site = Site(nginx_server)
    pools = colour_pools(nginx_server)
    run = apply_site(tmp_path, site.role_vars(pools=pools, active="blue", force_header="X-Release-Pool",
                                              force_cookie="release_pool"))
    assert run.ok, run
    assert served_by(fetch(site.port, ["/"] * 20)) == {("blue", "blue"): 20}
    assert served_by(fetch(site.port, ["/"] * 20, {"X-Release-Pool": "green"})) == {("green", "green"): 20}
    assert served_by(fetch(site.port, ["/"] * 20, {"Cookie": "release_pool=green"})) == {("green", "green"): 20}
    # The header wins over the cookie; a value that names no pool falls back to the split.
    both = {"X-Release-Pool": "blue", "Cookie": "theme=dark; release_pool=green"}
    assert served_by(fetch(site.port, ["/"] * 20, both)) == {("blue", "blue"): 20}
    assert served_by(fetch(site.port, ["/"] * 20, {"X-Release-Pool": "purple"})) == {("blue", "blue"): 20}


# --- refused inputs --------------------------------------------------------------------------------

REFUSED_INPUTS = [
    # (what is wrong, change to the module arguments, what the failure message must say)
    ("unknown upstream host", dict(green_extra="no-such-host.invalid:80"),
     'host not found in upstream "no-such-host.invalid:80"'),
    ("three decimals", dict(weights={"blue": 89.995, "green": 10.005}), "at most two decimals"),
    ("sum above 100", dict(weights={"blue": 100, "green": 10}), "add up to 110%"),
    ("unknown pool", dict(weights={"blue": 90, "grey": 10}), "unknown pool(s) grey"),
    ("negative weight", dict(weights={"blue": 110, "green": -10}), "must be from 0 to 100"),
    ("config injection in split_key", dict(split_key='$remote_addr" $x { } #'), "split_key"),
]


def test_broken_input_is_refused_and_the_old_routing_keeps_serving(nginx_server, tmp_path):
    site = Site(nginx_server)
    pools = colour_pools(nginx_server)
    assert apply_site(tmp_path, site.role_vars(pools=pools, active="blue")).ok
    before, previous, workers = site.read(), site.read(site.split_file + ".previous"), site.workers()
    for what, change, fragment in REFUSED_INPUTS:
        args = site.module_args(pools=dict(pools), weights={"blue": 90, "green": 10})
        change = dict(change)
        if "green_extra" in change:
            args["pools"]["green"] = pools["green"] + [change.pop("green_extra")]
        args.update(change)
        refused = run_module(MODULE, args)
        assert refused["failed"] and fragment in refused["msg"], (what, refused["msg"])
        assert "nginx keeps serving" in refused["msg"] or "nginx was not touched" in refused["msg"], what
        assert site.read() == before and site.read(site.split_file + ".previous") == previous, what
        assert [name for name in os.listdir(nginx_server.conf_dir) if name.endswith(".tmp")] == [], what
        assert site.workers() == workers, what
        assert served_by(fetch(site.port, ["/"] * 100)) == {("blue", "blue"): 100}, what


# --- two load balancers ----------------------------------------------------------------------------

def lb_inventory(tmp_path, sites, routing, per_host=None):
    """An inventory with one host per load balancer, all local; ``per_host`` overrides a host's vars."""
    hosts = {}
    for index, site in enumerate(sites):
        name = "lb%d" % (index + 1)
        hosts[name] = site.role_vars()
        hosts[name].update((per_host or {}).get(name, {}))
    shared = dict(ansible_connection="local", ansible_python_interpreter=sys.executable)
    shared.update(("nginx_site_%s" % key, value) for key, value in routing.items())
    path = tmp_path / "lbs.yml"
    path.write_text(json.dumps(dict(all=dict(vars=shared, hosts=hosts))))
    return str(path)


def on_lb(run, task, lb):
    """The result of a task the play ran once, delegated to each load balancer in a loop, on ``lb``."""
    return next(item for item in run.task(task)["results"] if item["nginx_site_lb"] == lb)


@pytest.fixture
def two_load_balancers(nginx_server, tmp_path_factory):
    second = NginxServer(str(tmp_path_factory.getbasetemp()))
    try:
        yield Site(nginx_server), Site(second.start())
    finally:
        second.stop()


def test_two_load_balancers_switch_together(two_load_balancers, demo_app_factory, tmp_path):
    sites = two_load_balancers
    pools = app_pools(demo_app_factory)
    first = apply_site(tmp_path, inventory=lb_inventory(tmp_path, sites, dict(pools=pools, active="blue")))
    assert first.ok, first
    for site in sites:
        assert served_by(fetch(site.port, ["/api/version"] * 100)) == {("blue", "blue"): 100}

    switch = apply_site(tmp_path, inventory=lb_inventory(tmp_path, sites, dict(pools=pools, active="green")))
    assert switch.ok, switch
    for host in ("lb1", "lb2"):
        staged = on_lb(switch, "Stage the routing include (written and checked by nginx -t, not reloaded yet)", host)
        assert staged["changed"] and staged["validated"] and not staged["reloaded"] and staged["pending"]
        reloaded = on_lb(switch, "Reload nginx with the new routing", host)
        assert reloaded["reloaded"] and not reloaded["pending"]
    for site in sites:
        assert served_by(fetch(site.port, ["/api/version"] * 100)) == {("green", "green"): 100}

    again = apply_site(tmp_path, inventory=lb_inventory(tmp_path, sites, dict(pools=pools, active="green")))
    assert again.ok and not [r for r in again.results if r["result"].get("changed")], again


def test_one_load_balancer_refusing_leaves_both_on_the_old_routing(two_load_balancers, demo_app_factory, tmp_path):
    sites = two_load_balancers
    pools = app_pools(demo_app_factory)
    assert apply_site(tmp_path, inventory=lb_inventory(tmp_path, sites, dict(pools=pools, active="blue"))).ok
    before = [site.read() for site in sites]
    # Someone left a broken include on lb2 since its last reload: nginx -t there refuses any change.
    broken = os.path.join(sites[1].nginx.conf_dir, "zz_other_app.conf")
    with open(broken, "w") as handle:
        handle.write("upstream other_app { server green-2.invalid:3001; }\n")
    switch = apply_site(tmp_path, inventory=lb_inventory(tmp_path, sites, dict(pools=pools, active="green")))
    os.remove(broken)
    assert not switch.ok
    failed = dict(switch.failed_tasks())
    assert "lb2" in failed["Stop when a load balancer refused or failed the switch"]
    assert 'host not found in upstream "green-2.invalid:3001"' in failed["Stop when a load balancer refused or failed the switch"]
    assert on_lb(switch, "Stage the routing include (written and checked by nginx -t, not reloaded yet)", "lb1")["changed"]
    put_back = on_lb(switch, "Put the previous routing include back and reload", "lb1")
    assert put_back["changed"] and put_back["active"] == "blue"
    assert not put_back["reloaded"]  # lb1 never ran green, so the restored file needs no reload
    assert [site.read() for site in sites] == before
    for site in sites:
        assert served_by(fetch(site.port, ["/api/version"] * 100)) == {("blue", "blue"): 100}


def test_a_reload_nginx_rejects_on_one_load_balancer_puts_both_back(two_load_balancers, demo_app_factory, tmp_path):
    sites = two_load_balancers
    pools = app_pools(demo_app_factory)
    assert apply_site(tmp_path, inventory=lb_inventory(tmp_path, sites, dict(pools=pools, active="blue"))).ok
    before = [(site.read(), site.read(site.server_file)) for site in sites]
    # lb2's server block moves to a port another process holds: nginx -t passes (it binds nothing),
    # but the master cannot bind at reload and keeps its old configuration while `nginx -s reload` exits 0.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        busy = {"lb2": dict(nginx_site_listen="127.0.0.1:%d" % squatter.getsockname()[1])}
        switch = apply_site(tmp_path, inventory=lb_inventory(tmp_path, sites, dict(pools=pools, active="green"), busy))
    assert not switch.ok
    message = dict(switch.failed_tasks())["Stop when a load balancer refused or failed the switch"]
    assert "lb2" in message and "started no new worker process" in message and "Address already in use" in message
    lb1_switch = on_lb(switch, "Reload nginx with the new routing", "lb1")
    assert lb1_switch["reloaded"]  # lb1 did run green for a moment ...
    assert on_lb(switch, "Put the previous routing include back and reload", "lb1")["reloaded"]  # ... and went back
    assert [(site.read(), site.read(site.server_file)) for site in sites] == before
    for site in sites:
        assert served_by(fetch(site.port, ["/api/version"] * 100)) == {("blue", "blue"): 100}
