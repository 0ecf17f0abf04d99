"""The pm2 and systemctl runners behind health_gate's process checks (the live pm2 daemon is in the integration tests)."""
import json
import os

import pytest

from ansible_collections.saferelease.core.plugins.module_utils import gate_checks
from ansible_collections.saferelease.core.plugins.module_utils.process_runner import (
    Pm2Runner, ProcessToolError, SystemctlRunner, parse_jlist, pid_alive, pm2_instances)
from tests.harness.collection import REPO_ROOT

PM2 = os.path.join(REPO_ROOT, "tests", "tools", "node_modules", ".bin", "pm2")

# What `pm2 jlist` printed on this machine when it had to start its daemon first (banner shortened).
SPAWNING_OUTPUT = (
    "\n                        -------------\n\n__/\\\\\\\\\\\\\\\\\\\\\\\\\\____/\\\\\\\\____________/\\\\\\\\____\n"
    "                          Runtime Edition\n\n"
    "\x1b[32m[PM2] \x1b[39mSpawning PM2 daemon with pm2_home=/tmp/pm2probe.rSkz\n"
    "\x1b[32m[PM2] \x1b[39mPM2 Successfully daemonized\n[]\n")


def _process(name, pm_id, status, restarts):
    return dict(name=name, pm_id=pm_id, pid=1000 + pm_id, pm2_env=dict(status=status, restart_time=restarts,
                                                                       unstable_restarts=0))


def test_parse_jlist_skips_the_banner_and_coloured_lines():
    assert parse_jlist(SPAWNING_OUTPUT) == []
    listed = [_process("easy-erp", 0, "online", 2)]
    assert parse_jlist("\x1b[33m[PM2][WARN]\x1b[39m Current process list is not synchronized\n" + json.dumps(listed)) == listed
    with pytest.raises(ProcessToolError, match="printed no process list"):
        parse_jlist("[PM2] Spawning PM2 daemon\n")


def test_pm2_instances_of_a_cluster_app():
    processes = [_process("easy-erp", 0, "online", 1), _process("worker", 1, "online", 0),
                 _process("easy-erp", 2, "errored", 15)]
    instances = pm2_instances(processes, "easy-erp")
    assert [(i["pm_id"], i["status"], i["restarts"]) for i in instances] == [(0, "online", 1), (2, "errored", 15)]
    assert pm2_instances(processes, "nope") == []


def test_pm2_runner_does_not_start_a_daemon(tmp_path):
    home = tmp_path / "pm2"
    home.mkdir()
    runner = Pm2Runner(PM2, str(home))
    with pytest.raises(ProcessToolError, match="pm2 daemon of PM2_HOME=%s is not running" % home):
        runner.jlist()
    assert os.listdir(str(home)) == []  # pm2 would have written pm2.pid, sockets and logs here
    check = gate_checks.Pm2Check("easy-erp", runner).run()
    assert not check["passed"] and check["instances"] == 0 and "is not running" in check["msg"]


def test_pm2_home_defaults_like_pm2(monkeypatch):
    monkeypatch.setenv("PM2_HOME", "/srv/pm2")
    assert Pm2Runner().home == "/srv/pm2"
    monkeypatch.delenv("PM2_HOME")
    assert Pm2Runner().home == os.path.join(os.path.expanduser("~"), ".pm2")


def test_systemctl_missing_binary():
    with pytest.raises(ProcessToolError, match="exit 127"):
        SystemctlRunner("/nonexistent/systemctl").is_active("app.service")


def test_systemd_check_never_reports_an_unknown_unit_active():
    # On a host with systemd the unit is inactive; in a container without it systemctl says why.
    outcome = gate_checks.SystemdCheck("saferelease-no-such-unit.service", SystemctlRunner()).run()
    assert not outcome["passed"]
    assert outcome["msg"].startswith(("unit is ", "systemctl is-active saferelease-no-such-unit.service gave no state"))


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(2 ** 22 + 1)  # above the kernel's pid_max
