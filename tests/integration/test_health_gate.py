"""health_gate through Ansible against real parts: the demo app (its fault modes), pm2 from the npm registry,
SQLite/MariaDB/PostgreSQL, and nginx routing a canary through nginx_split's access log."""
import http.client
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.harness import servers
from tests.harness.ansible_run import run_module, run_playbook
from tests.harness.collection import REPO_ROOT

MODULE = "saferelease.core.health_gate"
PM2 = os.path.join(REPO_ROOT, "tests", "tools", "node_modules", ".bin", "pm2")
SKIPPING = "(?i)skipping migration"


def gate(**args):
    args.setdefault("interval", 0.2)
    args.setdefault("wait_timeout", 5)
    return run_module(MODULE, args)


def check_named(result, prefix):
    return [c for c in result["checks"] if c["name"].startswith(prefix)][0]


def lines_with(path, text):
    with open(path, errors="replace") as handle:
        return sum(1 for line in handle if text in line)


# --- HTTP --------------------------------------------------------------------------------------

def test_healthy_app_passes_with_figures(demo_app):
    result = gate(url=demo_app.url + "/api/health", expect_json={"schema": "ok", "release": "v2"},
                  consecutive_successes=3, samples=100, max_latency_ms=500, latency_percentile=90,
                  process={"pid_file": demo_app.pid_file}, tcp=[{"port": demo_app.port}])
    assert not result["failed"] and result["healthy"] and result["verdict"] == "pass", result["msg"]
    assert result["attempts"] == 3
    assert result["msg"].startswith("healthy: 3 check(s) passed 3 time(s) in a row after 3 poll(s); 100 samples, 0.00% errors, p90 ")
    samples = result["metrics"]["samples"]
    assert samples["requests"] == 100 and samples["errors"] == 0 and samples["error_rate"] == 0
    assert 0 < samples["latency_ms"]["p50"] <= samples["latency_ms"]["p90"] <= samples["latency_ms"]["max"]
    assert check_named(result, "http")["status"] == 200
    assert check_named(result, "process pid_file")["msg"] == "pid %d is running" % demo_app.process.pid
    assert check_named(result, "tcp")["passed"]


def test_flapping_app_passes_only_after_it_recovers(demo_app_factory):
    app = demo_app_factory(fault="flap:4")  # the first four health checks answer 503
    result = gate(url=app.url + "/api/health", consecutive_successes=2)
    assert result["healthy"] and result["attempts"] == 6
    strict = demo_app_factory(fault="flap:4")
    result = gate(url=strict.url + "/api/health", consecutive_successes=2, wait_timeout=0.5)
    assert result["failed"] and result["verdict"] == "fail"
    assert "not healthy 2 time(s) in a row within 0.5s" in result["msg"]
    assert "http %s/api/health: status 503, expected 200" % strict.url in result["msg"]


def test_always_500_fails_and_names_the_check(demo_app_factory):
    app = demo_app_factory(fault="error500")
    result = gate(url=app.url + "/api/health", wait_timeout=1)
    assert result["failed"] and not result["healthy"] and result["verdict"] == "fail"
    assert "http %s/api/health: status 500, expected 200" % app.url in result["msg"]
    assert "The gate changed nothing" in result["msg"]
    assert result["attempts"] >= 2


def test_unhealthy_verdict_without_failing_the_task(demo_app_factory):
    app = demo_app_factory(fault="error500")
    result = gate(url=app.url + "/api/health", wait_timeout=0.5, fail_on_unhealthy=False)
    assert not result["failed"] and not result["healthy"] and result["verdict"] == "fail"


def test_error_rate_under_sampling(demo_app_factory):
    app = demo_app_factory(fault="error_rate:0.05")  # every 20th request answers 500
    result = gate(url=app.url + "/api/version", samples=200, max_error_rate=0.01)
    assert result["failed"] and result["metrics"]["samples"]["errors"] >= 9
    assert "sample error rate" in result["msg"] and "above 1.00% (status 500, expected 200 x" in result["msg"]
    tolerant = gate(url=app.url + "/api/version", samples=200, max_error_rate=0.1)
    assert tolerant["healthy"], tolerant["msg"]


def test_slow_answers_fail_the_timeout_and_the_latency_limit(demo_app_factory):
    app = demo_app_factory(fault="slow:400")
    timed_out = gate(url=app.url + "/api/version", timeout=0.2, wait_timeout=1)
    assert timed_out["failed"] and "no answer within 0.2s" in timed_out["msg"]
    sampled = gate(url=app.url + "/api/version", timeout=2, samples=8, max_latency_ms=200)
    assert sampled["failed"] and "sample p95 latency" in sampled["msg"] and "above 200.0 ms" in sampled["msg"]
    assert sampled["metrics"]["samples"]["latency_ms"]["p50"] >= 400


def test_connection_refused(unused_port):
    result = gate(url="http://127.0.0.1:%d/api/health" % unused_port, wait_timeout=1)
    assert result["failed"] and "connection failed: Connection refused" in result["msg"]
    assert check_named(result, "http")["status"] is None


def test_wrong_json(demo_app):
    # The old release still answers after a deploy: 200 with the wrong content.
    wrong = gate(url=demo_app.url + "/api/version", expect_json={"release": "v3"}, wait_timeout=0.5)
    assert wrong["failed"] and "JSON field release is 'v2', expected 'v3'" in wrong["msg"]
    not_json = gate(url=demo_app.url + "/", expect_json={"status": "ok"}, wait_timeout=0.5)
    assert not_json["failed"] and "body is not JSON: 'saferelease demo app" in not_json["msg"]
    body = gate(url=demo_app.url + "/api/health", expect_body='"release": "v3"', wait_timeout=0.5)
    assert body["failed"] and "body does not match" in body["msg"]


@pytest.fixture
def tls_app(demo_app_factory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return demo_app_factory(serve_args=["--tls-cert", str(cert), "--tls-key", str(key)], scheme="https")


def test_self_signed_tls_is_refused_unless_verification_is_off(tls_app):
    refused = gate(url=tls_app.url + "/api/health", wait_timeout=0.5)
    assert refused["failed"] and "TLS verification failed: certificate verify failed" in refused["msg"]
    accepted = gate(url=tls_app.url + "/api/health", validate_certs=False, consecutive_successes=2)
    assert accepted["healthy"] and accepted["attempts"] == 2


# --- files, logs and SQL ---------------------------------------------------------------------------

def test_runbook_002_zero_byte_database_and_skipped_migration(demo_app_factory, tmp_path):
    """The build that skipped migrations: the driver created an empty SQLite file and the log says so."""
    database = tmp_path / "customer_service.db"
    app = demo_app_factory(database_url="file:%s" % database, fault="skip_migrations", migrate=False,
                           environ={"DEMO_MIGRATE_ON_START": "1"})
    assert database.stat().st_size == 0
    result = gate(url=app.url + "/api/health", file_min_size=[{"path": str(database), "bytes": 4096}],
                  log_file=app.log, log_offset=0, forbidden_patterns=[SKIPPING], wait_timeout=30)
    assert result["failed"] and result["attempts"] == 1, "a logged line cannot be undone by waiting"
    assert "stopped after 1 poll(s), as waiting cannot undo it" in result["msg"]
    assert "file_min_size %s: %s is 0 bytes, expected at least 4096" % (database, database) in result["msg"]
    assert "forbidden line /%s/ logged: " % SKIPPING in result["msg"] and "skipping migration (DEMO_FAULT" in result["msg"]
    assert check_named(result, "http")["status"] == 503


def test_zero_byte_database_alone(tmp_path):
    database = tmp_path / "dev.db"
    database.write_bytes(b"")
    result = gate(file_min_size=[{"path": str(database)}], wait_timeout=0.5)
    assert result["failed"] and "is 0 bytes, expected at least 1" in result["msg"]


ORPHANS = ('SELECT COUNT(*) FROM "ShipmentItem" i LEFT JOIN "Shipment" s ON s.id = i."shipmentId" '
           'WHERE s.id IS NULL')


@pytest.mark.parametrize("engine", ["sqlite_db", "mariadb_db", "postgres_db"])
def test_orphan_rows_sql_check(request, engine):
    db = request.getfixturevalue(engine)
    quote = (lambda sql: sql.replace('"', "")) if engine == "mariadb_db" else (lambda sql: sql)
    db.execute(quote('CREATE TABLE "Shipment" (id INTEGER PRIMARY KEY)'))
    db.execute(quote('CREATE TABLE "ShipmentItem" (id INTEGER PRIMARY KEY, "shipmentId" INTEGER)'))
    db.execute(quote('INSERT INTO "Shipment" VALUES (1)'))
    db.execute(quote('INSERT INTO "ShipmentItem" VALUES (1, 1), (2, 7)'))
    check = [{"name": "orphan shipment items", "query": quote(ORPHANS), "expect": 0}]
    result = gate(database_url=db.url, sql_checks=check, wait_timeout=0.5)
    assert result["failed"] and "sql orphan shipment items: value 1, expected 0" in result["msg"]
    assert check_named(result, "sql")["value"] == 1
    # A gate only reads: a query that writes is refused by the database and changes nothing.
    writing = gate(database_url=db.url, sql_checks=[{"query": quote('DELETE FROM "ShipmentItem"'), "expect": 0}],
                   wait_timeout=0.3)
    assert writing["failed"] and "query failed" in writing["msg"]
    assert db.execute(quote('SELECT COUNT(*) FROM "ShipmentItem"'))[0][0] == 2
    db.execute(quote('DELETE FROM "ShipmentItem" WHERE id = 2'))
    assert gate(database_url=db.url, sql_checks=check)["healthy"]


def test_sql_check_on_a_zero_byte_sqlite_file(tmp_path):
    database = tmp_path / "empty.db"
    database.write_bytes(b"")
    result = gate(database_url="file:%s" % database, sql_checks=[{"query": ORPHANS, "expect": 0}], wait_timeout=0.3)
    assert result["failed"] and 'query failed: no such table: ShipmentItem' in result["msg"]


# --- pm2 -----------------------------------------------------------------------------------------

class Pm2(object):
    """A pm2 daemon of its own (PM2_HOME in a temp dir) running the demo app."""

    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, PM2_HOME=home, PYTHONPATH=servers.DEMO_APP_DIR, PYTHONDONTWRITEBYTECODE="1")

    def run(self, *args, **environ):
        done = subprocess.run([PM2] + list(args), env=dict(self.env, **environ), capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, "pm2 %s: %s %s" % (" ".join(args), done.stdout[-500:], done.stderr[-500:])
        return done

    def start_demo(self, name, port, database_url, log, **environ):
        subprocess.run([sys.executable, "-m", "demo_app", "migrate"], env=dict(self.env, DATABASE_URL=database_url),
                       check=True, capture_output=True)
        self.run("start", sys.executable, "--name", name, "--interpreter", "none", "--output", log, "--error", log,
                 "--", "-m", "demo_app", "serve", "--port", str(port),
                 DATABASE_URL=database_url, DEMO_RELEASE="v2", **environ)
        with open(os.path.join(self.home, "pm2.pid")) as handle:
            servers.record_pid(int(handle.read()), "PM2 %s" % self.home)

    def gate_args(self, name):
        return {"pm2": name, "pm2_binary": PM2, "pm2_home": self.home}


@pytest.fixture
def pm2(tmp_path):
    if not os.path.exists(PM2):
        pytest.fail("pm2 is missing: run `make node-tools`")
    home = tmp_path / "pm2"
    home.mkdir()
    yield Pm2(str(home))
    subprocess.run([PM2, "kill"], env=dict(os.environ, PM2_HOME=str(home)), capture_output=True, timeout=60, check=False)


def test_pm2_app_online_then_stopped(pm2, tmp_path):
    port = servers.free_port()
    pm2.start_demo("demo", port, "file:%s" % (tmp_path / "pm2.db"), str(tmp_path / "demo.log"))
    process = pm2.gate_args("demo")
    online = gate(url="http://127.0.0.1:%d/api/health" % port, process=process, wait_timeout=20, consecutive_successes=2)
    assert online["healthy"], online["msg"]
    figures = check_named(online, "process pm2 demo")
    assert figures["online"] == 1 and figures["instances"] == 1 and figures["restarts_during_gate"] == 0
    pm2.run("stop", "demo")
    stopped = gate(process=process, wait_timeout=1)
    assert stopped["failed"] and "process pm2 demo: 0 of 1 instances online (stopped)" in stopped["msg"]
    missing = gate(process=dict(process, pm2="nope"), wait_timeout=0.5)
    assert missing["failed"] and "pm2 has no app named nope" in missing["msg"]


def test_pm2_crash_loop_is_not_healthy(pm2, tmp_path):
    # pm2 restarts an app that exits at once; `pm2 status` shows it online between crashes.
    pm2.start_demo("crashy", servers.free_port(), "file:%s" % (tmp_path / "c.db"), str(tmp_path / "crashy.log"),
                   DEMO_FAULT="crash_on_start")
    result = gate(process=pm2.gate_args("crashy"), consecutive_successes=3, interval=0.3, wait_timeout=4)
    assert result["failed"], result["msg"]
    figures = check_named(result, "process pm2 crashy")
    assert figures["restarts"] >= 1
    assert "restarted" in figures["msg"] or "instances online (" in figures["msg"], figures["msg"]


def test_pm2_daemon_down_is_reported_without_starting_one(tmp_path):
    home = tmp_path / "pm2-idle"
    home.mkdir()
    result = gate(process={"pm2": "demo", "pm2_binary": PM2, "pm2_home": str(home)}, wait_timeout=0.3)
    assert result["failed"] and "the pm2 daemon of PM2_HOME=%s is not running" % home in result["msg"]
    assert os.listdir(str(home)) == []


def test_forbidden_log_line_appearing_mid_gate_fails_at_once(pm2, tmp_path):
    """Runbooks 000/002: a restart under pm2 brings up a build that skips migrations; it still answers 200."""
    port, log, fault_file = servers.free_port(), str(tmp_path / "demo.log"), tmp_path / "fault"
    fault_file.write_text("skip_migrations\n")  # an earlier start skipped them too: that line predates the gate
    pm2.start_demo("demo", port, "file:%s" % (tmp_path / "pm2.db"), log, DEMO_FAULT_FILE=str(fault_file))
    servers.wait_until(lambda: servers.port_open(port), 20, "demo app under pm2", log)
    fault_file.unlink()
    pm2.run("restart", "demo")
    servers.wait_until(lambda: lines_with(log, "starting release") == 2 and servers.port_open(port), 20, "restart", log)
    assert lines_with(log, "skipping migration") == 1
    health_requests = lines_with(log, "GET /api/health")
    outcome = {}

    def run_the_gate():
        outcome.update(gate(url="http://127.0.0.1:%d/api/health" % port, process=pm2.gate_args("demo"), log_file=log,
                            forbidden_patterns=[SKIPPING], consecutive_successes=1000, wait_timeout=120))

    watcher = threading.Thread(target=run_the_gate)
    watcher.start()
    try:
        # Mid-gate: once the gate has polled three times, restart into the build that skips migrations.
        servers.wait_until(lambda: lines_with(log, "GET /api/health") >= health_requests + 3, 60, "gate polls", log)
        fault_file.write_text("skip_migrations\n")
        pm2.run("restart", "demo")
    finally:
        watcher.join()
    assert outcome["failed"] and outcome["attempts"] >= 3
    assert "stopped after %d poll(s), as waiting cannot undo it" % outcome["attempts"] in outcome["msg"]
    logged = check_named(outcome, "log_file")
    assert len(logged["matches"]) == 1 and "skipping migration (DEMO_FAULT=skip_migrations)" in logged["matches"][0]["line"]
    assert lines_with(log, "skipping migration") == 2  # the line from before the gate was not counted


# --- systemd ---------------------------------------------------------------------------------------

def test_systemd_unit_that_is_not_active():
    result = gate(process={"systemd": "saferelease-no-such-unit.service"}, wait_timeout=0.3)
    assert result["failed"] and "process systemd saferelease-no-such-unit.service: " in result["msg"]
    assert check_named(result, "process systemd")["state"] != "active"


# --- canary through real nginx -------------------------------------------------------------------

SITE_PLAY = """\
- name: Route the demo through nginx, half to each colour
  hosts: all
  gather_facts: false
  roles:
    - role: saferelease.core.nginx_site
"""


def _send(port, count, start):
    """``count`` GETs through nginx, each with its own user id so the split spreads them over both pools."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for index in range(start, start + count):
            conn.request("GET", "/api/version?uid=user-%05d" % index)
            conn.getresponse().read()
    finally:
        conn.close()
    return start + count


def _lines(path):
    return lines_with(path, '"pool"') if os.path.exists(path) else 0


def test_canary_analysis_from_the_nginx_access_log(nginx_server, demo_app_factory, tmp_path):
    fault_file = tmp_path / "green-fault"
    blue = demo_app_factory(color="blue")
    green = demo_app_factory(color="green", environ={"DEMO_FAULT_FILE": str(fault_file)})
    port, access_log = servers.free_port(), os.path.join(nginx_server.prefix, "logs", "demo_split.log")
    playbook = tmp_path / "site.yml"
    playbook.write_text(SITE_PLAY)
    site = run_playbook(str(playbook), extra_vars=dict(
        nginx_site_name="demo", nginx_site_conf_dir=nginx_server.conf_dir, nginx_site_listen="127.0.0.1:%d" % port,
        nginx_site_access_log=access_log, nginx_site_nginx_conf=nginx_server.main_conf,
        nginx_site_nginx_prefix=nginx_server.prefix, nginx_site_reload_timeout=5,
        nginx_site_pools={"blue": ["127.0.0.1:%d" % blue.port], "green": ["127.0.0.1:%d" % green.port]},
        nginx_site_weights={"blue": 50, "green": 50}, nginx_site_canary="green", nginx_site_split_key="$arg_uid"))
    assert site.returncode == 0, site.stdout[-2000:]
    canary = {"access_log": access_log, "canary_pool": "green", "baseline_pool": "blue", "window": 600,
              "min_requests": 50, "max_latency_ratio": 3, "latency_floor_ms": 50}
    sent = 0

    def phase():
        """Epoch seconds after every earlier request was logged: the start of the next phase's window."""
        servers.wait_until(lambda: _lines(access_log) == sent, 10, "access log lines", access_log)
        return time.time()

    # Too little traffic: a verdict on 10 requests per pool would be a guess.
    since = phase()
    sent = _send(port, 20, sent)
    thin = gate(canary=dict(canary, since=since), fail_on_unhealthy=False)
    assert thin["verdict"] == "inconclusive" and not thin["healthy"]
    assert "too little traffic" in thin["msg"] and "(min_requests 50)" in thin["msg"]
    assert thin["msg"].endswith("let more traffic reach both pools (or widen the window) and analyse again before going on.")
    failing_task = gate(canary=dict(canary, since=since))
    assert failing_task["failed"] and failing_task["verdict"] == "inconclusive"

    # A good canary: both pools answer alike.
    since = phase()
    sent = _send(port, 400, sent)
    good = gate(canary=dict(canary, since=since))
    assert good["healthy"] and good["verdict"] == "pass", good["msg"]
    figures = good["metrics"]["canary"]
    assert figures["canary"]["requests"] + figures["baseline"]["requests"] == 400
    assert figures["canary"]["requests"] >= 50 and figures["canary"]["errors"] == 0
    assert good["msg"].startswith("healthy: canary green 0.00% errors, p95 ")

    # A bad canary: green now fails one request in five.
    fault_file.write_text("error_rate:0.2\n")
    since = phase()
    sent = _send(port, 400, sent)
    bad = gate(canary=dict(canary, since=since), fail_on_unhealthy=False)
    assert bad["verdict"] == "fail", bad["msg"]
    assert 0.15 <= bad["metrics"]["canary"]["canary"]["error_rate"] <= 0.25
    assert bad["metrics"]["canary"]["baseline"]["errors"] == 0
    assert "canary green error rate" in bad["msg"] and "exceeds baseline blue 0.00%" in bad["msg"]


def test_canary_access_log_missing(tmp_path):
    result = gate(canary={"access_log": str(tmp_path / "none.log"), "canary_pool": "green", "baseline_pool": "blue"})
    assert result["failed"] and "cannot read access log %s: No such file or directory" % (tmp_path / "none.log") in result["msg"]


# --- settings and check mode -------------------------------------------------------------------------

def test_settings_are_refused_with_the_option_to_fix():
    assert "nothing to check" in gate()["msg"]
    bad = gate(url="http://127.0.0.1:1/", expect_body="([unclosed")
    assert bad["failed"] and "Invalid regular expression" in bad["msg"]
    zero = gate(url="http://127.0.0.1:1/", interval=0)
    assert zero["failed"] and "interval and timeout must be above 0" in zero["msg"]
    no_db = gate(sql_checks=[{"query": "SELECT 1", "expect": 1}])
    assert no_db["failed"] and "sql_checks need the database" in no_db["msg"]


def test_check_mode_runs_the_checks(demo_app_factory):
    healthy = demo_app_factory()
    result = run_module(MODULE, dict(url=healthy.url + "/api/health"), check=True)
    assert result["healthy"] and not result["changed"]
    broken = demo_app_factory(fault="error500")
    result = run_module(MODULE, dict(url=broken.url + "/api/health", wait_timeout=0.3), check=True)
    assert result["failed"] and "status 500" in result["msg"]
