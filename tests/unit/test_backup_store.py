"""Unit tests for the backup store (layout, atomic publish, checksums, retention) and the tool runners."""
import hashlib
import json
import os
import stat
import subprocess

import pytest

from ansible_collections.saferelease.core.plugins.module_utils import backup_store as store
from ansible_collections.saferelease.core.plugins.module_utils.database import DatabaseTarget
from ansible_collections.saferelease.core.plugins.module_utils.dump_tools import (
    Compressor, MysqlTools, PostgresTools, SecretDir, ToolError, hash_file, stream_to_file)

DEAD_PID = 4194303  # above the usual pid_max for containers; never alive in tests


def make_backup(dest, name, started_at, kind='backup', payload=b'dump data\n'):
    partial = store.PartialBackup(str(dest), name)
    with open(partial.file_path('database.sql'), 'wb') as handle:
        handle.write(payload)
    partial.record_existing('database.sql')
    return partial.publish(dict(kind=kind, engine='sqlite', started_at=started_at, row_counts={'t': 1}))


def test_publish_is_atomic_and_manifest_complete(tmp_path):
    partial = store.PartialBackup(str(tmp_path), 'b1')
    with open(partial.file_path('database.sql'), 'wb') as handle:
        handle.write(b'hello')
    partial.record_existing('database.sql')
    # before publish only a hidden partial directory exists, and info calls it incomplete
    listed = store.list_backups(str(tmp_path))
    assert [(e['name'], e['complete']) for e in listed] == [('b1', False)]
    assert not os.path.exists(str(tmp_path / 'b1'))
    with pytest.raises(store.BackupStoreError, match='incomplete'):
        store.select_backup(str(tmp_path), 'b1')

    path, manifest = partial.publish(dict(kind='backup', engine='sqlite', started_at='2025-01-01T00:00:00Z', row_counts={}))
    assert path == str(tmp_path / 'b1')
    assert sorted(os.listdir(str(tmp_path))) == ['b1']
    assert manifest['files'] == {'database.sql': {'size': 5, 'sha256': hashlib.sha256(b'hello').hexdigest()}}
    assert manifest['size_bytes'] == 5 and manifest['format'] == store.FORMAT and manifest['name'] == 'b1'
    on_disk = json.load(open(os.path.join(path, 'manifest.json')))
    assert on_disk == manifest
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert store.file_mode_ok(os.path.join(path, 'manifest.json'))
    entry = store.select_backup(str(tmp_path))
    assert entry['complete'] and entry['intact'] and entry['name'] == 'b1'


def test_name_collision_and_invalid_names(tmp_path):
    make_backup(tmp_path, 'b1', '2025-01-01T00:00:00Z')
    with pytest.raises(store.BackupStoreError, match='already exists'):
        store.PartialBackup(str(tmp_path), 'b1')
    for bad in ('', '.hidden', '../x', 'a/b', '-x', 'x' * 200):
        with pytest.raises(store.BackupStoreError):
            store.validate_name(bad)


@pytest.mark.parametrize('damage', ['flip', 'truncate', 'delete', 'extra', 'manifest'])
def test_checksum_detects_damage(tmp_path, damage):
    path, _manifest = make_backup(tmp_path, 'b1', '2025-01-01T00:00:00Z', payload=os.urandom(4096))
    dump = os.path.join(path, 'database.sql')
    if damage == 'flip':
        with open(dump, 'r+b') as handle:
            handle.seek(1000)
            byte = handle.read(1)
            handle.seek(1000)
            handle.write(bytes([byte[0] ^ 0x01]))
    elif damage == 'truncate':
        os.truncate(dump, 100)
    elif damage == 'delete':
        os.unlink(dump)
    elif damage == 'extra':
        open(os.path.join(path, 'stray.sql'), 'w').write('x')
    else:
        with open(os.path.join(path, 'manifest.json'), 'r+b') as handle:
            handle.seek(20)
            handle.write(b'#')
    entry = store.inspect_backup(path)
    assert not entry['intact']
    assert entry['problems']
    with pytest.raises(store.BackupStoreError):
        store.select_backup(str(tmp_path), 'b1')
    # and without a name nothing is selected either
    with pytest.raises(store.BackupStoreError, match='No complete and intact'):
        store.select_backup(str(tmp_path))


def test_info_on_incomplete_temp_dirs(tmp_path):
    make_backup(tmp_path, 'good', '2025-01-01T00:00:00Z')
    dead = tmp_path / ('.killed.partial-%d-abcdef123456' % DEAD_PID)
    dead.mkdir()
    (dead / 'database.sql.zst').write_bytes(b'half')
    live = tmp_path / ('.running.partial-%d-abcdef123456' % os.getpid())
    live.mkdir()
    no_manifest = tmp_path / 'renamed-by-hand'
    no_manifest.mkdir()
    entries = dict((e['name'], e) for e in store.list_backups(str(tmp_path)))
    assert entries['good']['complete'] and entries['good']['intact']
    assert not entries['killed']['complete'] and 'did not finish' in entries['killed']['problems'][0]
    assert not entries['running']['complete'] and entries['running']['in_progress']
    assert not entries['renamed-by-hand']['complete']
    for name in ('killed', 'running', 'renamed-by-hand'):
        with pytest.raises(store.BackupStoreError):
            store.select_backup(str(tmp_path), name)
    assert store.select_backup(str(tmp_path))['name'] == 'good'


def test_retention_keeps_newest_per_kind_and_cleans_dead_partials(tmp_path):
    # names deliberately not in time order: ordering is by the manifest's start time
    make_backup(tmp_path, 'c', '2025-01-01T00:00:00Z')
    make_backup(tmp_path, 'a', '2025-01-03T00:00:00Z')
    make_backup(tmp_path, 'b', '2025-01-02T00:00:00Z')
    make_backup(tmp_path, 'd', '2025-01-04T00:00:00Z')
    make_backup(tmp_path, 'emergency-1', '2025-01-05T00:00:00Z', kind='emergency')
    (tmp_path / ('.killed.partial-%d-abcdef123456' % DEAD_PID)).mkdir()
    (tmp_path / ('.running.partial-%d-abcdef123456' % os.getpid())).mkdir()
    assert [e['name'] for e in store.list_backups(str(tmp_path)) if e['complete']] == ['emergency-1', 'd', 'a', 'b', 'c']
    planned = [e['name'] for e in store.prune(str(tmp_path), 2, check_mode=True)]
    assert sorted(planned) == ['b', 'c', 'killed']
    assert len(os.listdir(str(tmp_path))) == 7  # check mode removed nothing
    store.prune(str(tmp_path), 2)
    assert sorted(os.listdir(str(tmp_path))) == sorted(['a', 'd', 'emergency-1', '.running.partial-%d-abcdef123456' % os.getpid()])
    # the default selection never picks an emergency snapshot
    assert store.select_backup(str(tmp_path))['name'] == 'd'


def test_include_paths_copy_and_restore(tmp_path):
    app = tmp_path / 'app'
    (app / 'prisma' / 'migrations' / '001_init').mkdir(parents=True)
    (app / 'prisma' / 'migrations' / '001_init' / 'migration.sql').write_text('CREATE TABLE a (id int);')
    (app / 'prisma' / 'schema.prisma').write_text('model A { id Int @id }')
    dest = tmp_path / 'backups'
    dest.mkdir()
    partial = store.PartialBackup(str(dest), 'b1')
    entries = partial.copy_include_paths([str(app / 'prisma' / 'migrations'), str(app / 'prisma' / 'schema.prisma')])
    path, manifest = partial.publish(dict(kind='backup', include_paths=entries, started_at='x'))
    assert 'files/0/migrations/001_init/migration.sql' in manifest['files']
    assert 'files/1/schema.prisma' in manifest['files']
    # the app moves on: a new migration, a changed schema
    (app / 'prisma' / 'migrations' / '002_new').mkdir()
    (app / 'prisma' / 'migrations' / '002_new' / 'migration.sql').write_text('ALTER TABLE a ADD b int;')
    (app / 'prisma' / 'schema.prisma').write_text('changed')
    planned = store.restore_include_paths(path, manifest['include_paths'], check_mode=True)
    assert [p['path'] for p in planned] == [str(app / 'prisma' / 'migrations'), str(app / 'prisma' / 'schema.prisma')]
    assert (app / 'prisma' / 'schema.prisma').read_text() == 'changed'
    store.restore_include_paths(path, manifest['include_paths'])
    assert sorted(os.listdir(str(app / 'prisma' / 'migrations'))) == ['001_init']
    assert (app / 'prisma' / 'schema.prisma').read_text() == 'model A { id Int @id }'
    assert sorted(os.listdir(str(app / 'prisma'))) == ['migrations', 'schema.prisma']


def test_free_space_check(tmp_path):
    figures = store.check_free_space(str(tmp_path), 1, 0.001)
    assert figures['free_bytes'] > 0
    with pytest.raises(store.BackupStoreError, match='Not enough free space'):
        store.check_free_space(str(tmp_path), min_free_bytes=figures['total_bytes'] * 2)
    with pytest.raises(store.BackupStoreError, match='min_free_percent'):
        store.check_free_space(str(tmp_path), min_free_percent=100.1)


def test_free_space_of_a_dest_dir_not_created_yet_is_that_of_its_parent(tmp_path):
    missing = tmp_path / 'not' / 'yet'
    figures = store.check_free_space(str(missing))
    assert figures['total_bytes'] == store.check_free_space(str(tmp_path))['total_bytes']
    with pytest.raises(store.BackupStoreError, match='Not enough free space'):
        store.check_free_space(str(missing), min_free_bytes=figures['total_bytes'] * 2)
    assert not missing.parent.exists()


@pytest.mark.parametrize('method', ['zstd', 'gzip', 'none'])
def test_stream_to_file_hashes_in_the_same_pass(tmp_path, method):
    comp = Compressor(method, threads=0)
    source = tmp_path / 'src'
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    out = str(tmp_path / 'out')
    size, digest = stream_to_file(out, producer_argv=['cat', str(source)], compress_argv=comp.compress_argv())
    assert (size, digest) == hash_file(out)
    decompress = comp.decompress_argv()
    data = subprocess.run(decompress + [out], stdout=subprocess.PIPE, check=True).stdout if decompress else open(out, 'rb').read()
    assert data == source.read_bytes()
    assert store.file_mode_ok(out)


def test_stream_to_file_failure_removes_output(tmp_path):
    out = str(tmp_path / 'out.zst')
    with pytest.raises(ToolError, match='failed'):
        stream_to_file(out, producer_argv=['sh', '-c', 'echo partial; echo "boom" >&2; exit 3'],
                       compress_argv=Compressor('zstd').compress_argv())
    assert not os.path.exists(out)


def test_secrets_go_to_a_private_file_never_argv_or_environ(tmp_path):
    password = 'p@ss:w"o\\rd'
    target = DatabaseTarget('mysql', host='127.0.0.1', port=3306, user='app', password=password, database='shop')
    with SecretDir() as secrets:
        tools = MysqlTools(target, secrets, dump_bin='/usr/bin/mariadb-dump', client_bin='/usr/bin/mariadb')
        argv = tools.dump_argv('shop')
        assert argv[1].startswith('--defaults-extra-file=')
        assert tools.client_argv('shop')[1].startswith('--defaults-extra-file=')
        assert not any(password in a for a in argv + tools.client_argv('shop'))
        defaults = argv[1].split('=', 1)[1]
        assert stat.S_IMODE(os.stat(defaults).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(secrets.path).st_mode) == 0o700
        assert 'password="p@ss:w\\"o\\\\rd"' in open(defaults).read()
        assert password not in ''.join(tools.env().values())
        pg = PostgresTools(DatabaseTarget('postgresql', host='h', port=5432, user='app', password=password, database='shop'), secrets)
        env = pg.env()
        assert open(env['PGPASSFILE']).read() == '*:*:*:app:p@ss\\:w"o\\\\rd\n'
        assert 'PGPASSWORD' not in env and password not in ''.join(env.values())
        secret_dir = secrets.path
    assert not os.path.exists(secret_dir)
    assert password not in ''.join(os.environ.values())
