"""A demo-app deployment laid out as the stacks deploy theirs, for playbook tests.

``base/releases/<name>``, ``base/current`` (link), ``current/.env``, ``base/run/demo.pid`` and
``base/state/``; an inventory file pointing the app role at it; helpers to break it the ways
the runbooks describe.
"""
import json
import os
import shutil
import subprocess
import sys

from tests.harness import servers
from tests.harness.ansible_run import run_playbook, write_localhost_inventory
from tests.harness.collection import REPO_ROOT

SHIPMENT_FILE = "20250821015630_add_shipment_file_field"
PRISMA_DIRS = {"sqlite": "prisma", "mysql": "prisma-mysql", "postgresql": "prisma-postgresql"}
DATABASES = {"sqlite": None, "mysql": "mariadb_db", "postgresql": "postgres_db"}


def unpack_demo_app(path, settings):
    """The demo app copied to ``path`` as a release, its identity (``settings``) in release.env."""
    shutil.copytree(os.path.join(REPO_ROOT, "examples", "demo_app"), path, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    with open(os.path.join(path, "release.env"), "w") as handle:
        handle.write("".join("%s=%s\n" % item for item in settings.items()))
    return path


def release_settings(release, fault=None):
    return dict(DEMO_RELEASE=release, **({"DEMO_FAULT": fault} if fault else {}))


class Site(object):
    """The demo app deployed as a stack would be: releases/, current, .env, run/ and state/."""

    def __init__(self, base, engine, database):
        self.base = base
        self.engine = engine
        self.database = database
        self.current = os.path.join(base, "current")
        self.prisma_dir = os.path.join(self.current, PRISMA_DIRS[engine])
        self.env_file = os.path.join(self.current, ".env")
        self.pid_file = os.path.join(base, "run", "demo.pid")
        self.port = servers.free_port()
        # The SQLite file lives outside the releases, as a stack keeps its data: a release switch
        # must not switch databases.
        self.sqlite_path = os.path.join(base, "data", "dev.db")
        self.url = database.url if database else "file:" + self.sqlite_path

    def deploy(self):
        release = unpack_demo_app(os.path.join(self.base, "releases", "initial"), release_settings("v2"))
        os.symlink(release, self.current)
        os.makedirs(os.path.join(self.base, "run"))
        os.makedirs(os.path.join(self.base, "data"))
        os.makedirs(os.path.join(self.base, "state"))
        with open(os.path.join(self.base, "state", "releases.json"), "w") as handle:
            json.dump(dict(stack=["initial"], events=[]), handle)
        with os.fdopen(os.open(self.env_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write('DATABASE_URL="%s"\n' % self.url)
        self.demo_app("migrate")
        return self

    def environment(self):
        environ = dict(os.environ, DEMO_ENV_FILE=self.env_file, DEMO_PRISMA_DIR=self.prisma_dir, PYTHONPATH=self.current)
        environ.pop("DEMO_RELEASE", None)
        return environ

    def demo_app(self, *args):
        done = subprocess.run([sys.executable, "-m", "demo_app"] + list(args), cwd=self.current, env=self.environment(),
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def status(self):
        return json.loads(self.demo_app("status"))

    def sql(self, statement):
        if self.database is None:
            import sqlite3
            conn = sqlite3.connect(self.sqlite_path, isolation_level=None)
            try:
                return conn.execute(statement).fetchall()
            finally:
                conn.close()
        return self.database.execute(statement)

    def forget_record(self):
        """Runbook 000's conflict: the column exists, its migration record does not."""
        self.sql("DELETE FROM _prisma_migrations WHERE migration_name = '%s'" % SHIPMENT_FILE)

    def drop_column(self):
        quote = "`" if self.engine == "mysql" else '"'
        self.sql("ALTER TABLE {q}Shipment{q} DROP COLUMN {q}shipmentFile{q}".format(q=quote))

    def start(self):
        command = [sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--pid-file", self.pid_file]
        process = subprocess.Popen(command, cwd=self.current, env=self.environment(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        servers.record_pid(process.pid, "demo_app %s" % self.base)
        # The app writes its pid file just after it starts listening: wait for both.
        servers.wait_until(lambda: servers.port_open(self.port) and os.path.exists(self.pid_file), 30, "demo app",
                           process=process)
        return self

    def app_pid(self):
        with open(self.pid_file) as handle:
            return int(handle.read().strip())

    def stop(self):
        if os.path.exists(self.pid_file):
            servers.terminate(self.app_pid())

    def inventory(self, **overrides):
        host = dict(ansible_connection="local", ansible_python_interpreter=sys.executable, app_stack="demo",
                    app_base_dir=self.base, app_port=self.port, app_prisma_dir=self.prisma_dir,
                    app_database_url="",
                    app_service_command=[sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1",
                                         "--port", str(self.port)],
                    app_service_environment=dict(DEMO_ENV_FILE=self.env_file, DEMO_PRISMA_DIR=self.prisma_dir,
                                                 PYTHONPATH=self.current),
                    demo_source_dir=REPO_ROOT, rollback_gate_wait_timeout=10, rollback_gate_interval=0.5,
                    safe_sync_health_interval=0.5)
        host.update(overrides)
        return write_localhost_inventory(self.base, host)

    def play(self, playbook, check=False, diff=False, extra_vars=None, **overrides):
        """Run ``playbooks/<playbook>.yml`` against this site; ``overrides`` become host variables."""
        return run_playbook(os.path.join(REPO_ROOT, "playbooks", playbook + ".yml"), inventory=self.inventory(**overrides),
                            check=check, diff=diff, extra_vars=extra_vars)

    def release(self, name, settings=None, migrations=None):
        """Deploy a new release through examples/demo-release.yml (the release role) and start it."""
        run = run_playbook(os.path.join(REPO_ROOT, "examples", "demo-release.yml"), inventory=self.inventory(),
                           extra_vars=dict(target_hosts="all", demo_release_name=name,
                                           demo_release_settings=settings or {"DEMO_RELEASE": "v2"},
                                           demo_release_migrations=migrations or {}))
        assert run.ok, run
        return self

    def stage(self, name, settings=None, files=None):
        """A build of the demo app unpacked on the host, as a release pipeline leaves it: ``base/staging/<name>``
        with its identity in release.env and ``files`` ({relative path: text}) added."""
        staged = unpack_demo_app(os.path.join(self.base, "staging", name), settings or release_settings("v2"))
        for relative, text in (files or {}).items():
            with open(os.path.join(staged, relative), "w") as handle:
                handle.write(text)
        return staged

    def set_env(self, key, value):
        """Add a setting to the shared .env (carried from release to release)."""
        with open(self.env_file, "a") as handle:
            handle.write("%s=%s\n" % (key, value))

    def health(self):
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % self.port, timeout=5) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
        except OSError as error:
            return None, str(error)

    def current_release(self):
        return os.path.basename(os.path.realpath(self.current))

    def saved_rows(self):
        state = os.path.join(self.base, "state")
        return [f for f in os.listdir(state) if f.startswith("prisma-migrations-")] if os.path.isdir(state) else []

    def audit(self):
        with open(os.path.join(self.base, "state", "audit.jsonl")) as handle:
            return [json.loads(line) for line in handle]
