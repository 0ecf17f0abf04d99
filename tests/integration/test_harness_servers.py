"""The harness starts real servers on loopback and stops them."""
import os
import urllib.request

from tests.harness import servers
from tests.harness.ansible_run import run_module


def test_mariadb_is_real_and_each_test_has_its_own_database(mariadb_db):
    (version,), = mariadb_db.execute("SELECT VERSION()")
    assert "MariaDB" in version
    (current,), = mariadb_db.execute("SELECT DATABASE()")
    assert current == mariadb_db.name
    assert mariadb_db.server.port not in (3306,) and mariadb_db.server.host == "127.0.0.1"


def test_postgres_is_real(postgres_db):
    (version,), = postgres_db.execute("SHOW server_version")
    assert version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 12
    (current,), = postgres_db.execute("SELECT current_database()")
    assert current == postgres_db.name
    assert postgres_db.server.port != 5432


def test_sqlite_file_lives_in_the_test_directory(sqlite_db, tmp_path):
    sqlite_db.execute("CREATE TABLE t (x INTEGER)")
    assert os.path.dirname(sqlite_db.path) == str(tmp_path) and os.path.getsize(sqlite_db.path) > 0


def test_nginx_proxies_to_the_demo_app(nginx_server, demo_app):
    with open(os.path.join(nginx_server.conf_dir, "demo.conf"), "w") as handle:
        port = servers.free_port()
        handle.write("server { listen 127.0.0.1:%d; location / { proxy_pass %s; } }\n" % (port, demo_app.url))
    nginx_server.reload()
    servers.wait_until(lambda: servers.port_open(port), 10, "the reloaded nginx")
    with urllib.request.urlopen("http://127.0.0.1:%d/api/version" % port, timeout=5) as answer:
        assert answer.status == 200
        assert b'"release": "v2"' in answer.read().replace(b'":"', b'": "')
        assert answer.headers["X-Demo-Release"] == "v2"


def test_demo_app_reports_health_from_its_database(demo_app_factory):
    healthy = demo_app_factory()
    assert healthy.get("/api/health")[0] == 200
    unmigrated = demo_app_factory(migrate=False)
    status, body = unmigrated.get("/api/health")
    assert status == 503 and "fail" in body


def test_stopped_server_leaves_no_process(tmp_path):
    server = servers.NginxServer(str(tmp_path)).start()
    pid = server.pid
    assert servers.pid_alive(pid)
    server.stop()
    assert not servers.pid_alive(pid)
    assert all(p != pid for p, _unused in servers.leaked_processes())


def test_run_module_goes_through_ansible(tmp_path):
    target = tmp_path / "probe.txt"
    result = run_module("ansible.builtin.copy", dict(content="hi\n", dest=str(target)), diff=True)
    assert result["changed"] and target.read_text() == "hi\n"
    assert "diff" in result
    failed = run_module("ansible.builtin.stat", dict(bogus=1))
    assert failed["failed"] and "path" in failed["msg"]
