"""db_backup throughput on a generated database: the module vs the raw dump pipelines vs the community modules.

One MariaDB and one PostgreSQL server (tests/harness/servers.py) each get a database of about --size-mb
MiB (four tables: customers, orders with a secondary index, documents with text bodies, attachments with a
BLOB/bytea column; plus a view, a routine and a trigger). On that same database, in the same run:

backup   raw pipeline      mariadb-dump --single-transaction --routines --triggers --events | zstd -T0 -3 > file
                           pg_dump -Fc > file, pg_dump -Fc -Z0 | zstd -T0 -3 > file, pg_dump -Fd -j N
         module            saferelease.core.db_backup state=present, verify false (custom and directory format)
         community         community.mysql.mysql_db / community.postgresql.postgresql_db state=dump
verify   module            saferelease.core.db_backup state=verified (checksums + trial restore + row counts)
restore  raw pipeline      zstd -dc file | mariadb db, pg_restore -d db file, zstd -dc file | pg_restore -d db,
                           pg_restore -j N -d db dir
         module            saferelease.core.db_backup state=restored, confirm true
         community         community.mysql.mysql_db state=import / community.postgresql.postgresql_db state=restore

Each tool restores the dump it wrote itself (the module's MariaDB dump carries --hex-blob and its other
options, so it is not byte-for-byte the raw one). Every restore goes into a fresh, empty database, and its
row counts are checked against the source afterwards (outside the timing). The module's emergency snapshot before a restore is therefore of an empty
database; its cost is reported separately (taken from the snapshot's manifest). Over a live database it
costs about one backup.

MB/s always means the source database's size (MariaDB: SUM(data_length + index_length) from
information_schema after ANALYZE TABLE; PostgreSQL: pg_database_size) in 10^6 bytes, divided by seconds -
the measure the module itself uses for throughput_mb_s. For the module the seconds are the module's own
duration_s (the dump with its row counts, checksums and fsyncs; for a restore the load plus the row-count
check afterwards); the ansible-playbook wall time of the whole task is shown beside it. The ratio compares
the module with the fastest raw pipeline writing the same kind of artefact (one compressed file, or a
directory dumped with parallel jobs); the acceptance target is 0.9.

The machine may be busy with other work, so every backup and restore is run --runs times (default 3), the
tools in a rotating order, and the best run counts (medians are in the JSON too). The verification runs once.

The community collections come from PyPI's ``ansible`` package (requirements-bench.txt; ``make bench``
installs it). Without them the community rows are skipped.

    .venv/bin/python bench/backup.py [--size-mb 1024] [--runs 3] [--engines mariadb,postgresql] [--jobs 2]
                                     [--no-directory] [--no-community]

Writes bench/results/backup.json. Needs a few GB free in the temporary directory (the databases, every dump).
"""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.harness.ansible_run import run_module  # noqa: E402
from tests.harness.collection import REPO_ROOT, ensure_collection_link  # noqa: E402
from tests.harness.servers import MariaDBServer, PostgresServer  # noqa: E402

MODULE = "saferelease.core.db_backup"
DB = "bench"
SHARES = (("customers", 0.05), ("orders", 0.35), ("documents", 0.35), ("attachments", 0.25))
BATCH_ROWS = dict(customers=100000, orders=200000, documents=12000, attachments=8000)
MB = 1e6

MARIADB_SCHEMA = (
    "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(120) NOT NULL, "
    "created_at DATETIME NOT NULL, KEY idx_customers_email (email)) ENGINE=InnoDB",
    "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(16) NOT NULL, "
    "amount DECIMAL(12,2) NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NULL, note VARCHAR(255), "
    "KEY idx_orders_customer (customer_id, created_at)) ENGINE=InnoDB",
    "CREATE TABLE documents (id INT PRIMARY KEY, title VARCHAR(200) NOT NULL, body MEDIUMTEXT NOT NULL, "
    "checksum CHAR(32) NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE attachments (id INT PRIMARY KEY, document_id INT NOT NULL, mime VARCHAR(64) NOT NULL, "
    "data MEDIUMBLOB NOT NULL, KEY idx_attachments_document (document_id)) ENGINE=InnoDB",
    "CREATE VIEW paid_orders AS SELECT id, customer_id, amount FROM orders WHERE status = 'paid'",
    "CREATE FUNCTION order_total(c INT) RETURNS DECIMAL(14,2) READS SQL DATA "
    "RETURN (SELECT COALESCE(SUM(amount), 0) FROM orders WHERE customer_id = c)",
    "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW SET NEW.updated_at = NOW()",
)

# {a} and {b}: the first and last id of a batch; {customers}: how many customers exist.
MARIADB_FILL = dict(
    customers="INSERT INTO customers SELECT seq, CONCAT('Customer ', seq), CONCAT('user', seq, '@example.com'), "
              "NOW() - INTERVAL seq MINUTE FROM seq_{a}_to_{b}",
    orders="INSERT INTO orders SELECT seq, 1 + seq % {customers}, ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'cancelled'), "
           "ROUND(RAND(seq) * 1000, 2), NOW() - INTERVAL seq SECOND, NULL, CONCAT('order ', seq, ' ', MD5(seq)) "
           "FROM seq_{a}_to_{b}",
    documents="INSERT INTO documents SELECT seq, CONCAT('Document ', seq, ' ', LEFT(SHA1(seq), 12)), "
              "CONCAT(REPEAT(CONCAT('Lorem ipsum dolor sit amet, consectetur adipiscing elit ', seq, '. '), 12), "
              "REPEAT(CONCAT(MD5(seq), ' ', SHA1(seq * 7), ' ', MD5(seq * 13), ' '), 12)), MD5(seq) FROM seq_{a}_to_{b}",
    attachments="INSERT INTO attachments SELECT seq, 1 + seq % 1000, ELT(1 + seq % 3, 'image/png', 'application/pdf', "
                "'text/plain'), CONCAT(RANDOM_BYTES(1024), RANDOM_BYTES(1024), REPEAT(CHAR(seq % 256), 1024)) "
                "FROM seq_{a}_to_{b}",
)

POSTGRES_SCHEMA = (
    "CREATE TABLE customers (id integer PRIMARY KEY, name varchar(100) NOT NULL, email varchar(120) NOT NULL, "
    "created_at timestamptz NOT NULL)",
    "CREATE INDEX idx_customers_email ON customers (email)",
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer NOT NULL, status varchar(16) NOT NULL, "
    "amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz, note varchar(255))",
    "CREATE INDEX idx_orders_customer ON orders (customer_id, created_at)",
    "CREATE TABLE documents (id integer PRIMARY KEY, title varchar(200) NOT NULL, body text NOT NULL, checksum char(32) NOT NULL)",
    "CREATE TABLE attachments (id integer PRIMARY KEY, document_id integer NOT NULL, mime varchar(64) NOT NULL, data bytea NOT NULL)",
    "CREATE INDEX idx_attachments_document ON attachments (document_id)",
    "CREATE VIEW paid_orders AS SELECT id, customer_id, amount FROM orders WHERE status = 'paid'",
    "CREATE FUNCTION order_total(c integer) RETURNS numeric LANGUAGE sql STABLE AS "
    "'SELECT COALESCE(SUM(amount), 0) FROM orders WHERE customer_id = c'",
    "CREATE FUNCTION orders_touch() RETURNS trigger LANGUAGE plpgsql AS "
    "'BEGIN NEW.updated_at := now(); RETURN NEW; END'",
    "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_touch()",
)

POSTGRES_FILL = dict(
    customers="INSERT INTO customers SELECT s, 'Customer ' || s, 'user' || s || '@example.com', now() - s * interval '1 minute' "
              "FROM generate_series({a}, {b}) s",
    orders="INSERT INTO orders SELECT s, 1 + s % {customers}, (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + s % 4], "
           "round((random() * 1000)::numeric, 2), now() - s * interval '1 second', NULL, 'order ' || s || ' ' || md5(s::text) "
           "FROM generate_series({a}, {b}) s",
    documents="INSERT INTO documents SELECT s, 'Document ' || s || ' ' || left(md5((s * 3)::text), 12), "
              "repeat('Lorem ipsum dolor sit amet, consectetur adipiscing elit ' || s || '. ', 12) || "
              "repeat(md5(s::text) || ' ' || md5((s * 7)::text) || md5((s * 11)::text) || ' ' || md5((s * 13)::text) || ' ', 12), "
              "md5(s::text) FROM generate_series({a}, {b}) s",
    attachments="INSERT INTO attachments SELECT s, 1 + s % 1000, (ARRAY['image/png', 'application/pdf', 'text/plain'])[1 + s % 3], "
                "(SELECT decode(string_agg(md5(random()::text || g::text), ''), 'hex') FROM generate_series(1, 128 + 0 * s) g) "
                "|| decode(repeat(lpad(to_hex(s % 256), 2, '0'), 1024), 'hex') FROM generate_series({a}, {b}) s",
)


def shell(command, env=None):
    """Run a bash pipeline (pipefail); return its wall time. Raises on failure."""
    started = time.monotonic()
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (command, done.returncode, done.stderr.decode(errors="replace")[-2000:]))
    return elapsed


def timed_module(module, args):
    started = time.monotonic()
    result = run_module(module, args)
    elapsed = time.monotonic() - started
    if result.get("failed"):
        raise RuntimeError("%s %s failed: %s" % (module, args.get("state"), result.get("msg")))
    return elapsed, result


def path_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


class Engine(object):
    """What differs between MariaDB and PostgreSQL: filling, sizes, counts and the raw commands."""

    def __init__(self, server, scratch):
        self.server = server
        self.scratch = scratch

    def fill(self, size_bytes):
        """Create the schema and insert batches until each table holds its share of ``size_bytes``."""
        self.server.create_database(DB)
        for statement in self.schema:
            self.execute(statement)
        customers = 0
        for table, share in SHARES:
            next_id, batch = 1, BATCH_ROWS[table]
            while self.table_size(table) < share * size_bytes:
                self.execute(self.fill_sql[table].format(a=next_id, b=next_id + batch - 1, customers=max(customers, 1)))
                next_id += batch
            if table == "customers":
                customers = next_id - 1
        self.settle()

    def execute(self, statement, database=DB):
        return self.server.execute(statement, database)

    def drop(self, name):
        self.server.drop_database(name)

    def url(self, database):
        return self.server.url(database)

    def row_counts(self, database):
        return dict((table, int(self.execute("SELECT COUNT(*) FROM %s" % table, database)[0][0])) for table, _share in SHARES)


class MariaDB(Engine):
    name = "mariadb"
    schema = MARIADB_SCHEMA
    fill_sql = MARIADB_FILL

    def __init__(self, server, scratch):
        super(MariaDB, self).__init__(server, scratch)
        self.defaults = os.path.join(scratch, "bench-my.cnf")
        with os.fdopen(os.open(self.defaults, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write("[client]\nuser=root\nhost=127.0.0.1\nport=%d\nprotocol=tcp\nmax-allowed-packet=1G\n" % server.port)
        self.env = dict(os.environ, LC_ALL="C")

    def table_size(self, table):
        self.execute("ANALYZE TABLE %s" % table)
        return int(self.execute("SELECT data_length + index_length FROM information_schema.tables "
                                "WHERE table_schema = '%s' AND table_name = '%s'" % (DB, table))[0][0])

    def settle(self):
        for table, _share in SHARES:
            self.execute("ANALYZE TABLE %s" % table)

    def database_size(self):
        return int(self.execute("SELECT SUM(data_length + index_length) FROM information_schema.tables "
                                "WHERE table_schema = '%s'" % DB)[0][0])

    def create(self, name):
        self.server.create_database(name)

    def raw_backups(self, out_dir, options):
        """(tool, kind, artefact, command) of every raw backup pipeline."""
        dump = os.path.join(out_dir, "raw.sql.zst")
        command = "mariadb-dump --defaults-extra-file=%s --single-transaction --routines --triggers --events %s | zstd -q -T0 -3 > %s" % (
            shlex.quote(self.defaults), DB, shlex.quote(dump))
        return [("raw: mariadb-dump | zstd -T0 -3", "file", dump, command)]

    def raw_restores(self, artefacts, options):
        dump = artefacts["raw: mariadb-dump | zstd -T0 -3"]
        command = "zstd -q -dc %s | mariadb --defaults-extra-file=%s --binary-mode {db}" % (shlex.quote(dump), shlex.quote(self.defaults))
        return [("raw: zstd -dc | mariadb", "file", command)]

    def module_backups(self, options):
        return [("module: db_backup present", "file", {})]

    def community_backup(self, out_dir):
        dump = os.path.join(out_dir, "community.sql.zst")
        args = dict(name=DB, state="dump", target=dump, login_host="127.0.0.1", login_port=self.server.port, login_user="root",
                    login_password="", single_transaction=True, dump_extra_args="--routines --triggers --events")
        return "community: mysql_db dump", "community.mysql.mysql_db", args, dump

    def community_restore(self, dump, database):
        args = dict(name=database, state="import", target=dump, login_host="127.0.0.1", login_port=self.server.port,
                    login_user="root", login_password="")
        return "community: mysql_db import", "community.mysql.mysql_db", args


class PostgreSQL(Engine):
    name = "postgresql"
    schema = POSTGRES_SCHEMA
    fill_sql = POSTGRES_FILL

    def __init__(self, server, scratch):
        super(PostgreSQL, self).__init__(server, scratch)
        passfile = os.path.join(scratch, "bench-pgpass")
        with os.fdopen(os.open(passfile, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write("*:*:*:%s:%s\n" % (server.user, server.password))
        self.env = dict(os.environ, LC_ALL="C", PGPASSFILE=passfile, PGHOST="127.0.0.1", PGPORT=str(server.port), PGUSER=server.user)

    def table_size(self, table):
        return int(self.execute("SELECT pg_total_relation_size('%s')" % table)[0][0])

    def settle(self):
        self.execute("VACUUM (FREEZE, ANALYZE)")

    def database_size(self):
        return int(self.execute("SELECT pg_database_size('%s')" % DB)[0][0])

    def create(self, name):
        self.server.execute('CREATE DATABASE "%s" TEMPLATE template0' % name)

    def raw_backups(self, out_dir, options):
        """(tool, kind, artefact, command) of every raw backup pipeline."""
        gz = os.path.join(out_dir, "raw.pgdump")
        zst = os.path.join(out_dir, "raw.pgdump.zst")
        runs = [("raw: pg_dump -Fc", "file", gz, "pg_dump -Fc -f %s %s" % (shlex.quote(gz), DB)),
                ("raw: pg_dump -Fc -Z0 | zstd -T0 -3", "file", zst, "pg_dump -Fc -Z0 %s | zstd -q -T0 -3 > %s" % (DB, shlex.quote(zst)))]
        if options.directory:
            folder = os.path.join(out_dir, "raw.pgdir")
            runs.append(("raw: pg_dump -Fd -j %d" % options.jobs, "directory", folder,
                         "pg_dump -Fd -j %d -f %s %s" % (options.jobs, shlex.quote(folder), DB)))
        return runs

    def raw_restores(self, artefacts, options):
        runs = [("raw: pg_restore -d", "file", "pg_restore -d {db} %s" % shlex.quote(artefacts["raw: pg_dump -Fc"])),
                ("raw: zstd -dc | pg_restore -d", "file",
                 "zstd -q -dc %s | pg_restore -d {db}" % shlex.quote(artefacts["raw: pg_dump -Fc -Z0 | zstd -T0 -3"]))]
        if options.directory:
            folder = artefacts["raw: pg_dump -Fd -j %d" % options.jobs]
            runs.append(("raw: pg_restore -j %d -d" % options.jobs, "directory",
                         "pg_restore -j %d -d {db} %s" % (options.jobs, shlex.quote(folder))))
        return runs

    def module_backups(self, options):
        runs = [("module: db_backup present", "file", {})]
        if options.directory:
            runs.append(("module: db_backup present, directory -j %d" % options.jobs, "directory",
                         dict(pg_format="directory", jobs=options.jobs)))
        return runs

    def community_backup(self, out_dir):
        dump = os.path.join(out_dir, "community.pgc")
        args = dict(name=DB, state="dump", target=dump, login_host="127.0.0.1", login_port=self.server.port,
                    login_user=self.server.user, login_password=self.server.password)
        return "community: postgresql_db dump", "community.postgresql.postgresql_db", args, dump

    def community_restore(self, dump, database):
        args = dict(name=database, state="restore", target=dump, login_host="127.0.0.1", login_port=self.server.port,
                    login_user=self.server.user, login_password=self.server.password)
        return "community: postgresql_db restore", "community.postgresql.postgresql_db", args


def community_available():
    try:
        import ansible_collections.community.mysql  # noqa: F401 pylint: disable=unused-import
        import ansible_collections.community.postgresql  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        return False
    return True


def check_counts(engine, database, expected):
    counts = engine.row_counts(database)
    if counts != expected:
        raise RuntimeError("%s: %s restored %r, the source has %r" % (engine.name, database, counts, expected))


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


class Timings(object):
    """Every run of every tool, in the order first measured; ``rows()`` summarises them (best run counts)."""

    def __init__(self, size):
        self.size = size
        self.tools = {}

    def add(self, phase, tool, kind, seconds, wall=None, artefact_bytes=None, **extra):
        entry = self.tools.setdefault((phase, tool), dict(phase=phase, tool=tool, kind=kind, seconds_runs=[], wall_runs=[]))
        entry["seconds_runs"].append(round(seconds, 3))
        entry["wall_runs"].append(round(wall if wall is not None else seconds, 3))
        if artefact_bytes:
            entry["artefact_mb"] = round(artefact_bytes / MB, 1)
        for key, value in extra.items():
            entry.setdefault(key + "_runs", []).append(value)
        print("  %-48s %7.1f s%s" % (tool, seconds, "" if wall is None else " (wall %.1f s)" % wall), flush=True)

    def rows(self):
        rows = []
        for entry in self.tools.values():
            entry = dict(entry)
            entry["seconds"] = min(entry["seconds_runs"])
            entry["median_s"] = round(statistics.median(entry["seconds_runs"]), 3)
            entry["wall_s"] = min(entry["wall_runs"])
            entry["mb_s"] = round(self.size / MB / entry["seconds"], 2)
            entry["median_mb_s"] = round(self.size / MB / entry["median_s"], 2)
            entry.setdefault("artefact_mb", None)
            rows.append(entry)
        for entry in rows:
            if not entry["tool"].startswith("module:"):
                continue
            phase = "restore" if entry["phase"] == "verify" else entry["phase"]
            raws = [r for r in rows if r["phase"] == phase and r["kind"] == entry["kind"] and r["tool"].startswith("raw:")]
            if raws:
                best = max(raws, key=lambda r: r["mb_s"])
                entry["raw_reference"] = best["tool"]
                entry["vs_raw"] = round(entry["mb_s"] / best["mb_s"], 3)
                entry["vs_raw_median"] = round(entry["median_mb_s"] / max(r["median_mb_s"] for r in raws), 3)
                entry["vs_raw_wall"] = round(best["seconds"] / entry["wall_s"], 3)
        return rows


def rotated(items, turn):
    """``items`` starting at position ``turn``: each round measures the tools in another order."""
    items = list(items)
    turn %= max(len(items), 1)
    return items[turn:] + items[:turn]


def bench_engine(engine, options, results_dir):
    """Every backup, verification and restore for one engine; returns the figures."""
    t0 = time.monotonic()
    engine.fill(options.size_mb * 1024 * 1024)
    fill_s = time.monotonic() - t0
    size = engine.database_size()
    counts = engine.row_counts(DB)
    print("%s: %.1f MB in %s, filled in %.0f s" % (engine.name, size / MB, counts, fill_s), flush=True)
    out_dir = os.path.join(results_dir, engine.name)
    dest_dir = os.path.join(out_dir, "backups")
    os.makedirs(out_dir)
    timings = Timings(size)
    use_community = community_available() and not options.no_community
    raw_backups = engine.raw_backups(out_dir, options)
    artefacts = dict((tool, artefact) for tool, _kind, artefact, _command in raw_backups)
    community = engine.community_backup(out_dir) if use_community else None
    module_backups = {}

    def raw_backup(plan):
        tool, kind, artefact, command = plan

        def run(turn):
            remove(artefact)
            seconds = shell(command, engine.env)
            timings.add("backup", tool, kind, seconds, artefact_bytes=path_size(artefact))
        return run

    def module_backup(plan):
        tool, kind, extra = plan

        def run(turn):
            name = "bench-%s-%d" % (kind, turn)
            wall, result = timed_module(MODULE, dict(database_url=engine.url(DB), dest_dir=dest_dir, name=name, verify=False, **extra))
            if kind in module_backups:
                remove(os.path.join(dest_dir, module_backups[kind]))
            module_backups[kind] = name
            timings.add("backup", tool, kind, result["duration_s"], wall, result["size_bytes"], module_mb_s=result.get("throughput_mb_s"))
        return run

    def community_backup(turn):
        tool, module, args, dump = community
        remove(dump)
        wall, _result = timed_module(module, args)
        timings.add("backup", tool, "file", wall, wall, path_size(dump))

    jobs = [raw_backup(plan) for plan in raw_backups] + [module_backup(plan) for plan in engine.module_backups(options)]
    jobs += [community_backup] if community else []
    for turn in range(options.runs):
        for job in rotated(jobs, turn):
            job(turn)

    for kind, name in module_backups.items():
        wall, result = timed_module(MODULE, dict(database_url=engine.url(DB), dest_dir=dest_dir, name=name, state="verified",
                                                 jobs=options.jobs))
        timings.add("verify", "module: db_backup verified" + (", directory" if kind == "directory" else ""), kind,
                    result["duration_s"], wall, trial_restore_s=result["verification"].get("duration_s"))

    def raw_restore(plan):
        tool, kind, command = plan

        def run(turn):
            database = "restore_raw_%d" % turn
            engine.create(database)
            seconds = shell(command.format(db=database), engine.env)
            check_counts(engine, database, counts)
            engine.drop(database)
            timings.add("restore", tool, kind, seconds)
        return run

    def module_restore(kind, name):
        def run(turn):
            database = "restore_module_%s_%d" % (kind, turn)
            engine.create(database)
            wall, result = timed_module(MODULE, dict(database_url=engine.url(database), dest_dir=dest_dir, name=name, state="restored",
                                                     confirm=True, jobs=options.jobs))
            check_counts(engine, database, counts)
            engine.drop(database)
            with open(os.path.join(result["emergency_backup"]["path"], "manifest.json")) as handle:
                snapshot_s = json.load(handle)["duration_s"]
            remove(result["emergency_backup"]["path"])
            timings.add("restore", "module: db_backup restored" + (", directory" if kind == "directory" else ""), kind,
                        result["duration_s"], wall, emergency_snapshot_s=snapshot_s)
        return run

    def community_restore(turn):
        database = "restore_community_%d" % turn
        engine.create(database)
        tool, module, args = engine.community_restore(community[3], database)
        wall, _result = timed_module(module, args)
        check_counts(engine, database, counts)
        engine.drop(database)
        timings.add("restore", tool, "file", wall, wall)

    jobs = [raw_restore(plan) for plan in engine.raw_restores(artefacts, options)]
    jobs += [module_restore(kind, name) for kind, name in module_backups.items()]
    jobs += [community_restore] if community else []
    for turn in range(options.runs):
        for job in rotated(jobs, turn):
            job(turn)
    shutil.rmtree(out_dir, ignore_errors=True)
    return dict(database_size_bytes=size, database_mb=round(size / MB, 1), row_counts=counts, fill_s=round(fill_s, 1),
                runs=timings.rows())


TARGET = 0.9


def acceptance(figures):
    """module / raw per engine, phase and kind for backup and restore, against TARGET (best runs)."""
    checks = []
    for engine, data in figures["engines"].items():
        for entry in data["runs"]:
            if entry["phase"] in ("backup", "restore") and "vs_raw" in entry:
                checks.append(dict(engine=engine, phase=entry["phase"], kind=entry["kind"], module=entry["tool"],
                                   raw=entry["raw_reference"], ratio=entry["vs_raw"], ratio_median=entry["vs_raw_median"],
                                   ratio_wall=entry["vs_raw_wall"], target=TARGET, met=entry["vs_raw"] >= TARGET))
    return checks


def print_table(figures):
    print()
    print("%-11s %-8s %-46s %8s %8s %8s %8s %7s %8s" % (
        "engine", "phase", "tool", "best s", "median s", "wall s", "MB/s", "vs raw", "dump MB"))
    for engine, data in figures["engines"].items():
        for entry in data["runs"]:
            print("%-11s %-8s %-46s %8.1f %8.1f %8.1f %8.1f %7s %8s" % (
                engine, entry["phase"], entry["tool"], entry["seconds"], entry["median_s"], entry["wall_s"], entry["mb_s"],
                "%.2f" % entry["vs_raw"] if "vs_raw" in entry else "",
                "%.1f" % entry["artefact_mb"] if entry["artefact_mb"] else ""))
    print()
    print("MB = the source database's size (%s) in 10^6 bytes. Module seconds = its own duration_s, wall s = the whole"
          % ", ".join("%s %.1f MB" % (e, d["database_mb"]) for e, d in figures["engines"].items()))
    print("ansible-playbook task. MB/s and vs raw (module MB/s / fastest raw pipeline of the same phase and kind) use the best"
          " of %d run(s)." % figures["runs"])
    for check in figures["acceptance"]:
        print("%-11s %-8s %-10s module/raw %.2f (median %.2f, wall %.2f) vs %s: %s" % (
            check["engine"], check["phase"], check["kind"], check["ratio"], check["ratio_median"], check["ratio_wall"], check["raw"],
            "ok" if check["met"] else "BELOW %.1f" % check["target"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="approximate database size in MiB (default 1024)")
    parser.add_argument("--engines", default="mariadb,postgresql", help="comma-separated: mariadb, postgresql")
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs for PostgreSQL directory format (default 2)")
    parser.add_argument("--no-directory", dest="directory", action="store_false", help="skip the PostgreSQL directory-format runs")
    parser.add_argument("--no-community", action="store_true", help="skip the community.mysql / community.postgresql runs")
    parser.add_argument("--runs", type=int, default=3, help="backup and restore runs per tool, in rotating order (default 3)")
    options = parser.parse_args()
    engines = [e.strip() for e in options.engines.split(",") if e.strip()]
    ensure_collection_link()
    started = time.monotonic()
    figures = dict(size_mb_requested=options.size_mb, runs=options.runs, cpus=os.cpu_count(), loadavg_start=[round(x, 2) for x in os.getloadavg()],
                   community_collections=community_available() and not options.no_community, engines={})
    scratch = tempfile.mkdtemp(prefix="sr-bench-backup-")
    os.chmod(scratch, 0o755)  # the servers run as the mysql / postgres accounts when we are root
    servers = []
    try:
        for name in engines:
            server = (MariaDBServer if name == "mariadb" else PostgresServer)(base=scratch)
            servers.append(server)
            server.start()
            engine = (MariaDB if name == "mariadb" else PostgreSQL)(server, scratch)
            figures["engines"][name] = bench_engine(engine, options, scratch)
            server.stop()
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["wall_s"] = round(time.monotonic() - started, 1)
    figures["acceptance"] = acceptance(figures)
    print_table(figures)
    print("total wall time %.0f s" % figures["wall_s"])
    out_dir = os.path.join(REPO_ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "backup.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    print("written: bench/results/backup.json")


if __name__ == "__main__":
    main()
