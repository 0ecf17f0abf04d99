"""The example inventories (staging, production): each host resolves to a stack the app role knows,
the four stacks of the runbooks are there, no secret is written in them, and the app role's
variables resolve for every host (its tasks only check them; nothing connects to the hosts)."""
import ipaddress
import json
import os
import re
import subprocess

import pytest
import yaml

from tests.harness.ansible_run import BIN, ansible_env, run_playbook
from tests.harness.collection import REPO_ROOT

INVENTORIES = ["staging", "production"]
# Group -> stack, as the runbooks have them.
STACKS = {"easy_erp": "prisma_mysql_pm2", "danci": "prisma_postgresql_pnpm", "elontalk": "rust_sqlite",
          "ai_doc": "python_mysql_systemd"}
MANAGERS = {"easy_erp": "pm2", "danci": "pm2", "elontalk": "systemd", "ai_doc": "systemd"}
DOCUMENTATION_NETWORKS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
SECRET_NAME = re.compile(r"password|passwd|secret|token|database_url|webhook_url", re.I)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s]+@", re.I)

RESOLVE_PLAY = """\
- name: Resolve the app role for every host
  hosts: all
  gather_facts: false
  connection: local
  tasks:
    # the role's defaults only: its first task checks the (example) host's packages
    - name: Load the app role's defaults
      ansible.builtin.include_role:
        name: saferelease.core.app
        tasks_from: defaults.yml
        public: true

    - name: Resolved app variables
      ansible.builtin.debug:
        msg:
          app_stack: "{{ app_stack }}"
          app_name: "{{ app_name }}"
          app_port: "{{ app_port }}"
          app_service_manager: "{{ app_service_manager }}"
          app_health_url: "{{ app_health_url }}"
          app_backup_dir: "{{ app_backup_dir }}"
          app_env_file: "{{ app_env_file }}"
          app_database_engine: "{{ app_database_engine }}"
          app_database_url_set: "{{ app_database_url | length > 0 }}"
"""


def app_profiles():
    with open(os.path.join(REPO_ROOT, "roles", "app", "defaults", "main.yml")) as handle:
        return yaml.safe_load(handle)["app_stack_profiles"]


@pytest.fixture(scope="module", params=INVENTORIES)
def inventory(request):
    """(name, path, `ansible-inventory --list` as a dict) of one example inventory."""
    path = os.path.join(REPO_ROOT, "inventories", request.param)
    done = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", path, "--list"], capture_output=True,
                          text=True, env=ansible_env(), cwd=REPO_ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "[WARNING]" not in done.stderr, done.stderr
    return request.param, path, json.loads(done.stdout)


def group_hosts(listing, group):
    return listing.get(group, {}).get("hosts", [])


def test_every_host_resolves_to_a_known_stack(inventory):
    _name, _path, listing = inventory
    profiles = app_profiles()
    hostvars = listing["_meta"]["hostvars"]
    assert hostvars, "the inventory has no hosts"
    for host, variables in hostvars.items():
        assert variables.get("app_stack") in profiles, (host, variables.get("app_stack"))


def test_the_four_stacks_are_groups_picking_their_stack(inventory):
    _name, _path, listing = inventory
    hostvars = listing["_meta"]["hostvars"]
    assert sorted(listing["all"]["children"]) == sorted(list(STACKS) + ["ungrouped"])
    for group, stack in STACKS.items():
        hosts = group_hosts(listing, group)
        assert hosts, "group %s has no host" % group
        assert {hostvars[h]["app_stack"] for h in hosts} == {stack}, group
    assert {v["app_stack"] for v in hostvars.values()} == set(STACKS.values())


def test_hosts_are_examples_in_documentation_ranges(inventory):
    _name, _path, listing = inventory
    for host, variables in listing["_meta"]["hostvars"].items():
        assert host.endswith(".example.com"), host
        address = ipaddress.ip_address(variables["ansible_host"])
        assert any(address in network for network in DOCUMENTATION_NETWORKS), (host, address)


def test_no_secret_is_written_in_the_inventory(inventory):
    _name, _path, listing = inventory

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    for host, variables in listing["_meta"]["hostvars"].items():
        for key, value in variables.items():
            if SECRET_NAME.search(key) and isinstance(value, str) and value:
                # Only a reference to a vault variable, never the value itself.
                assert re.fullmatch(r"\{\{ vault_[a-z0-9_]+ (\| default\(''\) )?\}\}", value), (host, key, value)
            for text in strings(value):
                assert not URL_WITH_PASSWORD.search(text), (host, key)


def test_app_role_variables_resolve_for_every_host(inventory, tmp_path):
    name, path, listing = inventory
    playbook = tmp_path / "resolve.yml"
    playbook.write_text(RESOLVE_PLAY)
    run = run_playbook(str(playbook), inventory=path)
    assert run.ok, run
    profiles = app_profiles()
    resolved = {r["host"]: r["result"]["msg"] for r in run.results if r["task"] == "Resolved app variables"}
    assert sorted(resolved) == sorted(listing["_meta"]["hostvars"])
    for group, stack in STACKS.items():
        for host in group_hosts(listing, group):
            app = resolved[host]
            assert app["app_stack"] == stack and app["app_name"] == profiles[stack]["name"], (host, app)
            assert app["app_service_manager"] == MANAGERS[group], (host, app)
            assert app["app_database_engine"] == profiles[stack]["database_engine"], (host, app)
            assert app["app_health_url"] == "http://127.0.0.1:%s%s" % (app["app_port"], profiles[stack]["health_path"])
            assert app["app_backup_dir"].startswith("/") and app["app_env_file"].endswith("/.env"), (host, app)
            # No vault in the examples: DATABASE_URL is read from the env file on the host.
            assert app["app_database_url_set"] is False or profiles[stack]["database_url"], (host, app)
    # A host overrides its group: danci's green instance listens on 3001, blue keeps the profile's 3000.
    danci = sorted(group_hosts(listing, "danci"))
    assert [str(resolved[h]["app_port"]) for h in danci] == ["3000", "3001"]
    if name == "staging":
        assert str(resolved[group_hosts(listing, "easy_erp")[0]]["app_port"]) == "3100"
