"""Run modules and playbooks through the real Ansible executor and read back their results."""
import json
import os
import subprocess
import sys
import tempfile

from tests.harness.collection import COLLECTIONS_PATH, REPO_ROOT, ensure_collection_link

BIN = os.path.dirname(sys.executable)
CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")
LOCAL_INVENTORY = "localhost,"


class PlaybookRun(object):
    """What one ``ansible-playbook`` run did: exit code, output and every task result in order."""

    def __init__(self, returncode, stdout, stderr, results):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.results = results

    @property
    def ok(self):
        return self.returncode == 0

    def task(self, name, host=None):
        """The last result of the task called ``name`` (on ``host`` if given)."""
        matches = [r for r in self.results if r["task"] == name and (host is None or r["host"] == host)]
        if not matches:
            raise KeyError("no result for task %r; tasks run: %s" % (name, sorted({r["task"] for r in self.results})))
        return matches[-1]["result"]

    def published_stats(self):
        """The set_stats data the run published for AWX workflows (the execution role's finish)."""
        return self.task("Publish the outcome for AWX workflows")["ansible_stats"]["data"]["saferelease"]

    def failed_tasks(self):
        return [(r["task"], r["result"].get("msg")) for r in self.results if r["outcome"] == "failed"]

    def __repr__(self):
        return "PlaybookRun(rc=%s, failed=%s)\n%s\n%s" % (self.returncode, self.failed_tasks(), self.stdout[-4000:],
                                                          self.stderr[-2000:])


def ansible_env(extra=None):
    ensure_collection_link()
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH,
        ANSIBLE_ROLES_PATH=os.path.join(REPO_ROOT, "roles"),
        ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
        ANSIBLE_CALLBACKS_ENABLED="harness_result",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        PATH=os.pathsep.join([BIN, env.get("PATH", "")]),
    )
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


def write_localhost_inventory(directory, host_vars):
    """Writes ``<directory>/inventory.json`` with the one host ``localhost`` and its variables; returns its path."""
    path = os.path.join(directory, "inventory.json")
    with open(path, "w") as handle:
        json.dump(dict(all=dict(hosts=dict(localhost=host_vars))), handle)
    return path


def run_playbook(playbook, extra_vars=None, inventory=None, check=False, diff=False, env=None, limit=None,
                 tags=None, timeout=900, cwd=None):
    """``ansible-playbook`` with the checkout as the collection; extra vars go through a 0600 file."""
    with tempfile.TemporaryDirectory(prefix="sr-play-") as scratch:
        results_file = os.path.join(scratch, "results.jsonl")
        command = [os.path.join(BIN, "ansible-playbook"), playbook, "-i", inventory or LOCAL_INVENTORY]
        if inventory is None:
            command += ["-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable]
        if extra_vars:
            vars_file = os.path.join(scratch, "vars.json")
            with os.fdopen(os.open(vars_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
                json.dump(extra_vars, handle)
            command += ["-e", "@" + vars_file]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if limit:
            command += ["--limit", limit]
        if tags:
            command += ["--tags", tags]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO_ROOT,
                              env=ansible_env(dict(env or {}, SAFERELEASE_HARNESS_RESULTS=results_file)),
                              stdin=subprocess.DEVNULL, check=False)
        results = []
        if os.path.exists(results_file):
            with open(results_file) as handle:
                results = [json.loads(line) for line in handle if line.strip()]
        return PlaybookRun(done.returncode, done.stdout, done.stderr, results)


MODULE_PLAY = """\
- name: Harness module run
  hosts: all
  gather_facts: false
  tasks:
    - name: harness module call
      {module}: {args}
      ignore_errors: true
"""


def run_module(module, args, check=False, diff=False, env=None):
    """Run one module on localhost through ``ansible-playbook``; return its result dict.

    ``failed`` is set when the module failed; arguments travel in a 0600 playbook file, never argv.
    """
    with tempfile.TemporaryDirectory(prefix="sr-module-") as scratch:
        playbook = os.path.join(scratch, "module.yml")
        with os.fdopen(os.open(playbook, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(MODULE_PLAY.format(module=module, args=json.dumps(args)))
        run = run_playbook(playbook, check=check, diff=diff, env=env)
    records = [r for r in run.results if r["task"] == "harness module call"]
    if not records:
        raise AssertionError("module %s produced no result: %r" % (module, run))
    result = dict(records[-1]["result"])
    result["failed"] = records[-1]["outcome"] == "failed"
    result.setdefault("changed", False)
    return result
