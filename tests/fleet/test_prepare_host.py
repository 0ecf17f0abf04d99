"""playbooks/prepare-host.yml on stock Debian hosts over SSH, and what a playbook does on a host that lacks a package."""
import os

from tests.fleet.conftest import APP_VARS, fleet_inventory, prepare_host
from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.fleet_site import upper_changes, upper_snapshot


def changed_tasks(run):
    return sorted(set((r["host"], r["task"]) for r in run.results if r["result"].get("changed")))


def test_prepare_host_installs_what_each_host_is_for_and_is_idempotent(prepared_fleet, tmp_path):
    fleet, first = prepared_fleet
    installed = first.task("Install the Debian packages this host needs", host="app1")
    assert installed["changed"]
    app1, lb, db = fleet["app1"], fleet["lb"], fleet["db"]
    # what the modules need, as the interpreter Ansible uses and the tools db_backup calls
    app1.run("/usr/bin/python3 -c 'import pymysql' && zstd --version && mariadb-dump --version && setfacl --version",
             user="deploy")
    lb.run("nginx -v")
    assert lb.run("/usr/bin/python3 -c 'import pymysql'", check=False).returncode != 0  # a load balancer needs no driver
    db.run("/usr/bin/python3 -c 'import pymysql' && zstd --version")
    for attempt in (2, 3):
        again = prepare_host(fleet, str(tmp_path), ["lb", "app1", "app2", "db"])
        assert again.ok, again
        assert changed_tasks(again) == [], (attempt, changed_tasks(again))


def test_a_stock_host_gets_a_failure_that_names_the_packages_and_nothing_changes(fleet, tmp_path):
    stock = fleet["stock"]
    inventory = fleet_inventory(fleet, str(tmp_path / "stock.json"), ["stock"],
                                dict(APP_VARS, app_base_dir="/opt/saferelease-demo"))
    before = upper_snapshot(stock)
    run = run_playbook(os.path.join(REPO_ROOT, "playbooks", "safe-sync.yml"), inventory=inventory)
    assert not run.ok
    failed = run.failed_tasks()
    assert [task for task, _msg in failed] == ["Check this host has what the playbooks need (app)"]
    message = failed[0][1]
    for package in ("python3-pymysql", "mariadb-client", "zstd", "acl"):
        assert package in message, message
    assert "apt-get install -y python3-pymysql mariadb-client zstd acl" in message and "prepare-host.yml" in message
    assert upper_changes(stock, before) == []  # no file on the host changed
