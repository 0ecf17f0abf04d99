"""The demo app, run for real: subprocesses on free loopback ports over SQLite files in tmp dirs."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import uuid

import pytest

from tests.harness.collection import REPO_ROOT

APP_DIR = os.path.join(REPO_ROOT, "examples", "demo_app")
PRISMA_DIR = os.path.join(APP_DIR, "prisma")
MIGRATIONS_DIR = os.path.join(PRISMA_DIR, "migrations")
INIT = "20250101000000_init"
ADD_FILE = "20250821015630_add_shipment_file_field"


def _import_demo_config():
    # The app lives outside the collection's import path; importing it must not leave __pycache__
    # inside examples/, which would then ship in the collection tarball.
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    sys.path.insert(0, APP_DIR)
    try:
        from demo_app import config as demo_config
    finally:
        sys.path.remove(APP_DIR)
        sys.dont_write_bytecode = saved
    return demo_config


config = _import_demo_config()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(**overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_") and k != "DATABASE_URL"}
    # No bytecode: __pycache__ inside examples/ would end up in the collection tarball.
    env.update(PYTHONPATH=APP_DIR, PYTHONDONTWRITEBYTECODE="1")
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "demo_app", *args], env=app_env(**env),
                          capture_output=True, text=True, timeout=30, check=False)


def prisma_dir_with(tmp_path, names):
    """A prisma folder holding only the given migrations: a database 'built by an older release'."""
    target = tmp_path / ("prisma-" + "-".join(n.split("_")[0] for n in names))
    for name in names:
        shutil.copytree(os.path.join(MIGRATIONS_DIR, name), target / "migrations" / name)
    shutil.copy(os.path.join(MIGRATIONS_DIR, "migration_lock.toml"), target / "migrations")
    return target


class App:
    def __init__(self, proc, port, log_path, tls=False):
        self.proc, self.port, self.log_path, self.tls = proc, port, log_path, tls

    def log(self):
        return self.log_path.read_text()

    def request(self, path, method="GET", body=None):
        """(status, headers, parsed body, seconds)."""
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the test's own throwaway self-signed certificate
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        started = time.monotonic()
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            elapsed = time.monotonic() - started
        finally:
            conn.close()
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, dict(response.getheaders()), json.loads(raw) if is_json else raw.decode(), elapsed

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_app(tmp_path):
    started = []

    def start(*extra_args, wait=True, tls=False, **env):
        port = free_port()
        log_path = tmp_path / ("app-%d.log" % port)
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1", "--port", str(port), *extra_args],
                env=app_env(**env), stdout=log_file, stderr=subprocess.STDOUT)
        app = App(proc, port, log_path, tls)
        started.append(app)
        if wait:
            wait_listening(app)
        return app

    yield start
    for app in started:
        app.stop()


def wait_listening(app, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise AssertionError("demo app exited with %s:\n%s" % (app.proc.returncode, app.log()))
        try:
            socket.create_connection(("127.0.0.1", app.port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("demo app did not listen within %ss:\n%s" % (timeout, app.log()))


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "dev.db"
    result = cli("migrate", DATABASE_URL="file:%s" % path)
    assert result.returncode == 0, result.stdout + result.stderr
    return path


@pytest.fixture(scope="module")
def init_only_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("old")
    prisma = prisma_dir_with(tmp, [INIT])
    path = tmp / "old.db"
    result = cli("migrate", DATABASE_URL="file:%s" % path, DEMO_PRISMA_DIR=str(prisma))
    assert result.returncode == 0, result.stdout + result.stderr
    return path


# --- migrate / status ---------------------------------------------------------------------------

def test_migrate_books_each_migration_as_prisma_migrate_deploy_does(migrated_db):
    conn = sqlite3.connect(str(migrated_db))
    try:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = '_prisma_migrations'").fetchone()[0]
        rows = conn.execute("SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,"
                            " applied_steps_count FROM _prisma_migrations ORDER BY started_at").fetchall()
        columns = {r[1] for r in conn.execute('PRAGMA table_info("Shipment")')}
    finally:
        conn.close()
    assert '"applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0' in ddl
    assert [r[3] for r in rows] == [INIT, ADD_FILE]
    for row_id, checksum, finished_at, name, logs, rolled_back_at, started_at, steps in rows:
        with open(os.path.join(MIGRATIONS_DIR, name, "migration.sql"), "rb") as handle:
            assert checksum == hashlib.sha256(handle.read()).hexdigest()
        assert uuid.UUID(row_id).version == 4
        assert steps == 1 and logs is None and rolled_back_at is None
        # Prisma stores SQLite datetimes as epoch milliseconds.
        assert isinstance(started_at, int) and isinstance(finished_at, int)
        assert abs(started_at / 1000 - time.time()) < 600 and finished_at >= started_at
    assert "shipmentFile" in columns


def test_migrate_again_changes_nothing_and_status_lists_applied(migrated_db):
    again = cli("migrate", DATABASE_URL="file:%s" % migrated_db)
    assert again.returncode == 0 and "No pending migrations to apply." in again.stdout
    status = cli("status", DATABASE_URL="file:%s" % migrated_db)
    assert json.loads(status.stdout) == {"applied": [INIT, ADD_FILE], "failed": [], "pending": []}


def test_migrate_refuses_migrations_written_for_another_engine(tmp_path):
    result = cli("migrate", DATABASE_URL="file:%s" % (tmp_path / "x.db"),
                 DEMO_PRISMA_DIR=os.path.join(APP_DIR, "prisma-mysql"))
    assert result.returncode == 1 and "migration_lock.toml" in result.stdout


def test_failed_migration_keeps_its_row_with_logs_and_blocks_the_next_deploy(tmp_path):
    prisma = prisma_dir_with(tmp_path, [INIT])
    broken = prisma / "migrations" / "20250901000000_broken"
    broken.mkdir()
    (broken / "migration.sql").write_text('ALTER TABLE "Nope" ADD COLUMN "x" TEXT;\n')
    url = "file:%s" % (tmp_path / "f.db")
    first = cli("migrate", DATABASE_URL=url, DEMO_PRISMA_DIR=str(prisma))
    assert first.returncode == 1 and "20250901000000_broken" in first.stdout
    conn = sqlite3.connect(str(tmp_path / "f.db"))
    finished_at, logs, steps = conn.execute("SELECT finished_at, logs, applied_steps_count FROM _prisma_migrations"
                                            " WHERE migration_name = '20250901000000_broken'").fetchone()
    conn.close()
    assert finished_at is None and "Nope" in logs and steps == 0
    second = cli("migrate", DATABASE_URL=url, DEMO_PRISMA_DIR=str(prisma))
    assert second.returncode == 1 and "P3009" in second.stdout


# --- health, version, data ----------------------------------------------------------------------

@pytest.mark.parametrize("release,version", [("v1", "1.0.0"), ("v2", "2.0.0")])
def test_healthy_release_reports_its_version(start_app, migrated_db, release, version):
    app = start_app(DATABASE_URL="file:%s" % migrated_db, DEMO_RELEASE=release, DEMO_COLOR="blue")
    status, headers, body, _unused = app.request("/api/health")
    assert status == 200
    assert body == {"status": "ok", "release": release, "version": version, "color": "blue",
                    "database": "ok", "schema": "ok"}
    assert headers["X-Demo-Release"] == release and headers["X-Demo-Color"] == "blue"
    assert app.request("/api/version")[2] == {"release": release, "version": version, "color": "blue"}


def test_v2_on_a_database_without_its_column_is_unhealthy_and_v1_is_not(start_app, init_only_db):
    url = "file:%s" % init_only_db
    status, _unused, body, _unused = start_app(DATABASE_URL=url, DEMO_RELEASE="v2").request("/api/health")
    assert status == 503
    assert body["status"] == "fail" and body["database"] == "ok"
    assert body["schema"] == "missing column Shipment.shipmentFile"
    assert start_app(DATABASE_URL=url, DEMO_RELEASE="v1").request("/api/health")[0] == 200


def test_missing_database_file_is_unhealthy_and_not_created(start_app, tmp_path):
    missing = tmp_path / "nothing.db"
    status, _unused, body, _unused = start_app(DATABASE_URL="file:%s" % missing).request("/api/health")
    assert status == 503 and body["database"].startswith("error:")
    assert not missing.exists()


def test_shipments_round_trip(start_app, tmp_path):
    url = "file:%s" % (tmp_path / "s.db")
    assert cli("migrate", DATABASE_URL=url).returncode == 0
    app = start_app(DATABASE_URL=url, DEMO_RELEASE="v2")
    status, _unused, body, _unused = app.request("/api/shipments", "POST", {"trackingNumber": "TRK-1", "shipmentFile": "a.pdf"})
    assert status == 201 and body["shipment"]["id"] == 1 and body["shipment"]["shipmentFile"] == "a.pdf"
    assert app.request("/api/shipments", "POST", {"trackingNumber": "TRK-1"})[0] == 409
    assert app.request("/api/shipments", "POST", {})[0] == 400
    status, _unused, body, _unused = app.request("/api/shipments")
    assert status == 200 and [s["trackingNumber"] for s in body["shipments"]] == ["TRK-1"]
    assert body["shipments"][0]["createdAt"].startswith(time.strftime("%Y-", time.gmtime()))


def test_env_file_supplies_settings_and_the_environment_wins(start_app, tmp_path):
    prisma = prisma_dir_with(tmp_path, [INIT, ADD_FILE])
    assert cli("migrate", DATABASE_URL="file:./dev.db", DEMO_PRISMA_DIR=str(prisma)).returncode == 0
    assert (prisma / "dev.db").exists()  # file: URLs resolve against the prisma folder, as in Prisma
    env_file = tmp_path / ".env"
    env_file.write_text('# demo\nDATABASE_URL="file:./dev.db"\nDEMO_RELEASE=\'v2\'\nDEMO_COLOR=green\n')
    app = start_app(DEMO_ENV_FILE=str(env_file), DEMO_PRISMA_DIR=str(prisma), DEMO_COLOR="blue")
    status, headers, body, _unused = app.request("/api/health")
    assert status == 200 and body["release"] == "v2" and headers["X-Demo-Color"] == "blue"


# --- faults -------------------------------------------------------------------------------------

def test_error500_fails_every_api_answer(start_app, migrated_db):
    app = start_app(DATABASE_URL="file:%s" % migrated_db, DEMO_FAULT="error500")
    assert app.request("/api/health")[0] == 500
    assert app.request("/api/version")[0] == 500
    status, headers, _unused, _unused = app.request("/")
    assert status == 200 and headers["X-Demo-Release"] == "v1"


def test_error_rate_fails_exactly_one_request_in_twenty(start_app, migrated_db):
    app = start_app(DATABASE_URL="file:%s" % migrated_db, DEMO_FAULT="error_rate:0.05")
    statuses = [app.request("/api/version")[0] for _unused in range(20)]
    assert statuses.count(500) == 1 and statuses.count(200) == 19


def test_flap_fails_the_first_health_checks_then_recovers(start_app, migrated_db):
    app = start_app(DATABASE_URL="file:%s" % migrated_db, DEMO_FAULT="flap:3")
    assert [app.request("/api/health")[0] for _unused in range(5)] == [503, 503, 503, 200, 200]


def test_slow_delays_every_answer(start_app, migrated_db):
    app = start_app(DATABASE_URL="file:%s" % migrated_db, DEMO_FAULT="slow:300")
    status, _unused, _unused, elapsed = app.request("/api/version")
    assert status == 200 and elapsed >= 0.3


def test_fault_file_switches_faults_without_a_restart(start_app, migrated_db, tmp_path):
    fault_file = tmp_path / "fault"
    app = start_app(DATABASE_URL="file:%s" % migrated_db, DEMO_FAULT_FILE=str(fault_file))
    assert app.request("/api/health")[0] == 200
    fault_file.write_text("error500\n")
    assert app.request("/api/health")[0] == 500
    fault_file.unlink()
    assert app.request("/api/health")[0] == 200


def test_skip_migrations_logs_the_phrase_and_leaves_a_zero_byte_database(start_app, tmp_path):
    db_path = tmp_path / "empty.db"
    app = start_app(DATABASE_URL="file:%s" % db_path, DEMO_FAULT="skip_migrations", DEMO_MIGRATE_ON_START="1")
    status, _unused, body, _unused = app.request("/api/health")
    assert "skipping migration" in app.log()
    assert db_path.stat().st_size == 0
    assert status == 503 and body["schema"] == "missing table Shipment"


def test_migrate_on_start_migrates_a_normal_release(start_app, tmp_path):
    app = start_app(DATABASE_URL="file:%s" % (tmp_path / "auto.db"), DEMO_MIGRATE_ON_START="1", DEMO_RELEASE="v2")
    assert app.request("/api/health")[0] == 200
    assert "skipping migration" not in app.log()


def test_crash_on_start_exits_1_after_logging(start_app, migrated_db):
    app = start_app(wait=False, DATABASE_URL="file:%s" % migrated_db, DEMO_FAULT="crash_on_start")
    assert app.proc.wait(timeout=10) == 1
    assert "startup error" in app.log()


def test_unknown_fault_stops_the_start(start_app, migrated_db):
    app = start_app(wait=False, DATABASE_URL="file:%s" % migrated_db, DEMO_FAULT="eror500")
    assert app.proc.wait(timeout=10) == 2
    assert "unknown fault" in app.log()


# --- process contract ---------------------------------------------------------------------------

def test_pid_file_is_written_when_listening_and_removed_on_sigterm(start_app, migrated_db, tmp_path):
    pid_file = tmp_path / "app.pid"
    app = start_app("--pid-file", str(pid_file), DATABASE_URL="file:%s" % migrated_db)
    deadline = time.monotonic() + 5
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(pid_file.read_text()) == app.proc.pid
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(timeout=10) == 0
    assert not pid_file.exists()


def test_password_never_reaches_the_log(start_app):
    url = "mysql://app:s3cr%40t-pw@127.0.0.1:1/erp"
    app = start_app(DATABASE_URL=url)
    status, _unused, body, _unused = app.request("/api/health")
    assert status == 503 and body["database"].startswith("error:")
    app.stop()
    log = app.log()
    assert "mysql://app:****@127.0.0.1:1/erp" in log
    assert "s3cr" not in log and "s3cr" not in json.dumps(body)


def test_tls_serves_https(start_app, migrated_db, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    app = start_app("--tls-cert", str(cert), "--tls-key", str(key), tls=True, DATABASE_URL="file:%s" % migrated_db)
    assert app.request("/api/health")[0] == 200
    assert "listening on https://" in app.log()


# --- configuration functions --------------------------------------------------------------------

@pytest.mark.parametrize("url,masked", [
    ("mysql://root:p%40ss@db:3306/erp", "mysql://root:****@db:3306/erp"),
    ("postgresql://u:x@y@h/d?schema=s", "postgresql://u:****@h/d?schema=s"),
    ("mysql://root@db/erp", "mysql://root@db/erp"),
    ("file:./dev.db", "file:./dev.db"),
])
def test_mask_url(url, masked):
    assert config.mask_url(url) == masked


def test_parse_database_urls():
    mysql = config.parse_database_url("mysql://erp%20user:p%40ss%3Aw@10.0.0.5/easy_erp")
    assert (mysql.engine, mysql.host, mysql.port, mysql.user, mysql.password, mysql.database) == \
        ("mysql", "10.0.0.5", 3306, "erp user", "p@ss:w", "easy_erp")
    assert "p@ss" not in repr(mysql)
    pg = config.parse_database_url("postgresql://u:p@h:6543/danci?schema=app")
    assert (pg.engine, pg.port, pg.schema) == ("postgresql", 6543, "app")
    assert config.parse_database_url("postgres://u:p@h/d").schema == "public"
    assert config.parse_database_url("file:./dev.db", "/srv/app/prisma").path == "/srv/app/prisma/dev.db"
    assert config.parse_database_url("file:/data/x.db?connection_limit=1", "/p").path == "/data/x.db"
    with pytest.raises(config.ConfigError):
        config.parse_database_url("sqlserver://h/d")


def test_a_release_ships_its_identity_in_release_env_and_the_environment_still_wins(tmp_path):
    release = tmp_path / "releases" / "v3-bad"
    shutil.copytree(os.path.join(APP_DIR, "demo_app"), str(release / "demo_app"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    (release / "release.env").write_text("DEMO_RELEASE=v3\nDEMO_FAULT=error500\n")
    (tmp_path / ".env").write_text("DATABASE_URL=file:/tmp/x.db\nDEMO_RELEASE=v1\n")
    probe = "from demo_app.config import load_settings as l; s = l(); print(s.release, s.fault)"

    def settings(**extra):
        env = dict(os.environ, PYTHONPATH=str(release), PYTHONDONTWRITEBYTECODE="1", DEMO_ENV_FILE=str(tmp_path / ".env"))
        env.pop("DEMO_RELEASE", None)
        env.update(extra)
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert settings() == ["v3", "error500"]
    assert settings(DEMO_RELEASE="v2", DEMO_FAULT="none") == ["v2", "none"]
