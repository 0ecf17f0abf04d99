"""awx/job_templates.yml against the playbooks: a template per playbook, every survey variable read by
its playbook, every input the playbook requires asked for, secrets as password questions, valid
survey specs and a workflow that points at real templates."""
import glob
import os
import re

import pytest
import yaml

from tests.harness.awx import load_templates
from tests.harness.collection import REPO_ROOT

TEMPLATES = load_templates()["saferelease_awx_job_templates"]
ROLE_REFERENCE = re.compile(r"saferelease\.core\.(\w+)")
INCLUDED_TASKS = re.compile(r"include_tasks: (tasks/[\w.-]+\.ya?ml)")
# An input the playbook refuses to run without: an assert that it is not empty, or that it matches a
# pattern starting with a character class (a name).
REQUIRED_INPUT = re.compile(r"^(\w+) (?:\| (?:trim \| )?length > 0$|is match\('\^\[)")
SECRET = re.compile(r"confirm|token|password|secret|webhook")
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def read(path):
    with open(path) as handle:
        return handle.read()


def role_files(role):
    return sorted(glob.glob(os.path.join(REPO_ROOT, "roles", role, "*", "*.yml")))


def playbook_files(playbook):
    path = os.path.join(REPO_ROOT, playbook)
    return [path] + [os.path.join(os.path.dirname(path), m) for m in INCLUDED_TASKS.findall(read(path))]


def direct_role_files(playbook):
    """The playbook's files and those of the roles it names itself: where its own inputs are checked
    (a role it reaches through another, like release, gets its inputs from that role)."""
    files = playbook_files(playbook)
    roles = set(role for path in files for role in ROLE_REFERENCE.findall(read(path)))
    return files + [f for role in sorted(roles) for f in role_files(role)]


def reachable_files(playbook):
    """The playbook, task files it includes, and every file of the collection's roles it reaches."""
    files = playbook_files(playbook)
    roles, queue = set(), list(files)
    while queue:
        for role in ROLE_REFERENCE.findall(read(queue.pop())):
            if role not in roles and os.path.isdir(os.path.join(REPO_ROOT, "roles", role)):
                roles.add(role)
                queue.extend(role_files(role))
                files.extend(role_files(role))
    return files


def asserted_conditions(node):
    """Every condition of every ansible.builtin.assert in a parsed YAML file."""
    if isinstance(node, list):
        return [c for item in node for c in asserted_conditions(item)]
    if not isinstance(node, dict):
        return []
    found = []
    if "ansible.builtin.assert" in node:
        that = node["ansible.builtin.assert"]["that"]
        found.extend(that if isinstance(that, list) else [that])
    return found + [c for value in node.values() for c in asserted_conditions(value)]


def required_inputs(playbook):
    conditions = [c.strip() for path in direct_role_files(playbook) for c in asserted_conditions(yaml.safe_load(read(path)))]
    # A variable the playbook or a role sets for the role it includes (deploy-update's reason for its
    # rollback, the traffic role's release_name) is not an input; role defaults do not count as setting it.
    set_inside = set(name for path in reachable_files(playbook) if not path.endswith(os.path.join("defaults", "main.yml"))
                     for name in re.findall(r"^\s+(\w+):", read(path), re.M))
    return set(m.group(1) for m in map(REQUIRED_INPUT.match, conditions) if m) & role_defaults() - set_inside


def role_defaults():
    """Variables whose role default is the empty string: inputs with nothing to fall back on."""
    empty = set()
    for path in glob.glob(os.path.join(REPO_ROOT, "roles", "*", "defaults", "main.yml")):
        empty.update(name for name, value in (yaml.safe_load(read(path)) or {}).items() if value == "")
    return empty


def template_id(template):
    return os.path.basename(template["playbook"])


def test_every_playbook_has_one_template_and_every_template_a_playbook():
    playbooks = sorted(os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(REPO_ROOT, "playbooks", "*.yml")))
    assert sorted(t["playbook"] for t in TEMPLATES) == playbooks


@pytest.mark.parametrize("template", TEMPLATES, ids=template_id)
def test_every_survey_variable_is_read_by_the_playbook(template):
    text = "\n".join(read(path) for path in reachable_files(template["playbook"]))
    unused = [q["variable"] for q in template["survey_spec"]["spec"] if not re.search(r"\b%s\b" % q["variable"], text)]
    assert unused == []


@pytest.mark.parametrize("template", TEMPLATES, ids=template_id)
def test_every_required_input_has_a_question_or_a_default(template):
    required = required_inputs(template["playbook"])
    answered = set(q["variable"] for q in template["survey_spec"]["spec"] if q.get("required") or q.get("default") not in ("", None))
    assert sorted(required - answered) == []


def test_the_required_input_detection_finds_the_known_inputs():
    """Guards the test above against a pattern that matches nothing."""
    found = dict((template_id(t), required_inputs(t["playbook"])) for t in TEMPLATES)
    assert {"precheck_release_dir"} <= found["pre-deploy-check.yml"]
    assert {"update_release_name", "update_source_dir"} <= found["deploy-update.yml"]
    assert {"rollback_reason"} <= found["rollback-level3.yml"]
    assert {"traffic_release"} <= found["canary.yml"]


@pytest.mark.parametrize("template", TEMPLATES, ids=template_id)
def test_secrets_are_password_questions(template):
    plain = [q["variable"] for q in template["survey_spec"]["spec"] if SECRET.search(q["variable"]) and q["type"] != "password"]
    assert plain == []


@pytest.mark.parametrize("template", TEMPLATES, ids=template_id)
def test_survey_specs_are_valid(template):
    spec = template["survey_spec"]
    assert spec["name"] and isinstance(spec["description"], str)
    variables = [q["variable"] for q in spec["spec"]]
    assert len(variables) == len(set(variables)), "a variable is asked twice"
    for question in spec["spec"]:
        assert question["type"] in SURVEY_TYPES and question["question_name"] and "required" in question
        default = question.get("default")
        if question["type"] == "multiplechoice":
            assert all(isinstance(c, str) for c in question["choices"]) and default in question["choices"]
        if question["type"] in ("integer", "float") and default not in ("", None):
            assert question["min"] <= default <= question["max"]


# Playbooks that prepare hosts rather than run an application: no lock, audit log or record to keep.
HOST_PLAYBOOKS = ("playbooks/prepare-host.yml",)


def test_every_playbook_publishes_its_outcome_with_set_stats():
    for template in TEMPLATES:
        text = "\n".join(read(path) for path in reachable_files(template["playbook"]))
        assert "ansible.builtin.set_stats" in text, template["playbook"]
        if template["playbook"] not in HOST_PLAYBOOKS:
            assert "tasks_from: finish.yml" in text, template["playbook"]


def test_the_workflow_points_at_real_templates_and_nodes():
    names = set(t["name"] for t in TEMPLATES)
    for workflow in load_templates()["saferelease_awx_workflows"]:
        nodes = dict((n["identifier"], n) for n in workflow["workflow_nodes"])
        for node in nodes.values():
            assert node["unified_job_template"]["name"] in names
            for kind in ("success_nodes", "failure_nodes", "always_nodes"):
                assert all(link["identifier"] in nodes for link in node.get("related", {}).get(kind, []))
