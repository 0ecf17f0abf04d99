"""pytest fixtures: session-scoped servers, a fresh database per test, demo apps and nginx.

Servers start lazily (a test that needs no MariaDB never starts one) and stop at the end of
the session, also after failures or Ctrl-C, through pytest's fixture finalisation.
"""
import http.server
import json
import os
import sqlite3
import threading
import uuid

import pytest

from tests.harness.colours import ColourSite
from tests.harness.servers import DemoApp, MariaDBServer, NginxServer, PostgresServer, free_port
from tests.harness.site import DATABASES, Site


class ServerDatabase(object):
    """One database on a harness server: ``url`` in Prisma form and ``connect()`` for a DB-API connection."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.engine = server.engine
        self.url = server.url(name)

    def connect(self):
        return self.server.connect(self.name)

    def execute(self, statement, params=None):
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(statement, params) if params is not None else cur.execute(statement)
            rows = cur.fetchall() if cur.description else None
            cur.close()
            return rows
        finally:
            conn.close()


class SqliteDatabase(object):
    """A SQLite file in the test's temporary directory; ``url`` is ``file:<absolute path>``."""

    engine = "sqlite"

    def __init__(self, path):
        self.path = str(path)
        self.name = os.path.basename(self.path)
        self.url = "file:" + self.path

    def connect(self):
        return sqlite3.connect(self.path, isolation_level=None)

    def execute(self, statement, params=None):
        conn = self.connect()
        try:
            cur = conn.execute(statement, params or ())
            return cur.fetchall() if cur.description else None
        finally:
            conn.close()


def _unique_name(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:12])


@pytest.fixture(scope="session")
def mariadb_server():
    server = MariaDBServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def mariadb_db(mariadb_server):
    name = _unique_name("t")
    mariadb_server.create_database(name)
    yield ServerDatabase(mariadb_server, name)
    mariadb_server.drop_database(name)


@pytest.fixture
def postgres_db(postgres_server):
    name = _unique_name("t")
    postgres_server.create_database(name)
    yield ServerDatabase(postgres_server, name)
    postgres_server.drop_database(name)


@pytest.fixture
def sqlite_db(tmp_path):
    """An empty SQLite database file, as an app's freshly created ``dev.db`` would be."""
    database = SqliteDatabase(tmp_path / "dev.db")
    sqlite3.connect(database.path).close()
    open(database.path, "ab").close()
    return database


@pytest.fixture
def nginx_server(tmp_path_factory):
    """A fresh nginx per test (it starts in milliseconds); put ``*.conf`` into ``conf_dir`` and ``reload()``."""
    server = NginxServer(str(tmp_path_factory.getbasetemp()))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def demo_app_factory(tmp_path_factory):
    """Start demo apps: ``demo_app_factory(database_url=None, release='v2', color=None, fault=None, migrate=True)``
    (plus ``environ``, ``port``, ``serve_args`` such as TLS options and ``scheme``).

    Without a ``database_url`` each app gets its own migrated SQLite database.
    """
    started = []

    def start(database_url=None, release="v2", color=None, fault=None, migrate=True, environ=None, port=None,
              serve_args=(), scheme="http"):
        if database_url is None:
            database_url = "file:%s" % tmp_path_factory.mktemp("demo-db").joinpath("dev.db")
        app = DemoApp(database_url, release=release, color=color, fault=fault, environ=environ,
                      base=str(tmp_path_factory.getbasetemp()), port=port, serve_args=serve_args, scheme=scheme)
        started.append(app)
        if migrate:
            app.migrate()
        return app.start()

    try:
        yield start
    finally:
        for app in started:
            app.stop()


@pytest.fixture
def demo_app(demo_app_factory):
    """Release v2 of the demo app on a migrated SQLite database."""
    return demo_app_factory()


@pytest.fixture
def unused_port():
    return free_port()


@pytest.fixture
def site_factory(request, tmp_path):
    """Deploy the demo app as a stack would: ``site_factory('sqlite' | 'mysql' | 'postgresql')`` -> Site."""
    sites = []

    def build(engine):
        database = request.getfixturevalue(DATABASES[engine]) if DATABASES[engine] else None
        site = Site(str(tmp_path / ("site-%d" % len(sites))), engine, database)
        sites.append(site)
        return site.deploy()

    yield build
    for site in sites:
        site.stop()


class WebhookReceiver(object):
    """A real HTTP endpoint on 127.0.0.1 that keeps every JSON body POSTed to it (the notification webhook)."""

    def __init__(self):
        self.events = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.events.append(json.loads(self.rfile.read(length) or b"null"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of(self, event):
        return [e for e in self.events if e.get("event") == event]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def colour_site(nginx_server, tmp_path):
    """The demo app for blue-green behind its own nginx (tests/harness/colours.py); colours stop at the end."""
    site = ColourSite(str(tmp_path / "site"), nginx_server)
    yield site
    site.stop()


@pytest.fixture
def instance_fleet(request, nginx_server, tmp_path):
    """Demo-app instances behind their own nginx (tests/harness/instances.py): three, or as many as an indirect
    parametrization asks for; they stop at the end."""
    from tests.harness.instances import InstanceFleet

    fleet = InstanceFleet(str(tmp_path / "fleet"), nginx_server, count=getattr(request, "param", 3))
    yield fleet
    fleet.stop()
