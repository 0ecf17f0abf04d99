"""The test fleet for a whole test session: lb, app1, app2, db (MariaDB) and a stock host nothing prepares.

Each is a separate Debian host (tests/harness/fleet.py) reached over SSH as ``deploy`` with ``become``.
``prepared_fleet`` runs playbooks/prepare-host.yml once on lb, app1, app2 and db.
"""
import json
import os

import pytest

from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.fleet import Fleet
from tests.harness.fleet_site import FleetMariaDB

HOSTS = [("lb", "127.0.0.21"), ("app1", "127.0.0.22"), ("app2", "127.0.0.23"), ("db", "127.0.0.24"),
         ("stock", "127.0.0.25")]
PREPARED = ["lb", "app1", "app2", "db"]


@pytest.fixture(scope="session")
def fleet():
    started = Fleet(HOSTS, layers={"db": ["mariadb"]}).start()
    try:
        yield started
    finally:
        started.stop()


def fleet_inventory(fleet, path, names, app_vars=None):
    """An inventory of ``names``: load_balancers (lb), databases (db) and the app hosts in group demo."""
    groups = {"load_balancers": {}, "databases": {}, "demo": {}}
    for name in names:
        group = {"lb": "load_balancers", "db": "databases"}.get(name, "demo")
        groups[group][name] = dict(fleet.host_vars(fleet[name]), **(app_vars or {}))
    inventory = {"all": {"children": dict((g, {"hosts": h}) for g, h in groups.items() if h)}}
    with open(path, "w") as handle:
        json.dump(inventory, handle)
    return path


APP_VARS = dict(app_stack="demo", app_database_engine="mysql", app_user="app")


def prepare_host(fleet, workdir, names, check=False):
    inventory = fleet_inventory(fleet, os.path.join(workdir, "prepare.json"), names, APP_VARS)
    return run_playbook(os.path.join(REPO_ROOT, "playbooks", "prepare-host.yml"), inventory=inventory, check=check)


@pytest.fixture(scope="session")
def prepared_fleet(fleet, tmp_path_factory):
    run = prepare_host(fleet, str(tmp_path_factory.mktemp("prepare")), PREPARED)
    assert run.ok, run
    return fleet, run


@pytest.fixture(scope="session")
def fleet_mariadb(fleet):
    return FleetMariaDB(fleet["db"]).start()
