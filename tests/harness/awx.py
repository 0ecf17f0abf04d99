"""Runs a job template of awx/job_templates.yml the way AWX does: its survey applied to the answers
(defaults filled in, required questions and choices enforced), a private data directory with
env/extravars, env/envvars, an executable inventory script and the project, then ansible-runner."""
import json
import os
import shutil
import stat

import ansible_runner
import yaml

from tests.harness.ansible_run import ansible_env
from tests.harness.collection import REPO_ROOT

TEMPLATES_FILE = os.path.join(REPO_ROOT, "awx", "job_templates.yml")


def load_templates():
    with open(TEMPLATES_FILE) as handle:
        return yaml.safe_load(handle)


def template(name_part):
    """The one job template whose name contains ``name_part``."""
    matches = [t for t in load_templates()["saferelease_awx_job_templates"] if name_part in t["name"]]
    assert len(matches) == 1, "%r matches %d templates" % (name_part, len(matches))
    return matches[0]


class SurveyError(Exception):
    pass


def survey_extra_vars(spec, answers):
    """What AWX sends as extra variables: each question's answer, else its default (AWX leaves out
    empty defaults); refuses what AWX's survey validation refuses."""
    answers = dict(answers)
    extra = {}
    for question in spec["spec"]:
        name = question["variable"]
        value = answers.pop(name) if name in answers else question.get("default", "")
        if value in ("", None):
            if question.get("required"):
                raise SurveyError("%s is required" % name)
            continue
        if question["type"] == "multiplechoice" and value not in question["choices"]:
            raise SurveyError("%s: %r is not one of %s" % (name, value, question["choices"]))
        if question["type"] in ("integer", "float"):
            value = int(value) if question["type"] == "integer" else float(value)
            if not question.get("min", value) <= value <= question.get("max", value):
                raise SurveyError("%s: %s is outside %s..%s" % (name, value, question.get("min"), question.get("max")))
        extra[name] = value
    if answers:
        raise SurveyError("no survey question for %s" % sorted(answers))
    return extra


class JobRun(object):
    def __init__(self, runner, extra_vars):
        self.rc = runner.rc
        self.status = runner.status
        self.extra_vars = extra_vars
        self.events = list(runner.events)
        stats = [e for e in self.events if e.get("event") == "playbook_on_stats"]
        # What AWX stores as the job's artifacts and hands to the next workflow node.
        self.artifacts = stats[-1]["event_data"].get("artifact_data", {}) if stats else {}
        self.stdout = runner.stdout.read()

    @property
    def outcome(self):
        return self.artifacts.get("saferelease", {})

    def __repr__(self):
        return "JobRun(rc=%s, status=%s, artifacts=%s)\n%s" % (self.rc, self.status, self.outcome, self.stdout[-4000:])


def inventory_script(inventory_file):
    """AWX hands ansible an executable that prints the inventory as JSON: the same from a harness inventory file."""
    with open(inventory_file) as handle:
        tree = json.load(handle)
    groups, hostvars = {}, {}

    def walk(name, group):
        entry = groups.setdefault(name, dict(hosts=[], vars={}, children=[]))
        for host, variables in (group.get("hosts") or {}).items():
            entry["hosts"].append(host)
            hostvars.setdefault(host, {}).update(variables or {})
        entry["vars"].update(group.get("vars") or {})
        for child, sub in (group.get("children") or {}).items():
            entry["children"].append(child)
            walk(child, sub)

    walk("all", tree["all"])
    groups["_meta"] = dict(hostvars=hostvars)
    return "#!/bin/sh\ncat <<'INVENTORY'\n%s\nINVENTORY\n" % json.dumps(groups)


def launch(job_template, inventory_file, private_dir, answers=None, extra_data=None):
    """Launch ``job_template`` against the hosts of ``inventory_file``; ``extra_data`` are variables a
    workflow node or a parent job's artifacts add (AWX puts them beside the survey's)."""
    asked = set(q["variable"] for q in job_template["survey_spec"]["spec"])
    extra_data = dict(extra_data or {})
    # A workflow node's extra data answers the survey questions it names.
    answers = dict(dict((k, v) for k, v in extra_data.items() if k in asked), **(answers or {}))
    extra_vars = dict((k, v) for k, v in extra_data.items() if k not in asked)
    extra_vars.update(survey_extra_vars(job_template["survey_spec"], answers))
    if os.path.exists(private_dir):
        shutil.rmtree(private_dir)
    for folder in ("env", "inventory"):
        os.makedirs(os.path.join(private_dir, folder))
    os.symlink(REPO_ROOT, os.path.join(private_dir, "project"))
    write_private(os.path.join(private_dir, "env", "extravars"), json.dumps(extra_vars))
    environment = dict((k, v) for k, v in ansible_env().items() if k.startswith("ANSIBLE_") or k in ("PATH", "HOME"))
    environment.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    environment.pop("ANSIBLE_CALLBACK_PLUGINS", None)
    write_private(os.path.join(private_dir, "env", "envvars"), json.dumps(environment))
    script = os.path.join(private_dir, "inventory", "hosts")
    write_private(script, inventory_script(inventory_file))
    os.chmod(script, stat.S_IRWXU)
    runner = ansible_runner.run(private_data_dir=private_dir, playbook=job_template["playbook"], quiet=True,
                                forks=job_template.get("forks"))
    return JobRun(runner, extra_vars)


def write_private(path, text):
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(text)
