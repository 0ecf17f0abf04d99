"""The service role through Ansible: real pm2 (from the npm registry, `make node-tools`) with a
PM2_HOME of its own serving the demo app, and the systemd manager as far as a host without a
running systemd allows (its refusal, its argument checks, nothing changed).

The role's pm2 runs never reach a daemon in ~/.pm2: the role gets ``service_pm2_home`` and the
ansible-playbook process gets a decoy PM2_HOME, which must still be empty at the end.
"""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.harness import servers
from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT

PM2 = os.path.join(REPO_ROOT, "tests", "tools", "node_modules", ".bin", "pm2")

SERVICE_PLAY = """\
- name: Drive saferelease.core.service
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the service role
      ansible.builtin.include_role:
        name: saferelease.core.service

    - name: Service facts
      ansible.builtin.debug:
        msg:
          running: "{{ service_running }}"
          pid: "{{ service_pid }}"
          state: "{{ service_state }}"
          changed: "{{ service_changed }}"
"""


class Outcome(object):
    """One run of the role: the PlaybookRun, the facts it left and the tasks that reported a change."""

    def __init__(self, run):
        self.run = run
        self.facts = run.task("Service facts")["msg"] if run.ok else None
        self.changed_tasks = [r["task"] for r in run.results if r["outcome"] == "ok" and r["result"].get("changed")]

    @property
    def changed(self):
        return bool(self.changed_tasks)


class Pm2Sandbox(object):
    """A pm2 daemon of its own (PM2_HOME in the test's temporary directory) and the role driving it."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.home = str(tmp_path / "pm2")
        self.decoy = str(tmp_path / "pm2-decoy")
        os.mkdir(self.home)
        os.mkdir(self.decoy)
        self.playbook = str(tmp_path / "service.yml")
        with open(self.playbook, "w") as handle:
            handle.write(SERVICE_PLAY)
        self.recorded = set()

    def pm2(self, *args):
        done = subprocess.run([PM2] + list(args), env=dict(os.environ, PM2_HOME=self.home), capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, "pm2 %s: %s %s" % (" ".join(args), done.stdout[-500:], done.stderr[-500:])
        return done.stdout

    def daemon_pid(self):
        try:
            with open(os.path.join(self.home, "pm2.pid")) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def instances(self, name):
        """(status, pid) of every instance pm2 holds under ``name``."""
        processes = json.loads(self.pm2("jlist").strip().splitlines()[-1])
        return [(p["pm2_env"]["status"], p["pid"]) for p in processes if p["name"] == name]

    def play(self, action, check=False, **service_vars):
        """Run the role with ``service_action: action`` and the pm2 settings of this sandbox."""
        extra = dict(service_manager="pm2", service_action=action, service_pm2_bin=PM2, service_pm2_home=self.home,
                     service_chdir=str(self.tmp), service_min_uptime=1, service_stop_timeout=10)
        extra.update(service_vars)
        run = run_playbook(self.playbook, extra_vars=extra, check=check, env=dict(PM2_HOME=self.decoy))
        pid = self.daemon_pid()
        if pid and pid not in self.recorded:
            servers.record_pid(pid, "PM2 %s" % self.home)  # `make leak-check` proves the finaliser killed it
            self.recorded.add(pid)
        return Outcome(run)

    def kill(self):
        for home in (self.home, self.decoy):
            if os.path.exists(os.path.join(home, "pm2.pid")):
                subprocess.run([PM2, "kill", "--no-color"], env=dict(os.environ, PM2_HOME=home), capture_output=True,
                               timeout=60, check=False)
        pid = self.daemon_pid()
        if pid:
            servers.terminate(pid)


@pytest.fixture
def pm2(tmp_path):
    if not os.path.exists(PM2):
        pytest.fail("pm2 is missing: run `make node-tools`")
    sandbox = Pm2Sandbox(tmp_path)
    try:
        yield sandbox
    finally:
        sandbox.kill()


@pytest.fixture
def demo(tmp_path):
    """The demo app's command and environment on a free port, its SQLite database migrated."""
    url = "file:%s" % (tmp_path / "demo.db")
    environment = dict(DATABASE_URL=url, PYTHONPATH=servers.DEMO_APP_DIR, DEMO_RELEASE="v2",
                       PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-m", "demo_app", "migrate"], env=dict(os.environ, **environment),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    port = servers.free_port()
    command = [sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return dict(port=port, service_vars=dict(service_command=command, service_environment=environment))


def health(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % port, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, None


# --- pm2 -----------------------------------------------------------------------------------------

def test_pm2_start_restart_stop_and_their_repeats(pm2, demo):
    name, port = "svc-demo", demo["port"]
    started = pm2.play("started", service_name=name, **demo["service_vars"])
    assert started.run.ok, started.run
    assert started.changed and started.facts["changed"] and started.facts["running"], started.facts
    assert started.facts["state"] == "online"
    assert health(port)[0] == 200
    assert pm2.instances(name) == [("online", int(started.facts["pid"]))]

    again = pm2.play("started", service_name=name, **demo["service_vars"])
    assert again.run.ok, again.run
    assert not again.changed, again.changed_tasks
    assert again.facts["changed"] is False and again.facts["pid"] == started.facts["pid"]

    restarted = pm2.play("restarted", service_name=name, **demo["service_vars"])
    assert restarted.run.ok, restarted.run
    assert restarted.changed and restarted.facts["running"]
    assert restarted.facts["pid"] not in ("", started.facts["pid"])
    assert pm2.instances(name) == [("online", int(restarted.facts["pid"]))]
    servers.wait_until(lambda: servers.port_open(port), 20, "demo app after the restart")
    assert health(port)[0] == 200

    stopped = pm2.play("stopped", service_name=name, **demo["service_vars"])
    assert stopped.run.ok, stopped.run
    assert stopped.changed and stopped.facts["state"] == "stopped" and not stopped.facts["running"]
    assert stopped.facts["pid"] == ""
    assert not servers.port_open(port)
    assert pm2.instances(name) == [("stopped", 0)]

    stopped_again = pm2.play("stopped", service_name=name, **demo["service_vars"])
    assert stopped_again.run.ok, stopped_again.run
    assert not stopped_again.changed, stopped_again.changed_tasks

    # Started again from service_command: pm2 holds one app of that name, not a second one.
    restarted_from_stop = pm2.play("started", service_name=name, **demo["service_vars"])
    assert restarted_from_stop.run.ok and restarted_from_stop.changed, restarted_from_stop.run
    assert [status for status, _pid in pm2.instances(name)] == ["online"]
    assert os.listdir(pm2.decoy) == []


def test_pm2_status_and_check_mode_change_nothing(pm2, demo):
    name, port = "svc-check", demo["port"]
    # No daemon yet: status says so without spawning one (pm2 spawns a daemon on any command).
    status = pm2.play("status", service_name=name)
    assert status.run.ok, status.run
    assert status.facts == dict(running=False, pid="", state="absent", changed=False)
    assert not status.changed and os.listdir(pm2.home) == []

    nothing = pm2.play("started", service_name=name)
    assert nothing.run.failed_tasks() == [(
        "Check pm2 has something to start for svc-check",
        "pm2 has no app named svc-check and the role has nothing to start it from: set service_command to its argv "
        "(a list) or service_pm2_ecosystem to an ecosystem file declaring it. Nothing was changed.")]
    assert os.listdir(pm2.home) == []

    would_start = pm2.play("started", check=True, service_name=name, **demo["service_vars"])
    assert would_start.run.ok, would_start.run
    assert would_start.facts["changed"] and not would_start.facts["running"]
    assert would_start.changed_tasks == ["Report that pm2 would start svc-check"]
    assert os.listdir(pm2.home) == [] and not servers.port_open(port)

    started = pm2.play("started", service_name=name, **demo["service_vars"])
    assert started.run.ok, started.run
    would_stop = pm2.play("stopped", check=True, service_name=name, **demo["service_vars"])
    assert would_stop.run.ok, would_stop.run
    assert would_stop.facts["changed"] and would_stop.facts["running"]
    assert would_stop.facts["pid"] == started.facts["pid"]
    assert pm2.instances(name) == [("online", int(started.facts["pid"]))]
    assert health(port)[0] == 200
    assert os.listdir(pm2.decoy) == []


def test_pm2_start_of_a_command_that_exits_at_once_fails_naming_pm2_logs(pm2, demo):
    name = "svc-crash"
    service_vars = dict(demo["service_vars"])
    service_vars["service_environment"] = dict(service_vars["service_environment"], DEMO_FAULT="crash_on_start")
    outcome = pm2.play("started", service_name=name, **service_vars)
    assert not outcome.run.ok
    failed = outcome.run.failed_tasks()
    assert [task for task, _msg in failed] == ["Check pm2 kept running svc-crash"], failed
    message = failed[0][1]
    assert message.startswith("pm2 started svc-crash but it did not stay online: ")
    assert "`PM2_HOME=%s %s logs svc-crash`" % (pm2.home, PM2) in message
    assert "startup error: injected fault crash_on_start" in message
    assert "\n" not in message
    assert not servers.port_open(demo["port"])


def test_pm2_ecosystem_file_start_and_restart_with_update_env(pm2, demo, tmp_path):
    name, port = "svc-eco", demo["port"]
    command = demo["service_vars"]["service_command"]
    ecosystem = tmp_path / "ecosystem.json"

    def write_ecosystem(color):
        app = dict(name=name, script=command[0], args=command[1:], interpreter="none", cwd=str(tmp_path),
                   env=dict(demo["service_vars"]["service_environment"], DEMO_COLOR=color))
        ecosystem.write_text(json.dumps(dict(apps=[app])))

    def color():
        with urllib.request.urlopen("http://127.0.0.1:%d/api/version" % port, timeout=5) as answer:
            return json.load(answer).get("color")

    write_ecosystem("blue")
    started = pm2.play("started", service_name=name, service_pm2_ecosystem=str(ecosystem))
    assert started.run.ok, started.run
    assert started.facts["running"] and color() == "blue"

    write_ecosystem("green")
    restarted = pm2.play("restarted", service_name=name, service_pm2_ecosystem=str(ecosystem))
    assert restarted.run.ok, restarted.run
    assert restarted.facts["pid"] != started.facts["pid"]
    servers.wait_until(lambda: servers.port_open(port), 20, "demo app after the restart")
    assert color() == "green"


# --- systemd and argument checks (no systemd runs in the test container) -----------------------------

def _service_play(tmp_path, **service_vars):
    playbook = tmp_path / "service.yml"
    playbook.write_text(SERVICE_PLAY)
    return run_playbook(str(playbook), extra_vars=service_vars)


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="this host runs systemd")
def test_systemd_manager_without_systemd_fails_clearly_and_changes_nothing(tmp_path):
    for check in (False, True):
        playbook = tmp_path / "service.yml"
        playbook.write_text(SERVICE_PLAY)
        run = run_playbook(str(playbook), check=check, extra_vars=dict(
            service_manager="systemd", service_name="saferelease-no-such-app", service_action="started"))
        assert not run.ok
        (task, message), = run.failed_tasks()
        assert task == "Check systemd answered"
        assert message.startswith("`systemctl show saferelease-no-such-app.service` failed (exit ")
        assert "Nothing was changed. The systemd manager needs a host booted with systemd" in message
        assert not [r for r in run.results if r["result"].get("changed")]


def test_unknown_manager_and_systemd_scope_are_refused(tmp_path):
    run = _service_play(tmp_path, service_manager="supervisord", service_action="started")
    assert run.failed_tasks() == [("Check the service manager is one this role knows",
                                   "service_manager must be process, pm2 or systemd (got supervisord) and "
                                   "service_action one of started, stopped, restarted, status (got started).")]
    run = _service_play(tmp_path, service_manager="systemd", service_name="app", service_systemd_scope="global")
    assert run.failed_tasks() == [("Check the systemd settings",
                                   "service_systemd_scope must be system or user (got global) and "
                                   "service_systemd_unit a unit name (got app.service).")]
