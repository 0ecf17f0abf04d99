"""nginx_split under continuous load: 20 blue<->green switches, then a canary 5 -> 10 -> 25 -> 50 -> 100 %.

Real nginx (harness prefix) in front of the demo app in two colours; the server block is the
nginx_site role's template. Three kinds of client run the whole time, two threads each:

* no keep-alive       a new connection per request (``Connection: close``);
* keep-alive          one persistent connection, no retry: a failed request is counted and the
                      client reconnects;
* keep-alive + retry  the same, but a request that died on a connection nginx had closed before
                      answering (reset, broken pipe, closed without a response) is sent once more on a
                      fresh connection, as browsers, Go's net/http and urllib3's Retry do for GET.

The sequence runs twice: with nginx's default keep-alive, and with ``keepalive_timeout 0`` in the
location (nginx answers ``Connection: close``, so no connection is ever idle at a reload).

What a keep-alive client sees on reload: nginx's old worker processes finish the requests they are
serving (those answers carry ``Connection: close``), then close every idle keep-alive connection and
exit. A client that sends its next request on such a connection at that moment gets a reset or an
empty answer: at most one failed request per idle connection per reload. nginx 1.22 has no setting
that keeps idle connections open across a reload; ``worker_shutdown_timeout`` only bounds how long
old workers linger. What reduces it: clients retrying idempotent requests on a connection closed
before any answer; ``keepalive_timeout 0`` (no keep-alive at all, one handshake per request); and
fewer reloads (nginx_split reloads only when the routing changes, never on an unchanged run).

    .venv/bin/python bench/switch_under_load.py [--pause 0.6]
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import jinja2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.harness.collection import COLLECTIONS_PATH, REPO_ROOT, ensure_collection_link  # noqa: E402
from tests.harness.servers import DemoApp, NginxServer, free_port  # noqa: E402

APP = "bench"
TEMPLATE = os.path.join(REPO_ROOT, "roles", "nginx_site", "templates", "server.conf.j2")
KINDS = ("no keep-alive", "keep-alive", "keep-alive + retry")
# Errors that mean the server closed the connection before answering: safe to retry for a GET.
CLOSED_BEFORE_ANSWER = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        http.client.BadStatusLine)


def run_module(args):
    """nginx_split itself (AnsibleModule entry point), as Ansible would run it, minus the executor."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
    done = subprocess.run([sys.executable, "-m", "ansible_collections.saferelease.core.plugins.modules.nginx_split"],
                          input=json.dumps(dict(ANSIBLE_MODULE_ARGS=args)), capture_output=True, text=True, env=env,
                          check=False)
    result = json.loads(done.stdout)
    if result.get("failed"):
        raise RuntimeError(result["msg"])
    return result


def write_server_block(nginx, port, access_log, location_directives):
    with open(TEMPLATE) as handle:
        environment = jinja2.Environment(keep_trailing_newline=True)
        environment.filters["basename"] = os.path.basename  # the one Ansible filter the template uses
        template = environment.from_string(handle.read())
    text = template.render(ansible_managed="written by bench/switch_under_load.py", nginx_site_name=APP,
                           nginx_site_split_file="%s_split.conf" % APP, nginx_site_listen="127.0.0.1:%d" % port,
                           nginx_site_server_name="_", nginx_site_access_log=access_log,
                           nginx_site_location_directives=location_directives)
    with open(os.path.join(nginx.conf_dir, "%s_vhost.conf" % APP), "w") as handle:
        handle.write(text)


class Client(threading.Thread):
    """Sends GET /api/version until stopped; counts answers, failures and the pools that answered."""

    def __init__(self, kind, port, stop):
        super(Client, self).__init__(daemon=True)
        self.kind, self.port, self.stop = kind, port, stop
        self.requests = self.failures = self.retried = 0
        self.errors = {}
        self.pools = {}
        self.conn = None

    def connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        return self.conn

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def once(self):
        headers = {"Connection": "close"} if self.kind == "no keep-alive" else {}
        conn = self.connection()
        conn.request("GET", "/api/version", headers=headers)
        answer = conn.getresponse()
        answer.read()
        if self.kind == "no keep-alive" or answer.will_close:
            self.drop()
        return answer.status, answer.getheader("X-Release-Pool")

    def attempt(self):
        try:
            return self.once()
        except CLOSED_BEFORE_ANSWER:
            self.drop()
            if self.kind != "keep-alive + retry":
                raise
            self.retried += 1
            return self.once()

    def run(self):
        while not self.stop.is_set():
            self.requests += 1
            try:
                status, pool = self.attempt()
            except (OSError, http.client.HTTPException) as exc:
                self.drop()
                self.failures += 1
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                continue
            if status != 200:
                self.failures += 1
                self.errors["HTTP %d" % status] = self.errors.get("HTTP %d" % status, 0) + 1
            self.pools[pool] = self.pools.get(pool, 0) + 1
        self.drop()


def switch_sequence():
    steps = [dict(active="green" if index % 2 == 0 else "blue") for index in range(20)]
    steps += [dict(weights={"blue": 100 - share, "green": share}, canary="green") for share in (5, 10, 25, 50, 100)]
    return steps


def run_phase(name, nginx, pools, pause, location_directives):
    port = free_port()
    access_log = os.path.join(nginx.prefix, "logs", "%s-%s.log" % (APP, name))
    base = dict(name=APP, path=nginx.conf_dir, pools=pools, nginx_conf=nginx.main_conf, nginx_prefix=nginx.prefix)
    run_module(dict(base, active="blue", reload=False))
    write_server_block(nginx, port, access_log, location_directives)
    run_module(dict(base, active="blue", force_reload=True))
    stop = threading.Event()
    clients = [Client(kind, port, stop) for kind in KINDS for _unused in range(2)]
    for client in clients:
        client.start()
    time.sleep(pause)
    switch_seconds, reloads = [], 0
    started = time.monotonic()
    for step in switch_sequence():
        began = time.monotonic()
        result = run_module(dict(base, **step))
        switch_seconds.append(time.monotonic() - began)
        reloads += 1 if result["reloaded"] else 0
        time.sleep(pause)
    stop.set()
    for client in clients:
        client.join()
    elapsed = time.monotonic() - started
    kinds = {}
    for kind in KINDS:
        mine = [c for c in clients if c.kind == kind]
        errors, served = {}, {}
        for client in mine:
            for error, count in client.errors.items():
                errors[error] = errors.get(error, 0) + count
            for pool, count in client.pools.items():
                served[pool] = served.get(pool, 0) + count
        kinds[kind] = dict(requests=sum(c.requests for c in mine), failed=sum(c.failures for c in mine),
                           retried=sum(c.retried for c in mine), errors=errors, served_by_pool=served)
    return dict(phase=name, location_directives=location_directives, switches=len(switch_seconds), reloads=reloads,
                seconds=round(elapsed, 1), clients=kinds,
                switch_s=dict(median=round(statistics.median(switch_seconds), 3), max=round(max(switch_seconds), 3)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause", type=float, default=0.6, help="seconds of load between two switches")
    options = parser.parse_args()
    ensure_collection_link()
    with tempfile.TemporaryDirectory(prefix="sr-bench-split-") as scratch:
        apps = [DemoApp("file:" + os.path.join(scratch, "%s.db" % colour), color=colour, base=scratch).migrate().start()
                for colour in ("blue", "green")]
        nginx = NginxServer(scratch).start()
        try:
            pools = dict((app.color, ["127.0.0.1:%d" % app.port]) for app in apps)
            phases = [run_phase("default", nginx, pools, options.pause, []),
                      run_phase("keepalive_timeout_0", nginx, pools, options.pause, ["keepalive_timeout 0;"])]
        finally:
            nginx.stop()
            for app in apps:
                app.stop()
    print("%-22s %-20s %9s %7s %8s  %s" % ("nginx setting", "client", "requests", "failed", "retried", "errors"))
    for phase in phases:
        for kind in KINDS:
            figures = phase["clients"][kind]
            print("%-22s %-20s %9d %7d %8d  %s" % (
                phase["phase"], kind, figures["requests"], figures["failed"], figures["retried"],
                ", ".join("%s x%d" % item for item in sorted(figures["errors"].items())) or "-"))
    for phase in phases:
        print("%s: %d switches (%d reloads) in %.1f s; one switch (module run incl. nginx -t, reload, check) median "
              "%.3f s, max %.3f s" % (phase["phase"], phase["switches"], phase["reloads"], phase["seconds"],
                                      phase["switch_s"]["median"], phase["switch_s"]["max"]))
    out_dir = os.path.join(REPO_ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "switch_under_load.json"), "w") as handle:
        json.dump(dict(phases=phases, pause_s=options.pause, host_cpus=os.cpu_count()), handle, indent=2)
    print("written: bench/results/switch_under_load.json")
    if any(phase["clients"]["no keep-alive"]["failed"] for phase in phases):
        sys.exit("the client without keep-alive saw failed requests")


if __name__ == "__main__":
    main()
