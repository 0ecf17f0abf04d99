"""playbooks/safe-sync.yml end to end on a real demo app, through each branch of runbook 000."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.harness import servers
from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "safe-sync.yml")
SHIPMENT_FILE = "20250821015630_add_shipment_file_field"
PRISMA_DIRS = {"sqlite": "prisma", "mysql": "prisma-mysql", "postgresql": "prisma-postgresql"}
DATABASES = {"sqlite": None, "mysql": "mariadb_db", "postgresql": "postgres_db"}


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
        self.url = database.url if database else "file:./dev.db"

    def deploy(self):
        release = os.path.join(self.base, "releases", "initial")
        shutil.copytree(os.path.join(REPO_ROOT, "examples", "demo_app"), release,
                        ignore=shutil.ignore_patterns("__pycache__", "*.db"))
        os.symlink(release, self.current)
        os.makedirs(os.path.join(self.base, "run"))
        with os.fdopen(os.open(self.env_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write('DATABASE_URL="%s"\n' % self.url)
        self.demo_app("migrate")
        return self

    def environment(self):
        return dict(os.environ, DEMO_ENV_FILE=self.env_file, DEMO_PRISMA_DIR=self.prisma_dir, DEMO_RELEASE="v2",
                    PYTHONPATH=self.current)

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
            conn = sqlite3.connect(os.path.join(self.prisma_dir, "dev.db"), isolation_level=None)
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
        servers.wait_until(lambda: servers.port_open(self.port), 30, "demo app", process=process)
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
                                                 DEMO_RELEASE="v2", PYTHONPATH=self.current),
                    safe_sync_health_interval=0.5)
        host.update(overrides)
        path = os.path.join(self.base, "inventory.json")
        with open(path, "w") as handle:
            json.dump(dict(all=dict(hosts=dict(localhost=host))), handle)
        return path

    def safe_sync(self, check=False, diff=False, **overrides):
        return run_playbook(PLAYBOOK, inventory=self.inventory(**overrides), check=check, diff=diff)


@pytest.fixture
def site_factory(request, tmp_path):
    sites = []

    def build(engine):
        database = request.getfixturevalue(DATABASES[engine]) if DATABASES[engine] else None
        site = Site(str(tmp_path / ("site-%d" % len(sites))), engine, database)
        sites.append(site)
        return site.deploy()

    yield build
    for site in sites:
        site.stop()


def saved_rows(site):
    state = os.path.join(site.base, "state")
    return [f for f in os.listdir(state) if f.startswith("prisma-migrations-")] if os.path.isdir(state) else []


def audit(site):
    with open(os.path.join(site.base, "state", "audit.jsonl")) as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("engine", sorted(PRISMA_DIRS))
def test_conflict_is_resolved_by_marking_applied_then_a_rerun_changes_nothing(site_factory, engine):
    site = site_factory(engine)
    site.forget_record()
    site.start()
    old_pid = site.app_pid()
    run = site.safe_sync()
    assert run.ok, run
    synced = run.task("Step 3: sync the records (rows saved first)")
    assert synced["changed"] and [a["action"] for a in synced["actions"]] == ["mark_applied"]
    assert site.status()["pending"] == [] and SHIPMENT_FILE in site.status()["applied"]
    assert site.app_pid() != old_pid, "the app was not restarted after the records changed"
    gate = run.task("Step 5: gate on the application's health")
    assert gate["healthy"] and gate["attempts"] >= 3
    assert len(saved_rows(site)) == 1
    # The record is present now: the runbook's "already synced" branch does nothing, not even a restart.
    pid = site.app_pid()
    again = site.safe_sync()
    assert again.ok, again
    assert not again.task("Step 3: sync the records (rows saved first)")["changed"]
    assert site.app_pid() == pid
    assert [entry["step"] for entry in audit(site)].count("finish") == 2


def test_missing_column_is_applied(site_factory):
    site = site_factory("sqlite")
    site.forget_record()
    site.drop_column()
    site.start()
    run = site.safe_sync()
    assert run.ok, run
    actions = run.task("Step 3: sync the records (rows saved first)")["actions"]
    assert [(a["action"], a["migration"]) for a in actions] == [("apply", SHIPMENT_FILE)]
    assert "shipmentFile" in [row[1] for row in site.sql("PRAGMA table_info('Shipment')")]


def test_unreachable_database_stops_with_a_clear_message_and_changes_nothing(site_factory):
    site = site_factory("sqlite")
    site.forget_record()
    site.start()
    pid = site.app_pid()
    closed_port = servers.free_port()
    run = site.safe_sync(app_database_url="mysql://app:s3cret-pw@127.0.0.1:%d/erp" % closed_port,
                         app_prisma_dir=os.path.join(site.current, "prisma-mysql"))
    assert not run.ok
    failed = dict(run.failed_tasks())
    message = failed["Step 1: read the migration state (proves the database is reachable)"]
    assert "127.0.0.1:%d" % closed_port in message and "nothing was changed" in message.lower()
    assert "s3cret-pw" not in run.stdout + run.stderr
    assert SHIPMENT_FILE not in site.status()["applied"] and site.app_pid() == pid
    finish = [entry for entry in audit(site) if entry["step"] == "finish"]
    assert finish and finish[-1]["result"] == "failed"
    assert not os.path.exists(os.path.join(site.base, "state", "lock")), "the lock was not released"


def test_check_mode_reports_the_plan_and_changes_nothing(site_factory):
    site = site_factory("postgresql")
    site.forget_record()
    site.start()
    pid = site.app_pid()
    run = site.safe_sync(check=True, diff=True)
    assert run.ok, run
    planned = run.task("Step 3: sync the records (rows saved first)")
    assert planned["changed"] and planned["actions"][0]["action"] == "mark_applied"
    assert SHIPMENT_FILE in site.status()["pending"] and site.app_pid() == pid
    assert saved_rows(site) == []
