"""The collection builds into a tarball that installs and runs on its own, without this checkout."""
import json
import os
import sqlite3
import subprocess
import sys
import tarfile

import pytest

from tests.harness.collection import REPO_ROOT

BIN = os.path.dirname(sys.executable)
DEMO_MIGRATIONS = os.path.join(REPO_ROOT, "examples", "demo_app", "prisma", "migrations")
WORK_DIRS = (".venv", ".build", ".demo", ".git", ".ci", "node_modules")


def run(*argv, **kwargs):
    done = subprocess.run([os.path.join(BIN, argv[0])] + list(argv[1:]), capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, "%s failed:\n%s\n%s" % (argv[0], done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    run("ansible-galaxy", "collection", "build", "--output-path", str(out), REPO_ROOT, cwd=str(out))
    (built,) = out.glob("saferelease-core-*.tar.gz")
    return built


def test_tarball_holds_the_plugins_and_none_of_the_work_files(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "MANIFEST.json" in names
    assert "plugins/modules/prisma_migration_state.py" in names
    assert "plugins/module_utils/database.py" in names
    assert [n for n in names if n.split("/")[0] in WORK_DIRS or "__pycache__" in n] == []


def test_installed_tarball_runs_a_module_without_the_checkout(tarball, tmp_path):
    collections = tmp_path / "collections"
    # Only the temporary path: the checkout's own link must not count as "already installed".
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    run("ansible-galaxy", "collection", "install", "--offline", "-p", str(collections), str(tarball), cwd=str(tmp_path), env=env)
    installed = collections / "ansible_collections" / "saferelease" / "core"
    assert (installed / "plugins" / "modules" / "prisma_migration_state.py").is_file()

    sqlite3.connect(str(tmp_path / "fresh.db")).close()
    args = {"database_url": "file:" + str(tmp_path / "fresh.db"), "migrations_dir": DEMO_MIGRATIONS, "state": "status"}
    results = tmp_path / "results"
    run("ansible", "localhost", "-i", "localhost,", "-c", "local", "-t", str(results),
        "-e", "ansible_python_interpreter=" + sys.executable,
        "-m", "saferelease.core.prisma_migration_state", "-a", json.dumps(args), cwd=str(tmp_path), env=env)
    result = json.loads((results / "localhost").read_text())

    local_migrations = sorted(name for name in os.listdir(DEMO_MIGRATIONS) if os.path.isdir(os.path.join(DEMO_MIGRATIONS, name)))
    assert result["up_to_date"] is False
    assert sorted(result["summary"]["pending"]) == local_migrations
