"""The real Prisma CLI (tests/compat/prisma-cli, installed by ``make prisma-cli``) on SQLite projects.

A :class:`PrismaProject` is a throwaway app folder laid out as Prisma expects: ``prisma.config.ts``
(``engine: "js"`` + the better-sqlite3 driver adapter), ``prisma/schema.prisma``,
``prisma/migrations/`` and a ``node_modules`` link to the pinned CLI. ``status()``, ``deploy()`` and
``resolve_applied()`` run the CLI with that folder as working directory and ``DATABASE_URL`` pointing
at the project's SQLite file; ``module()`` runs ``saferelease.core.prisma_migration_state`` on the
same database and migrations folder.

``prisma migrate status`` is read from the schema engine's own answer: with
``DEBUG=prisma:migrate:status`` the CLI logs the JSON of ``diagnoseMigrationHistory`` (failed and
edited migration names, whether the table exists, the history diagnostic) and the migration folders
it found. The human text and the exit code are kept too and checked against that JSON.
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid

from tests.harness.collection import COLLECTIONS_PATH, REPO_ROOT, ensure_collection_link

CLI_DIR = os.path.join(REPO_ROOT, "tests", "compat", "prisma-cli")
NODE_MODULES = os.path.join(CLI_DIR, "node_modules")
PRISMA_BIN = os.path.join(NODE_MODULES, ".bin", "prisma")
STAMP = os.path.join(NODE_MODULES, ".installed")
CONFIG_TEMPLATE = os.path.join(CLI_DIR, "prisma.config.ts")
SCHEMA_TEMPLATE = os.path.join(CLI_DIR, "schema.prisma")
DEMO_MIGRATIONS = os.path.join(REPO_ROOT, "examples", "demo_app", "prisma", "migrations")
PRISMA_VERSION = "6.19.3"
MODULE = "saferelease.core.prisma_migration_state"
# Any engine download would go here and fail at once: the point is that none is attempted.
NO_DOWNLOAD_MIRROR = "http://127.0.0.1:9/no-engine-downloads"
CLI_TIMEOUT = 120

_STATUS_DEBUG = re.compile(r"prisma:migrate:status (\{\n.*?\n\})", re.S)
_APPLIED_TREE = re.compile(r"^\s*\u2514\u2500 ([^/\s]+)/\s*$", re.M)
_ERROR_CODE = re.compile(r"\b(P\d{4})\b")


class PrismaCliMissing(Exception):
    pass


def cli_problem():
    """None when the pinned CLI is installed and usable, else what is wrong (naming ``make prisma-cli``)."""
    if shutil.which("node") is None:
        return "node is not installed; the Prisma compatibility tests need Node.js and the CLI from `make prisma-cli`."
    if not os.path.exists(PRISMA_BIN) or not os.path.exists(STAMP):
        return ("The Prisma CLI is not installed in %s (no node_modules/.bin/prisma or node_modules/.installed). "
                "Run `make prisma-cli` first." % CLI_DIR)
    with open(os.path.join(NODE_MODULES, "prisma", "package.json")) as handle:
        version = json.load(handle)["version"]
    if version != PRISMA_VERSION:
        return "tests/compat/prisma-cli has prisma %s, the tests pin %s. Run `make prisma-cli`." % (version, PRISMA_VERSION)
    lock = os.path.join(CLI_DIR, "package-lock.json")
    if os.path.getmtime(STAMP) < os.path.getmtime(lock):
        return "tests/compat/prisma-cli/package-lock.json is newer than the installed CLI. Run `make prisma-cli`."
    return None


def require_cli():
    problem = cli_problem()
    if problem:
        raise PrismaCliMissing(problem)


class CliRun(object):
    """One Prisma CLI call: exit code, stdout, stderr, and the ``P####`` error codes it printed."""

    def __init__(self, args, returncode, stdout, stderr, elapsed=None):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    @property
    def output(self):
        return self.stdout + self.stderr

    @property
    def error_codes(self):
        return _ERROR_CODE.findall(self.output)

    def __repr__(self):
        return "prisma %s -> exit %s\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(self.args), self.returncode, self.stdout[-3000:], self.stderr[-3000:])


class PrismaStatus(object):
    """``prisma migrate status`` as the schema engine diagnosed it, plus its text and exit code.

    ``pending``: migrations Prisma says "have not yet been applied"; ``failed``: its
    ``failedMigrationNames``; ``edited``: its ``editedMigrationNames`` (status never prints these);
    ``up_to_date``: exit code 0 with "Database schema is up to date!".
    """

    def __init__(self, run):
        self.run = run
        blocks = []
        for match in _STATUS_DEBUG.finditer(run.stderr):
            try:
                blocks.append(json.loads(match.group(1)))
            except ValueError:
                raise AssertionError("cannot read the debug JSON of prisma migrate status: %r" % run)
        diagnose = [b["diagnoseResult"] for b in blocks if "diagnoseResult" in b]
        listed = [b["listMigrationDirectoriesResult"] for b in blocks if "listMigrationDirectoriesResult" in b]
        self.returncode = run.returncode
        self.error = run.error_codes[0] if run.error_codes else None
        if not diagnose and self.error and run.returncode != 0:
            # Prisma stopped before diagnosing (e.g. P1014 on a database without _prisma_migrations).
            diagnose = ['{"editedMigrationNames": [], "failedMigrationNames": [], "hasMigrationsTable": null, "history": null}']
            listed = listed or [dict(migrations=[])]
        if len(diagnose) != 1 or len(listed) != 1:
            raise AssertionError("prisma migrate status did not log its diagnosis (DEBUG=prisma:migrate:status): %r" % run)
        self.diagnosis = json.loads(diagnose[0])
        self.local = list(listed[0]["migrations"])
        self.has_migrations_table = self.diagnosis["hasMigrationsTable"]
        self.failed = list(self.diagnosis["failedMigrationNames"])
        self.edited = list(self.diagnosis["editedMigrationNames"])
        history = self.diagnosis.get("history") or {}
        self.history = history.get("diagnostic")
        self.pending = list(history.get("unappliedMigrationNames") or [])
        self.db_only = list(history.get("unpersistedMigrationNames") or [])
        self.up_to_date = run.returncode == 0 and "Database schema is up to date!" in run.stdout
        self._check_text()

    def _check_text(self):
        """The printed report must say what the diagnosis says (else the parsing is wrong, not Prisma)."""
        text = self.run.output
        if self.history == "databaseIsBehind":
            block = text.split("have not yet been applied:", 1)
            printed = block[1].strip().split("\n\n", 1)[0].split() if len(block) == 2 else None
            assert printed == self.pending and self.returncode != 0, self.run
        if self.failed and self.history != "databaseIsBehind":
            block = text.split("have failed:", 1)
            printed = block[1].strip().split("\n\n", 1)[0].split() if len(block) == 2 else None
            assert printed == self.failed and self.returncode != 0, self.run
        if self.up_to_date:
            # The CLI prints "up to date" even when the engine found migrations that exist only in the
            # database (history "migrationsDirectoryIsBehind"); it never lists those.
            assert not self.pending and not self.failed, self.run
            assert self.history in (None, "migrationsDirectoryIsBehind"), self.run

    def __repr__(self):
        return "PrismaStatus(pending=%s, failed=%s, edited=%s, history=%s, error=%s, rc=%s)\n%r" % (
            self.pending, self.failed, self.edited, self.history, self.error, self.returncode, self.run)


class PrismaProject(object):
    """A throwaway Prisma app folder on one SQLite database file."""

    def __init__(self, root, database_path=None, timestamp_format=None):
        require_cli()
        self.root = str(root)
        self.prisma_dir = os.path.join(self.root, "prisma")
        self.migrations = os.path.join(self.prisma_dir, "migrations")
        os.makedirs(self.migrations)
        os.symlink(NODE_MODULES, os.path.join(self.root, "node_modules"))
        shutil.copy(CONFIG_TEMPLATE, os.path.join(self.root, "prisma.config.ts"))
        shutil.copy(SCHEMA_TEMPLATE, os.path.join(self.prisma_dir, "schema.prisma"))
        shutil.copy(os.path.join(DEMO_MIGRATIONS, "migration_lock.toml"), self.migrations)
        self.db_path = str(database_path or os.path.join(self.root, "dev.db"))
        self.url = "file:" + self.db_path
        self.timestamp_format = timestamp_format
        self.home = os.path.join(self.root, ".home")
        os.makedirs(self.home)

    # --- migrations folder ---------------------------------------------------------------

    def add(self, name, sql=None):
        """Add a migration: a copy of the demo app's ``name`` when ``sql`` is None, else ``sql`` (str or bytes)."""
        target = os.path.join(self.migrations, name)
        if sql is None:
            shutil.copytree(os.path.join(DEMO_MIGRATIONS, name), target)
        else:
            os.makedirs(target)
            self.write(name, sql)
        return target

    def write(self, name, sql):
        data = sql if isinstance(sql, bytes) else sql.encode("utf-8")
        with open(os.path.join(self.migrations, name, "migration.sql"), "wb") as handle:
            handle.write(data)

    def read(self, name):
        with open(os.path.join(self.migrations, name, "migration.sql"), "rb") as handle:
            return handle.read()

    def copy_migrations_to(self, other):
        """Give ``other`` the same migrations folder (byte for byte)."""
        shutil.rmtree(other.migrations)
        shutil.copytree(self.migrations, other.migrations)

    # --- the Prisma CLI --------------------------------------------------------------------

    def env(self, debug=None):
        env = dict(os.environ)
        for key in list(env):
            if key.startswith(("PRISMA_", "npm_")) or key in ("DEBUG", "NODE_OPTIONS"):
                env.pop(key)
        env.update(
            DATABASE_URL=self.url,
            CHECKPOINT_DISABLE="1",
            PRISMA_HIDE_UPDATE_MESSAGE="1",
            PRISMA_GENERATE_SKIP_AUTOINSTALL="1",
            PRISMA_ENGINES_MIRROR=NO_DOWNLOAD_MIRROR,
            XDG_CACHE_HOME=os.path.join(self.home, "cache"),
            XDG_CONFIG_HOME=os.path.join(self.home, "config"),
            NO_COLOR="1",
            FORCE_COLOR="0",
            DEBUG_COLORS="0",
        )
        if self.timestamp_format:
            env["SQLITE_TIMESTAMP_FORMAT"] = self.timestamp_format
        if debug:
            env["DEBUG"] = debug
        return env

    def cli(self, *args, **kwargs):
        """Run ``prisma ARGS`` in the project; never reads stdin. Fails if Prisma reached for an engine download."""
        import time
        started = time.monotonic()
        done = subprocess.run([PRISMA_BIN] + list(args), cwd=self.root, env=self.env(kwargs.get("debug")),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
        run = CliRun(args, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        if "no-engine-downloads" in run.output or "binaries.prisma.sh" in run.output:
            raise AssertionError("prisma tried to download an engine: %r" % run)
        if "Loaded Prisma config from prisma.config.ts" not in run.output or (
                args[:1] == ("migrate",) and "using driver adapter" not in run.output
                and not run.error_codes):
            raise AssertionError("prisma did not run through prisma.config.ts and the driver adapter: %r" % run)
        return run

    def status(self):
        return PrismaStatus(self.cli("migrate", "status", debug="prisma:migrate:status"))

    def deploy(self, expect_ok=True):
        """``prisma migrate deploy``; ``run.applied`` lists what it applied (from its report)."""
        run = self.cli("migrate", "deploy")
        if "No pending migrations to apply." in run.stdout:
            run.applied = []
        elif "have been applied:" in run.stdout:
            run.applied = _APPLIED_TREE.findall(run.stdout.split("have been applied:", 1)[1])
        else:
            run.applied = None
        if expect_ok:
            assert run.returncode == 0 and run.applied is not None, run
        return run

    def resolve_applied(self, name, expect_ok=True):
        run = self.cli("migrate", "resolve", "--applied", name)
        if expect_ok:
            assert run.returncode == 0 and ("Migration %s marked as applied." % name) in run.stdout, run
        return run

    # --- the module ----------------------------------------------------------------------

    def module(self, state="status", through_ansible=False, check=False, **args):
        """``prisma_migration_state`` on this project; ``through_ansible`` uses ansible-playbook (slower)."""
        params = dict(database_url=self.url, migrations_dir=self.migrations, state=state)
        params.update(args)
        if through_ansible:
            from tests.harness.ansible_run import run_module
            return run_module(MODULE, params, check=check)
        return run_module_direct(params, check=check)

    # --- the database ----------------------------------------------------------------------

    def sql(self, script):
        conn = sqlite3.connect(self.db_path, isolation_level=None)
        try:
            conn.executescript(script)
        finally:
            conn.close()

    def query(self, statement):
        conn = sqlite3.connect(self.db_path)
        try:
            return conn.execute(statement).fetchall()
        finally:
            conn.close()

    def rows(self):
        """``_prisma_migrations`` rows in Prisma's order, each a dict with the SQLite storage type of every column."""
        columns = ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at",
                   "applied_steps_count")
        select = ", ".join(columns + tuple("typeof(%s)" % c for c in columns))
        result = []
        for row in self.query("SELECT %s FROM _prisma_migrations ORDER BY started_at, rowid" % select):
            item = dict(zip(columns, row[:len(columns)]))
            item["types"] = dict(zip(columns, row[len(columns):]))
            result.append(item)
        return result

    def user_schema(self):
        """Tables and indexes other than Prisma's own, with their SQL."""
        return self.query("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                          "AND name != '_prisma_migrations' ORDER BY type, name")


def run_module_direct(params, check=False):
    """The module's AnsibleModule entry point on its own (as Ansible runs it on the target, minus the executor)."""
    ensure_collection_link()
    args = dict(params, _ansible_check_mode=check)
    done = subprocess.run([sys.executable, "-m", "ansible_collections.saferelease.core.plugins.modules.prisma_migration_state"],
                          input=json.dumps(dict(ANSIBLE_MODULE_ARGS=args)), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS_PATH), timeout=300, check=False)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        raise AssertionError("the module printed no JSON (exit %s):\n%s\n%s" % (done.returncode, done.stdout, done.stderr))
    result.setdefault("failed", False)
    return result


def is_uuid(value):
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False


def statuses(result):
    """``{name: status}`` from a module result."""
    return dict((m["name"], m["status"]) for m in result["migrations"])
