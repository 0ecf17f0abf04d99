"""health_gate through Ansible against the real demo app, real pm2 and real SQLite/MariaDB."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.harness import servers
from tests.harness.ansible_run import run_module
from tests.harness.collection import REPO_ROOT

MODULE = "saferelease.core.health_gate"
PM2 = os.path.join(REPO_ROOT, "tests", "tools", "node_modules", ".bin", "pm2")


def gate(**args):
    args.setdefault("interval", 0.2)
    args.setdefault("wait_timeout", 5)
    return run_module(MODULE, args)


def failed_check(result):
    return [c for c in result["checks"] if not c["passed"]]


def test_healthy_app_passes_with_figures(demo_app):
    result = gate(url=demo_app.url + "/api/health", expect_json={"schema": "ok", "release": "v2"},
                  consecutive_successes=3, samples=100, max_latency_ms=500)
    assert not result["failed"] and result["healthy"] and result["verdict"] == "pass"
    assert result["attempts"] == 3
    assert result["metrics"]["samples"]["requests"] == 100 and result["metrics"]["samples"]["error_rate"] == 0


def test_flapping_app_passes_only_after_it_recovers(demo_app_factory):
    app = demo_app_factory(fault="flap:4")
    result = gate(url=app.url + "/api/health", consecutive_successes=2)
    assert result["healthy"] and result["attempts"] == 6
    strict = demo_app_factory(fault="flap:4")
    result = gate(url=strict.url + "/api/health", consecutive_successes=2, wait_timeout=0.5)
    assert result["failed"] and "status 503" in result["msg"]


def test_always_500_fails_and_names_the_check(demo_app_factory):
    app = demo_app_factory(fault="error500")
    result = gate(url=app.url + "/api/health", wait_timeout=1.5)
    assert result["failed"] and not result["healthy"] and result["verdict"] == "fail"
    assert "http %s/api/health: status 500, expected 200" % app.url in result["msg"]
    assert result["attempts"] >= 5


def test_unhealthy_verdict_without_failing_the_task(demo_app_factory):
    app = demo_app_factory(fault="error500")
    result = gate(url=app.url + "/api/health", wait_timeout=0.5, fail_on_unhealthy=False)
    assert not result["failed"] and not result["healthy"] and result["verdict"] == "fail"


def test_slow_answers_fail_the_timeout_and_the_latency_limit(demo_app_factory):
    app = demo_app_factory(fault="slow:400")
    timed_out = gate(url=app.url + "/api/version", timeout=0.2, wait_timeout=1)
    assert timed_out["failed"] and "no answer within 0.2s" in timed_out["msg"]
    sampled = gate(url=app.url + "/api/version", timeout=2, samples=8, max_latency_ms=200)
    assert sampled["failed"] and "sample p95 latency" in sampled["msg"]
    assert sampled["metrics"]["samples"]["latency_ms"]["p50"] >= 400


def test_connection_refused(unused_port):
    result = gate(url="http://127.0.0.1:%d/api/health" % unused_port, wait_timeout=1)
    assert result["failed"] and "Connection refused" in result["msg"]


def test_wrong_json(demo_app):
    result = gate(url=demo_app.url + "/api/version", expect_json={"release": "v3"}, wait_timeout=0.5)
    assert result["failed"] and "JSON field release is 'v2', expected 'v3'" in result["msg"]


@pytest.fixture
def tls_app(demo_app_factory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return demo_app_factory(serve_args=["--tls-cert", str(cert), "--tls-key", str(key)], scheme="https")


def test_self_signed_tls_is_refused_unless_verification_is_off(tls_app):
    refused = gate(url=tls_app.url + "/api/health", wait_timeout=0.5)
    assert refused["failed"] and "TLS verification failed" in refused["msg"]
    accepted = gate(url=tls_app.url + "/api/health", validate_certs=False)
    assert accepted["healthy"]


def test_forbidden_log_line_appearing_mid_gate_fails_at_once(demo_app, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("WARN skipping migration 0001 (an earlier deploy)\n")
    offset = log.stat().st_size  # what a playbook records before restarting the app

    def write_later():
        time.sleep(3.0)
        with open(str(log), "a") as handle:
            handle.write("INFO boot\nWARN Skipping migration 20250821015630_add_shipment_file_field\n")

    writer = threading.Thread(target=write_later)
    writer.start()
    result = gate(url=demo_app.url + "/api/health", log_file=str(log), log_offset=offset,
                  forbidden_patterns=["(?i)skipping migration"], consecutive_successes=1000, wait_timeout=20)
    writer.join()
    assert result["failed"] and "Skipping migration 20250821015630" in result["msg"]
    assert "(an earlier deploy)" not in result["msg"]
    assert result["elapsed_s"] < 15, "the gate waited for its timeout instead of failing on the log line"


def test_zero_byte_sqlite_database(tmp_path):
    database = tmp_path / "customer_service.db"
    database.write_bytes(b"")
    result = gate(file_min_size=[{"path": str(database), "bytes": 4096}], wait_timeout=0.5)
    assert result["failed"] and "is 0 bytes, expected at least 4096" in result["msg"]


ORPHANS = ('SELECT COUNT(*) FROM "ShipmentItem" i LEFT JOIN "Shipment" s ON s.id = i."shipmentId" '
           'WHERE s.id IS NULL')


def test_orphan_rows_sql_check(sqlite_db, mariadb_db):
    sqlite_db.execute('CREATE TABLE "Shipment" (id INTEGER PRIMARY KEY)')
    sqlite_db.execute('CREATE TABLE "ShipmentItem" (id INTEGER PRIMARY KEY, "shipmentId" INTEGER)')
    sqlite_db.execute('INSERT INTO "Shipment" VALUES (1)')
    sqlite_db.execute('INSERT INTO "ShipmentItem" VALUES (1, 1), (2, 7)')
    check = [{"name": "orphan shipment items", "query": ORPHANS, "expect": 0}]
    result = gate(database_url=sqlite_db.url, sql_checks=check, wait_timeout=0.5)
    assert result["failed"] and "sql orphan shipment items: value 1, expected 0" in result["msg"]
    sqlite_db.execute('DELETE FROM "ShipmentItem" WHERE id = 2')
    assert gate(database_url=sqlite_db.url, sql_checks=check)["healthy"]
    # The same check on MariaDB, whose COUNT(*) arrives as an integer of another type.
    mariadb_db.execute("CREATE TABLE Shipment (id INT PRIMARY KEY)")
    mariadb_db.execute("CREATE TABLE ShipmentItem (id INT PRIMARY KEY, shipmentId INT)")
    mariadb_db.execute("INSERT INTO ShipmentItem VALUES (1, 9)")
    result = gate(database_url=mariadb_db.url, sql_checks=[{"query": ORPHANS.replace('"', ''), "expect": 0}],
                  wait_timeout=0.5)
    assert result["failed"] and "value 1, expected 0" in result["msg"]


def _write_access_log(path, pools):
    now = time.time()
    with open(str(path), "w") as handle:
        for pool, count, status, seconds in pools:
            for index in range(count):
                handle.write(json.dumps(dict(time="", msec=round(now - 60 + index * 0.01, 3), app="demo", pool=pool,
                                             upstream_addr="127.0.0.1:1", status=status, upstream_status=str(status),
                                             request_time=seconds, upstream_response_time=str(seconds),
                                             method="GET", uri="/", split_key="k%d" % index)) + "\n")


@pytest.mark.parametrize("pools, verdict, fragment", [
    ([("blue", 900, 200, 0.01), ("green", 100, 200, 0.011)], "pass", None),
    ([("blue", 900, 200, 0.01), ("green", 90, 200, 0.01), ("green", 10, 502, 0.01)], "fail", "error rate 10.00%"),
    ([("blue", 900, 200, 0.01), ("green", 12, 200, 0.01)], "inconclusive", "green had 12 requests"),
])
def test_canary_analysis_from_the_access_log(tmp_path, pools, verdict, fragment):
    log = tmp_path / "demo_split.log"
    _write_access_log(log, pools)
    canary = {"access_log": str(log), "canary_pool": "green", "baseline_pool": "blue", "window": 300,
              "min_requests": 50}
    result = gate(canary=canary, fail_on_unhealthy=False)
    assert result["verdict"] == verdict and result["healthy"] == (verdict == "pass")
    assert result["metrics"]["canary"]["canary"]["requests"] == sum(p[1] for p in pools if p[0] == "green")
    if fragment:
        assert fragment in result["msg"]


@pytest.fixture
def pm2_home(tmp_path):
    if not os.path.exists(PM2):
        pytest.fail("pm2 is missing: run `make node-tools`")
    home = tmp_path / "pm2"
    home.mkdir()
    yield str(home)
    subprocess.run([PM2, "kill"], env=dict(os.environ, PM2_HOME=str(home)), capture_output=True, timeout=60, check=False)


def test_pm2_app_online_then_stopped(pm2_home, sqlite_db, tmp_path):
    env = dict(os.environ, PM2_HOME=pm2_home, DATABASE_URL="file:" + str(tmp_path / "pm2.db"),
               PYTHONPATH=os.path.join(REPO_ROOT, "examples", "demo_app"))
    port = servers.free_port()
    subprocess.run([sys.executable, "-m", "demo_app", "migrate"], env=env, check=True, capture_output=True)
    started = subprocess.run([PM2, "start", sys.executable, "--name", "demo", "--interpreter", "none", "--",
                              "-m", "demo_app", "serve", "--port", str(port)], env=env, capture_output=True, text=True,
                             timeout=60, check=False)
    assert started.returncode == 0, started.stderr
    with open(os.path.join(pm2_home, "pm2.pid")) as handle:
        servers.record_pid(int(handle.read()), "PM2 %s" % pm2_home)
    process = {"pm2": "demo", "pm2_binary": PM2, "pm2_home": pm2_home}
    online = gate(url="http://127.0.0.1:%d/api/health" % port, process=process, wait_timeout=20)
    assert online["healthy"], online["msg"]
    assert [c for c in online["checks"] if c["name"] == "process pm2 demo"][0]["online"] == 1
    subprocess.run([PM2, "stop", "demo"], env=env, capture_output=True, timeout=60, check=True)
    stopped = gate(process=process, wait_timeout=1)
    assert stopped["failed"] and "0 of 1 instances online (stopped)" in stopped["msg"]
    missing = gate(process=dict(process, pm2="nope"), wait_timeout=0.5)
    assert missing["failed"] and "pm2 has no app named nope" in missing["msg"]


def test_nothing_to_check_and_bad_regex_are_refused():
    assert "Nothing to check" in gate()["msg"]
    bad = gate(url="http://127.0.0.1:1/", expect_body="([unclosed")
    assert bad["failed"] and "Invalid regular expression" in bad["msg"]


def test_check_mode_runs_the_checks(demo_app):
    result = run_module(MODULE, dict(url=demo_app.url + "/api/health"), check=True)
    assert result["healthy"] and not result["changed"]
