"""db_backup through Ansible against real MariaDB, PostgreSQL and SQLite (servers from the harness)."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.harness.ansible_run import run_module

from ansible_collections.saferelease.core.plugins.module_utils import backup_store as store
from ansible_collections.saferelease.core.plugins.module_utils.database import parse_database_url

MODULE = 'saferelease.core.db_backup'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = {'mysql': 'mariadb_db', 'postgresql': 'postgres_db', 'sqlite': 'sqlite_db'}
BLOB = bytes(range(256)) * 40
UNICODE = 'Grüße, 東京, emoji 🎉, RTL שלום, zero-width \u200b, quote \' and "'

SEED = {
    'mysql': [
        "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) CHARACTER SET utf8mb4, data LONGBLOB, price DECIMAL(10,2),"
        " created DATETIME(3)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE audit_nopk (item_id INT, note TEXT CHARACTER SET utf8mb4) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE VIEW item_names AS SELECT id, name FROM items",
        "CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW INSERT INTO audit_nopk VALUES (NEW.id, CONCAT('added ', NEW.name))",
        "CREATE FUNCTION plus_one(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
        "CREATE PROCEDURE count_items(OUT n INT) BEGIN SELECT COUNT(*) INTO n FROM items; END",
        "CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL, finished_at DATETIME(3),"
        " migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at DATETIME(3), started_at DATETIME(3) NOT NULL,"
        " applied_steps_count INT UNSIGNED NOT NULL DEFAULT 0)",
        "INSERT INTO _prisma_migrations VALUES ('c7a1', 'abc', NOW(3), '20250101000000_init', NULL, NULL, NOW(3), 1)",
    ],
    'postgresql': [
        'CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT, data BYTEA, price NUMERIC(10,2), created TIMESTAMP(3))',
        'CREATE TABLE audit_nopk (item_id INT, note TEXT)',
        'CREATE VIEW item_names AS SELECT id, name FROM items',
        "CREATE FUNCTION audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit_nopk VALUES (NEW.id, 'added ' || NEW.name);"
        " RETURN NEW; END $$",
        'CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION audit_fn()',
        'CREATE FUNCTION plus_one(x INT) RETURNS INT LANGUAGE sql IMMUTABLE AS $$ SELECT x + 1 $$',
        'CREATE TABLE "_prisma_migrations" (id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ,'
        ' migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(),'
        ' applied_steps_count INTEGER NOT NULL DEFAULT 0)',
        "INSERT INTO _prisma_migrations VALUES ('c7a1', 'abc', now(), '20250101000000_init', NULL, NULL, now(), 1)",
    ],
    'sqlite': [
        'CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, data BLOB, price REAL, created TEXT)',
        'CREATE TABLE audit_nopk (item_id INTEGER, note TEXT)',
        'CREATE VIEW item_names AS SELECT id, name FROM items',
        "CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN INSERT INTO audit_nopk VALUES (NEW.id, 'added ' || NEW.name); END",
        'CREATE TABLE "_prisma_migrations" ("id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,'
        ' "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME, "started_at" DATETIME NOT NULL DEFAULT current_timestamp,'
        ' "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)',
        "INSERT INTO _prisma_migrations VALUES ('c7a1', 'abc', 1700000000000, '20250101000000_init', NULL, NULL, 1700000000000, 1)",
    ],
}
PH = {'mysql': '%s', 'postgresql': '%s', 'sqlite': '?'}


class Db(object):
    """A harness database plus helpers to seed it and fingerprint its contents."""

    def __init__(self, engine, db):
        self.engine = engine
        self.db = db
        self.url = db.url

    def execute(self, statements, params=None):
        conn = self.db.connect()
        try:
            cur = conn.cursor()
            for statement in statements:
                cur.execute(statement, params) if params is not None else cur.execute(statement)
            rows = cur.fetchall() if cur.description else None
            cur.close()
            if hasattr(conn, 'commit'):
                conn.commit()
            return rows
        finally:
            conn.close()

    def seed(self, rows=20):
        self.execute(SEED[self.engine])
        for i in range(rows):
            sql = 'INSERT INTO items (name, data, price, created) VALUES ({0}, {0}, {0}, {0})'.format(PH[self.engine])
            self.execute([sql], ('%s #%d' % (UNICODE, i), BLOB[i:] + bytes([i]), 10.5 + i, '2025-01-0%d 12:00:00' % (i % 9 + 1)))
        self.execute(['INSERT INTO items (name, data) VALUES (NULL, NULL)'])
        self.execute(["INSERT INTO audit_nopk VALUES (1, 'dup'), (1, 'dup')"])

    def tables(self):
        if self.engine == 'mysql':
            sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        elif self.engine == 'postgresql':
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        return sorted(r[0] for r in self.execute([sql]))

    def fingerprint(self):
        """{table: sha256 of all rows sorted} - equality means identical contents."""
        result = {}
        for table in self.tables():
            rows = self.execute(['SELECT * FROM %s' % (('`%s`' if self.engine == 'mysql' else '"%s"') % table)])
            norm = sorted(repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)) for row in rows)
            result[table] = (len(rows), hashlib.sha256('\n'.join(norm).encode('utf-8')).hexdigest())
        return result

    def objects_work(self):
        """The view, trigger and function of the seed behave after a restore."""
        assert self.execute(['SELECT COUNT(*) FROM item_names'])[0][0] == 21
        if self.engine != 'sqlite':
            assert self.execute(['SELECT plus_one(41)'])[0][0] == 42
        before = self.execute(['SELECT COUNT(*) FROM audit_nopk'])[0][0]
        self.execute(["INSERT INTO items (name) VALUES ('after restore')"])
        assert self.execute(['SELECT COUNT(*) FROM audit_nopk'])[0][0] == before + 1


def sibling_url(url, name):
    """The URL of another database on the same server."""
    head, sep, query = url.partition('?')
    base = head.rsplit('/', 1)[0]
    return '%s/%s%s%s' % (base, name, sep, query)


@pytest.fixture(params=['mysql', 'postgresql', 'sqlite'])
def engine_db(request):
    return Db(request.param, request.getfixturevalue(FIXTURES[request.param]))


@pytest.fixture
def sibling(engine_db, tmp_path):
    """A second, empty database on the same server (a new file for SQLite); dropped afterwards."""
    if engine_db.engine == 'sqlite':
        yield Db('sqlite', _FileDb(str(tmp_path / 'sibling.db')))
        return
    name = 'sib_%s' % uuid.uuid4().hex[:10]
    engine_db.execute(['CREATE DATABASE %s' % name])
    other = Db(engine_db.engine, _UrlDb(sibling_url(engine_db.url, name)))
    yield other
    engine_db.execute(['DROP DATABASE IF EXISTS %s' % name])


class _UrlDb(object):
    def __init__(self, url):
        self.url = url

    def connect(self):
        from ansible_collections.saferelease.core.plugins.module_utils.database import connect
        return connect(parse_database_url(self.url))


class _FileDb(_UrlDb):
    def __init__(self, path):
        _UrlDb.__init__(self, 'file:' + path)

    def connect(self):
        import sqlite3
        return sqlite3.connect(self.url[5:])


def backup(db, dest, check=False, **args):
    params = dict(database_url=db.url, dest_dir=str(dest))
    params.update(args)
    return run_module(MODULE, params, check=check)


def take(db, dest, name):
    """Set-up backups are taken directly (no Ansible round trip) to keep the suite fast."""
    from ansible_collections.saferelease.core.plugins.module_utils.restore import take_backup
    return take_backup(parse_database_url(db.url), str(dest), name)


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def flip_byte(path, offset=None):
    size = os.path.getsize(path)
    offset = size // 2 if offset is None else offset
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x40]))


def test_round_trip_verify_and_restore_into_another_database(engine_db, sibling, tmp_path):
    engine_db.seed()
    prisma = tmp_path / 'app' / 'prisma'
    (prisma / 'migrations' / '20250101000000_init').mkdir(parents=True)
    (prisma / 'migrations' / '20250101000000_init' / 'migration.sql').write_text('-- init\n')
    (prisma / 'schema.prisma').write_text('datasource db {}\n')
    expected = engine_db.fingerprint()
    dest = tmp_path / 'backups'

    taken = ok(backup(engine_db, dest, name='first', verify=True, keep=5,
                      include_paths=[str(prisma / 'migrations'), str(prisma / 'schema.prisma')]))
    assert taken['changed'] and taken['verification']['problems'] == []
    manifest = taken['backup']['manifest']
    assert manifest['engine'] == engine_db.engine and manifest['server_version'] and manifest['tools']['dump']
    assert dict((k.split('.')[-1], v) for k, v in manifest['row_counts'].items()) == {
        '_prisma_migrations': 1, 'audit_nopk': expected['audit_nopk'][0], 'items': 21}
    assert manifest['prisma_migrations'][0]['migration_name'] == '20250101000000_init'
    assert manifest['views'] and manifest['triggers']
    if engine_db.engine != 'sqlite':
        assert manifest['routines']
    assert all(len(f['sha256']) == 64 for f in manifest['files'].values())
    assert manifest['dump']['file'].endswith('.zst') and taken['size_bytes'] > 0 and taken['throughput_mb_s'] is not None
    assert sorted(os.listdir(str(dest))) == ['first']

    info = ok(run_module(MODULE, dict(dest_dir=str(dest), state='info')))
    assert [(b['name'], b['complete'], b['intact']) for b in info['backups']] == [('first', True, True)]

    # restore into a different, empty database: identical contents, objects work
    (prisma / 'schema.prisma').write_text('changed\n')
    restored = ok(run_module(MODULE, dict(database_url=sibling.url, dest_dir=str(dest), state='restored', confirm=True)))
    assert restored['changed'] and restored['backup']['name'] == 'first'
    assert restored['emergency_backup'] is None or os.path.isdir(restored['emergency_backup']['path'])
    assert sibling.fingerprint() == expected
    assert (prisma / 'schema.prisma').read_text() == 'datasource db {}\n'
    sibling.objects_work()

    # restore over the changed original: the new rows and table go, the emergency snapshot keeps them
    engine_db.execute(['DELETE FROM items WHERE id > 10', 'CREATE TABLE extra_table (x INT)'])
    restored = ok(run_module(MODULE, dict(database_url=engine_db.url, dest_dir=str(dest), state='restored', confirm=True, name='first')))
    assert engine_db.fingerprint() == expected
    emergency = restored['emergency_backup']
    assert emergency['name'].startswith('emergency-') and os.path.isdir(emergency['path'])
    emanifest = store.read_manifest(emergency['path'])
    assert emanifest['kind'] == 'emergency' and any(k.endswith('extra_table') for k in emanifest['row_counts'])
    # the newest regular backup is still what an unnamed restore/verify picks
    verified = ok(run_module(MODULE, dict(database_url=engine_db.url, dest_dir=str(dest), state='verified')))
    assert verified['backup']['name'] == 'first' and verified['verification']['problems'] == []


def test_flipped_byte_is_caught_and_restore_refuses(engine_db, tmp_path):
    engine_db.seed(rows=5)
    dest = tmp_path / 'backups'
    path, manifest = take(engine_db, dest, 'b1')
    flip_byte(os.path.join(path, manifest['dump']['file']))
    before = engine_db.fingerprint()
    verified = backup(engine_db, dest, name='b1', state='verified')
    assert verified['failed'] and 'checksum' in verified['msg']
    listed = store.list_backups(str(dest))
    assert listed[0]['complete'] and not listed[0]['intact']
    refused = backup(engine_db, dest, name='b1', state='restored', confirm=True)
    assert refused['failed'] and 'nothing was changed' in refused['msg'] and not refused['changed']
    assert engine_db.fingerprint() == before
    assert sorted(os.listdir(str(dest))) == ['b1']  # no emergency snapshot either


def test_restore_refuses_incomplete_backups(sqlite_db, tmp_path):
    db = Db('sqlite', sqlite_db)
    db.seed(rows=3)
    dest = tmp_path / 'backups'
    no_manifest, _m = take(db, dest, 'no_manifest')
    os.unlink(os.path.join(no_manifest, 'manifest.json'))
    partial, _m = take(db, dest, 'partial')
    os.rename(partial, str(dest / '.partial.partial-4194303-0123456789ab'))
    before = db.fingerprint()
    for name in ('no_manifest', 'partial'):
        refused = backup(db, dest, name=name, state='restored', confirm=True)
        assert refused['failed'] and 'incomplete' in refused['msg'] and not refused['changed']
    unnamed = backup(db, dest, state='restored', confirm=True)
    assert unnamed['failed'] and 'No complete and intact backup' in unnamed['msg']
    assert db.fingerprint() == before


def test_restored_without_confirm_refuses_and_check_mode_writes_nothing(sqlite_db, tmp_path):
    db = Db('sqlite', sqlite_db)
    db.seed(rows=3)
    dest = tmp_path / 'backups'
    check = ok(backup(db, dest, check=True, name='b1'))
    assert check['changed'] and check['backup']['path'] == str(dest / 'b1') and not dest.exists()
    take(db, dest, 'b1')
    db.execute(['DELETE FROM items'])
    before = db.fingerprint()
    refused = backup(db, dest, state='restored')
    assert refused['failed'] and 'confirm: true' in refused['msg'] and not refused['changed']
    check = ok(backup(db, dest, check=True, state='restored', confirm=True))
    assert check['changed'] and 'Would' in check['msg']
    check = ok(backup(db, dest, check=True, state='absent', keep=0))
    assert check['removed'] == ['b1']
    assert db.fingerprint() == before and sorted(os.listdir(str(dest))) == ['b1']
    removed = ok(backup(db, dest, state='absent', keep=0))
    assert removed['changed'] and os.listdir(str(dest)) == []


# --- big databases: kill -9, full disk, secrets in /proc -------------------------------------------

BIG_ROWS = {'mysql': 60000, 'postgresql': 60000}


def make_big(db, rows):
    """About 60 MB of rows generated server-side (random on MariaDB, cheap repeated text on PostgreSQL)."""
    if db.engine == 'mysql':
        db.execute(['CREATE TABLE big (id INT PRIMARY KEY, payload LONGBLOB) ENGINE=InnoDB',
                    'INSERT INTO big SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_%d' % rows])
    else:
        db.execute(['CREATE TABLE big (id INT PRIMARY KEY, payload BYTEA)',
                    "INSERT INTO big SELECT g, convert_to(repeat(md5(g::text), 32), 'UTF8') FROM generate_series(1, %d) g" % rows])


@pytest.fixture(params=['mysql', 'postgresql'])
def big_db(request):
    db = Db(request.param, request.getfixturevalue(FIXTURES[request.param]))
    make_big(db, BIG_ROWS[request.param])
    return db


KILL_SCRIPT = r'''
import sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.saferelease.core.plugins.module_utils.database import parse_database_url
from ansible_collections.saferelease.core.plugins.module_utils.restore import take_backup
take_backup(parse_database_url(sys.argv[2]), sys.argv[3], 'killed', compression='none')
'''


def test_sigkill_during_dump_leaves_nothing_usable(big_db, tmp_path):
    from tests.harness.collection import COLLECTIONS_PATH
    dest = tmp_path / 'backups'
    dest.mkdir()
    proc = subprocess.Popen([sys.executable, '-c', KILL_SCRIPT, COLLECTIONS_PATH, big_db.url, str(dest)])
    deadline = time.time() + 30
    while time.time() < deadline:
        partial = [d for d in os.listdir(str(dest)) if d.startswith('.killed.partial-')]
        if partial and any(os.path.getsize(os.path.join(str(dest), partial[0], f)) > 2 * 1024 * 1024
                           for f in os.listdir(os.path.join(str(dest), partial[0]))):
            break
        assert proc.poll() is None, 'the dump finished before it could be killed; make the database bigger'
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the dump tool dies of SIGPIPE once its reader is gone
    info = ok(run_module(MODULE, dict(dest_dir=str(dest), state='info')))
    assert [(b['name'], b['complete'], b['intact']) for b in info['backups']] == [('killed', False, False)]
    assert 'did not finish' in info['backups'][0]['problems'][0]
    before = big_db.execute(['SELECT COUNT(*) FROM big'])
    for name in ('killed', None):
        args = dict(state='restored', confirm=True)
        if name:
            args['name'] = name
        refused = backup(big_db, dest, **args)
        assert refused['failed'] and not refused['changed']
    assert big_db.execute(['SELECT COUNT(*) FROM big']) == before
    # retention clears the leftover
    assert ok(backup(big_db, dest, state='absent', keep=3))['removed'] == ['killed']


@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    mnt = tmp_path / 'tiny'
    mnt.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mnt)], check=True)
    yield mnt
    subprocess.run(['umount', '-l', str(mnt)], check=False)


def test_full_disk_fails_cleanly(big_db, small_tmpfs):
    dest = small_tmpfs / 'backups'
    result = backup(big_db, dest, name='nospace', compression='none')
    assert result['failed'] and 'No space left' in result['msg'] and 'nothing was published' in result['msg']
    assert os.listdir(str(dest)) == []
    info = ok(run_module(MODULE, dict(dest_dir=str(dest), state='info')))
    assert info['backups'] == []


def _proc_blobs(own):
    found = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) in own:
            continue
        for kind in ('cmdline', 'environ'):
            try:
                with open('/proc/%s/%s' % (pid, kind), 'rb') as handle:
                    found[(pid, kind)] = handle.read()
            except OSError:
                pass
    return found


def test_password_never_in_proc_cmdline_or_environ(big_db, tmp_path):
    password = 'Pw-%s:"x' % uuid.uuid4().hex
    user = 'bk_%s' % uuid.uuid4().hex[:8]
    target = parse_database_url(big_db.url)
    if big_db.engine == 'mysql':
        big_db.execute(["CREATE USER '%s'@'%%' IDENTIFIED BY '%s'" % (user, password.replace("'", "''")),
                        "GRANT ALL ON *.* TO '%s'@'%%'" % user])
        url = 'mysql://%s:%s@%s:%s/%s' % (user, _q(password), target.host, target.port, target.database)
    else:
        big_db.execute(["CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s'" % (user, password.replace("'", "''"))])
        url = 'postgresql://%s:%s@%s:%s/%s' % (user, _q(password), target.host, target.port, target.database)
    dotenv = tmp_path / '.env'
    dotenv.write_text('DATABASE_URL="%s"\n' % url)
    needles = [password.encode(), _q(password).encode()]
    hits, children, secret_dirs = [], set(), set()
    done = threading.Event()
    result = {}

    def run():
        try:
            result.update(run_module(MODULE, dict(env_file=str(dotenv), dest_dir=str(tmp_path / 'b'), verify=True)))
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    own = {os.getpid()}
    while not done.is_set():
        blobs = _proc_blobs(own)
        for (pid, kind), blob in blobs.items():
            if b'pg_dump' in blob or b'mariadb-dump' in blob or b'pg_restore' in blob or b'zstd' in blob:
                children.add(pid)
            if any(n in blob for n in needles):
                hits.append((pid, kind, blob[:200]))
        for (pid, kind), blob in blobs.items():
            if pid in children:
                secret_dirs.update(re.findall(rb'saferelease-secret-\d+-\w+', blob))
        time.sleep(0.002)
    thread.join()
    if big_db.engine == 'mysql':
        big_db.execute(["DROP USER '%s'@'%%'" % user])
    ok(result)
    assert children, 'the sampler never saw a dump tool running'
    assert hits == []
    assert password not in json.dumps(result)
    # The credential files the dump tools were pointed at are gone with the run (other runs, e.g.
    # on another test worker, may hold their own at this moment).
    assert [d for d in secret_dirs if os.path.exists(os.path.join(b'/dev/shm', d))] == []


def _q(text):
    from urllib.parse import quote
    return quote(text, safe='')
