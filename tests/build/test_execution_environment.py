"""awx/execution-environment.yml turns into an ansible-builder 3 build context that carries the collection."""
import filecmp
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from bindep.depends import Depends

from tests.harness.collection import REPO_ROOT

BIN = os.path.dirname(sys.executable)
AWX_DIR = os.path.join(REPO_ROOT, "awx")
EE_FILE = "awx/execution-environment.yml"
# Where the usage notes in execution-environment.yml build the tarball, relative to the checkout.
TARBALL_DIR = os.path.join(".build", "ee")


def run(*argv, **kwargs):
    done = subprocess.run([os.path.join(BIN, argv[0])] + list(argv[1:]), capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, "%s failed:\n%s\n%s" % (argv[0], done.stdout, done.stderr)
    return done


def stage(containerfile, name):
    """The lines of one build stage (``FROM ... AS name`` up to the next ``FROM``)."""
    match = re.search(r"^FROM \S+ AS %s\n(.*?)(?=^FROM |\Z)" % name, containerfile, re.M | re.S)
    assert match, "no %s stage in the Containerfile" % name
    return match.group(1).splitlines()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A checkout-shaped folder holding awx/ and the collection tarball; ansible-builder create run from it."""
    checkout = tmp_path_factory.mktemp("checkout")
    shutil.copytree(AWX_DIR, str(checkout / "awx"), ignore=shutil.ignore_patterns("__pycache__"))
    out = checkout / TARBALL_DIR
    run("ansible-galaxy", "collection", "build", "--output-path", str(out), REPO_ROOT, cwd=str(checkout))
    (tarball,) = out.glob("saferelease-core-*.tar.gz")
    context = checkout / "context"
    done = run("ansible-builder", "create", "--file", EE_FILE, "--context", str(context), "--output-filename", "Containerfile",
               cwd=str(checkout))
    return dict(tarball=tarball, context=context, output=done.stdout + done.stderr,
                containerfile=(context / "Containerfile").read_text())


def test_definition_is_schema_v3_with_the_requested_dependencies():
    with open(os.path.join(AWX_DIR, "execution-environment.yml")) as handle:
        definition = yaml.safe_load(handle)
    assert definition["version"] == 3
    deps = definition["dependencies"]
    assert deps["ansible_core"] == {"package_pip": "ansible-core>=2.16,<2.20"}
    assert deps["ansible_runner"] == {"package_pip": "ansible-runner"}
    assert (deps["python"], deps["system"], deps["galaxy"]) == ("requirements.txt", "bindep.txt", "requirements.yml")


def test_create_copies_the_dependency_files_and_the_tarball_into_the_context(built):
    assert "No matches" not in built["output"] and "does not exist" not in built["output"]
    build_dir = built["context"] / "_build"
    for name in ("bindep.txt", "requirements.txt", "requirements.yml"):
        assert filecmp.cmp(str(build_dir / name), os.path.join(AWX_DIR, name), shallow=False), name
    (copied,) = (build_dir / "saferelease").iterdir()
    assert copied.name == built["tarball"].name
    assert filecmp.cmp(str(copied), str(built["tarball"]), shallow=False)


def test_containerfile_installs_dependencies_and_the_collection(built):
    containerfile = built["containerfile"]
    assert 'ARG EE_BASE_IMAGE="quay.io/fedora/python-311:latest"' in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.16,<2.20 ansible-runner"' in containerfile

    galaxy = stage(containerfile, "galaxy")
    requirements_install = [i for i, line in enumerate(galaxy) if "ansible-galaxy collection install" in line and "-r requirements.yml" in line]
    own_install = [i for i, line in enumerate(galaxy) if "saferelease/saferelease-core-*.tar.gz" in line]
    assert len(requirements_install) == 1 and len(own_install) == 1
    assert requirements_install[0] < own_install[0]
    assert "--offline" in galaxy[own_install[0]] and "--collections-path /usr/share/ansible/collections" in galaxy[own_install[0]]

    builder = stage(containerfile, "builder")
    assert "COPY _build/requirements.txt requirements.txt" in builder
    assert "COPY _build/bindep.txt bindep.txt" in builder
    assert any("introspect.py introspect" in line and "--user-pip=requirements.txt" in line and "--user-bindep=bindep.txt" in line
               for line in builder)

    final = stage(containerfile, "final")
    assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in final
    assert any(line.startswith("RUN /output/scripts/install-from-bindep") for line in final)


def test_collection_install_step_works_offline_in_the_galaxy_stage_layout(built, tmp_path):
    """Runs the generated RUN line where the galaxy stage runs it (in a copy of _build), into a temporary path."""
    (line,) = [line for line in stage(built["containerfile"], "galaxy") if "saferelease-core-" in line]
    command = line[len("RUN "):].replace("/usr/share/ansible/collections", str(tmp_path / "collections"))
    workdir = tmp_path / "build"
    shutil.copytree(str(built["context"] / "_build"), str(workdir))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), PATH=BIN + os.pathsep + os.environ["PATH"])
    done = subprocess.run(["bash", "-c", command], cwd=str(workdir), env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = tmp_path / "collections" / "ansible_collections" / "saferelease" / "core"
    assert (installed / "MANIFEST.json").is_file()
    assert (installed / "plugins" / "modules" / "db_backup.py").is_file()


@pytest.mark.parametrize("profile, packages", [
    ("platform:rpm", ["mariadb", "postgresql", "zstd", "sqlite"]),
    ("platform:dpkg", ["mariadb-client", "postgresql-client", "zstd", "sqlite3"]),
])
def test_bindep_lists_the_database_and_compression_clients(profile, packages):
    with open(os.path.join(AWX_DIR, "bindep.txt")) as handle:
        depends = Depends(handle.read())
    assert sorted(depends.list_all_packages(depends.active_rules([profile]))) == sorted(packages)


def test_python_requirements_match_the_runtime_ones_without_ansible_core():
    def requirements(path):
        with open(path) as handle:
            return sorted(line.strip() for line in handle if line.strip() and not line.startswith("#"))
    runtime = [req for req in requirements(os.path.join(REPO_ROOT, "requirements.txt")) if not req.startswith("ansible-core")]
    assert requirements(os.path.join(AWX_DIR, "requirements.txt")) == runtime
