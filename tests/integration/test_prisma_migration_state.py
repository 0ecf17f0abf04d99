"""prisma_migration_state through Ansible on SQLite, MariaDB and PostgreSQL (real servers from the harness)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.harness.ansible_run import run_module

from ansible_collections.saferelease.core.plugins.module_utils.sql_script import split_statements

MODULE = 'saferelease.core.prisma_migration_state'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, 'examples', 'demo_app')
INIT = '20250101000000_init'
SHIPMENT_FILE = '20250821015630_add_shipment_file_field'

ENGINES = {
    # fixture name, prisma folder in the demo app, dialect
    'sqlite': ('sqlite_db', 'prisma', 'sqlite'),
    'mariadb': ('mariadb_db', 'prisma-mysql', 'mysql'),
    'postgresql': ('postgres_db', 'prisma-postgresql', 'postgresql'),
}
EXTRA_COLUMNS_SQL = {
    'sqlite': 'ALTER TABLE "Shipment" ADD COLUMN "carrier" TEXT;\nALTER TABLE "Shipment" ADD COLUMN "weight" INTEGER;\n',
    'mysql': 'ALTER TABLE `Shipment` ADD COLUMN `carrier` VARCHAR(191) NULL,\n    ADD COLUMN `weight` INTEGER NULL;\n',
    'postgresql': 'ALTER TABLE "Shipment" ADD COLUMN "carrier" TEXT,\nADD COLUMN "weight" INTEGER;\n',
}
CARRIER_ONLY_SQL = {
    'sqlite': 'ALTER TABLE "Shipment" ADD COLUMN "carrier" TEXT',
    'mysql': 'ALTER TABLE `Shipment` ADD COLUMN `carrier` VARCHAR(191) NULL',
    'postgresql': 'ALTER TABLE "Shipment" ADD COLUMN "carrier" TEXT',
}


class Env(object):
    """One engine's database plus a private copy of the demo migrations."""

    def __init__(self, engine, db, tmp_path):
        self.engine = engine
        self.db = db
        self.dialect = ENGINES[engine][2]
        self.source = os.path.join(DEMO, ENGINES[engine][1], 'migrations')
        self.prisma = tmp_path / 'prisma'
        self.migrations = self.prisma / 'migrations'
        self.migrations.mkdir(parents=True)
        shutil.copy(os.path.join(self.source, 'migration_lock.toml'), str(self.migrations))
        self.tmp = tmp_path

    def add(self, name, sql=None):
        target = self.migrations / name
        if sql is None:
            shutil.copytree(os.path.join(self.source, name), str(target))
        else:
            target.mkdir()
            (target / 'migration.sql').write_text(sql)

    def run(self, state='status', check=False, diff=False, direct=False, **args):
        """Through Ansible; ``direct`` runs the module file alone (faster, for follow-up assertions)."""
        params = dict(database_url=self.db.url, migrations_dir=str(self.migrations), state=state)
        params.update(args)
        if direct:
            return run_module_direct(params, check=check, diff=diff)
        return run_module(MODULE, params, check=check, diff=diff)

    def sql(self, statement):
        conn = self.db.connect()
        try:
            cur = conn.cursor()
            cur.execute(statement)
            rows = cur.fetchall() if cur.description else None
            cur.close()
            if hasattr(conn, 'commit'):
                conn.commit()
            return rows
        finally:
            conn.close()

    def run_migration_sql(self, name):
        with open(os.path.join(self.source, name, 'migration.sql')) as handle:
            for statement in split_statements(handle.read(), self.dialect):
                self.sql(statement)

    def rows(self):
        order = 'ORDER BY started_at, migration_name'
        return self.sql('SELECT migration_name, checksum, finished_at, rolled_back_at, logs, applied_steps_count, id '
                        'FROM _prisma_migrations ' + order)


def run_module_direct(params, check=False, diff=False):
    """Run the module file itself (AnsibleModule, no executor) to see the raw result, ``diff`` included."""
    args = dict(params, _ansible_check_mode=check, _ansible_diff=diff)
    proc = subprocess.run([sys.executable, '-m', 'ansible_collections.saferelease.core.plugins.modules.prisma_migration_state'],
                          input=json.dumps(dict(ANSIBLE_MODULE_ARGS=args)), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)), check=False)
    return json.loads(proc.stdout)


@pytest.fixture(params=sorted(ENGINES))
def env(request, tmp_path):
    db = request.getfixturevalue(ENGINES[request.param][0])
    return Env(request.param, db, tmp_path)


def statuses(result):
    return dict((m['name'], m['status']) for m in result['migrations'])


def deployed_init(env):
    env.add(INIT)
    result = env.run('deployed')
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] and statuses(result) == {INIT: 'applied'}
    env.add(SHIPMENT_FILE)


def test_runbook_000_conflict_synced_marks_applied(env):
    """Column present, record missing: synced records the migration as applied and changes no schema."""
    deployed_init(env)
    env.run_migration_sql(SHIPMENT_FILE)
    status = env.run('status', direct=True)
    assert statuses(status)[SHIPMENT_FILE] == 'pending' and not status['up_to_date'] and not status['changed']

    check = env.run('synced', check=True, diff=True)
    assert check['changed'] and [a['action'] for a in check['actions']] == ['mark_applied']
    assert check['up_to_date']
    assert len(env.rows()) == 1, 'check mode must not write'
    raw = run_module_direct(dict(database_url=env.db.url, migrations_dir=str(env.migrations), state='synced'), check=True, diff=True)
    assert raw['changed'] and SHIPMENT_FILE not in raw['diff']['before'] and SHIPMENT_FILE in raw['diff']['after']
    assert '(new)' in raw['diff']['after']
    assert len(env.rows()) == 1, 'check mode must not write'

    backup_dir = env.tmp / 'backups'
    backup_dir.mkdir()
    result = env.run('synced', diff=True, backup_path=str(backup_dir))
    assert result['changed'] and result['up_to_date']
    assert result['sync'][0]['decision'] == 'mark_applied'
    assert result['sync'][0]['present'] == ['column Shipment.shipmentFile']
    saved = json.load(open(result['backup_file']))
    assert [r['migration_name'] for r in saved['rows']] == [INIT]
    row = [r for r in env.rows() if r[0] == SHIPMENT_FILE][0]
    assert row[2] is not None and row[3] is None and row[4] == '' and row[5] == 0

    again = env.run('synced', direct=True)
    assert not again['changed'] and again['actions'] == []


def test_column_missing_synced_applies(env):
    deployed_init(env)
    result = env.run('synced')
    assert result['changed'] and result['up_to_date']
    assert [(a['action'], a['migration']) for a in result['actions']] == [('apply', SHIPMENT_FILE)]
    row = [r for r in env.rows() if r[0] == SHIPMENT_FILE][0]
    assert row[5] == 1 and row[4] is None and row[2] is not None


def test_partial_sync_fails_and_changes_nothing(env):
    deployed_init(env)
    env.run('deployed', direct=True)
    env.add('20250901000000_add_carrier_weight', EXTRA_COLUMNS_SQL[env.dialect])
    env.sql(CARRIER_ONLY_SQL[env.dialect])
    before = env.rows()
    result = env.run('synced')
    assert result['failed'] and not result['changed']
    assert 'column Shipment.carrier' in result['msg'] and 'column Shipment.weight' in result['msg']
    assert 'Nothing was changed' in result['msg']
    decision = result['sync'][0]
    assert decision['present'] == ['column Shipment.carrier'] and decision['absent'] == ['column Shipment.weight']
    assert env.rows() == before


def test_applied_rolled_back_absent_and_idempotence(env):
    deployed_init(env)
    params = dict(database_url=env.db.url, migrations_dir=str(env.migrations), state='applied', migration=SHIPMENT_FILE)
    applied = run_module_direct(params, diff=True)
    assert applied['changed'] and statuses(applied)[SHIPMENT_FILE] == 'applied'
    assert SHIPMENT_FILE in applied['diff']['after'] and SHIPMENT_FILE not in applied['diff']['before']
    assert 'diff' not in run_module_direct(params, diff=True)
    assert env.run('applied', migration=SHIPMENT_FILE, direct=True)['changed'] is False

    refused = env.run('rolled_back', migration=SHIPMENT_FILE, direct=True)
    assert refused['failed'] and 'P3012' in refused['msg']

    check = env.run('absent', migration=SHIPMENT_FILE, check=True)
    assert check['changed'] and len(env.rows()) == 2
    gone = env.run('absent', migration=SHIPMENT_FILE)
    assert gone['changed'] and statuses(gone)[SHIPMENT_FILE] == 'pending'
    assert env.run('absent', migration=SHIPMENT_FILE, direct=True)['changed'] is False

    never = env.run('rolled_back', migration=SHIPMENT_FILE, direct=True)
    assert never['failed'] and 'P3011' in never['msg']


def test_failed_deploy_then_rolled_back_then_deploy(env):
    deployed_init(env)
    shutil.rmtree(str(env.migrations / SHIPMENT_FILE))
    env.add('20250902000000_broken', 'CREATE TABLE "ok_first" (id INTEGER);\nSELECT * FROM no_such_table;\n'
            if env.dialect != 'mysql' else 'CREATE TABLE `ok_first` (id INTEGER);\nSELECT * FROM no_such_table;\n')
    failed = env.run('deployed')
    assert failed['failed'] and failed['changed'] and 'P3018' in failed['msg']
    assert statuses(failed)['20250902000000_broken'] == 'failed'
    row = [r for r in env.rows() if r[0] == '20250902000000_broken'][0]
    assert row[2] is None and 'no_such_table' in row[4]

    blocked = env.run('deployed', direct=True)
    assert blocked['failed'] and 'P3009' in blocked['msg']

    (env.migrations / '20250902000000_broken' / 'migration.sql').write_text('SELECT 1;\n')
    if env.dialect == 'postgresql':
        pass  # the whole script ran in one transaction: nothing to undo
    else:
        env.sql('DROP TABLE ok_first')
    rolled = env.run('rolled_back', migration='20250902000000_broken')
    assert rolled['changed'] and statuses(rolled)['20250902000000_broken'] in ('rolled_back', 'modified')
    assert env.run('rolled_back', migration='20250902000000_broken', direct=True)['changed'] is False
    redeploy = env.run('deployed')
    assert not redeploy.get('failed'), redeploy.get('msg')
    assert redeploy['changed']


def test_status_reports_modified_and_missing_locally(env):
    deployed_init(env)
    env.run('deployed', direct=True)
    with open(str(env.migrations / SHIPMENT_FILE / 'migration.sql'), 'a') as handle:
        handle.write('-- edited after deploy\n')
    shutil.rmtree(str(env.migrations / INIT))
    result = env.run('status')
    assert statuses(result) == {SHIPMENT_FILE: 'modified', INIT: 'missing_locally'}
    assert result['summary']['modified'] == [SHIPMENT_FILE] and not result['up_to_date']


def test_wrong_password_is_never_shown(env):
    if env.engine == 'sqlite':
        pytest.skip('SQLite has no password')
    url = env.db.url
    scheme, rest = url.split('://', 1)
    userinfo, hostpart = rest.rsplit('@', 1)
    user = userinfo.split(':', 1)[0]
    secret = 'Wr0ng-S3cret-pw'
    env.add(INIT)
    result = run_module(MODULE, dict(database_url='%s://%s:%s@%s' % (scheme, user, secret, hostpart),
                                     migrations_dir=str(env.migrations)))
    assert result['failed'] and 'Authentication failed' in result['msg']
    assert secret not in json.dumps(result)


def test_env_file_and_check_mode_deploy(env):
    env.add(INIT)
    env.add(SHIPMENT_FILE)
    dotenv = env.prisma.parent / '.env'
    dotenv.write_text('# app settings\nexport DATABASE_URL="%s"\n' % env.db.url)
    check = run_module(MODULE, dict(env_file=str(dotenv), migrations_dir=str(env.migrations), state='deployed'), check=True)
    assert check['changed'] and [a['action'] for a in check['actions'] if a['action'] == 'apply'] == ['apply', 'apply']
    status = run_module(MODULE, dict(env_file=str(dotenv), migrations_dir=str(env.migrations)))
    assert status['summary']['pending'] == [INIT, SHIPMENT_FILE]


# --- bad input: each fails with a message naming the fix, nothing changed ----------------------

@pytest.fixture
def sqlite_env(sqlite_db, tmp_path):
    e = Env('sqlite', sqlite_db, tmp_path)
    e.add(INIT)
    return e


@pytest.mark.parametrize('url, fragment', [
    ('mysql//user:pw@host/db', 'scheme'),
    ('mysql://user:pw@host:99999/db', 'port'),
    ('mariadb://user:pw@host/db', 'mysql://'),
    ('postgresql:///db', 'no host'),
])
def test_malformed_url(sqlite_env, url, fragment):
    result = sqlite_env.run(database_url=url)
    assert result['failed'] and fragment in result['msg']


def test_unreachable_database(sqlite_env):
    (sqlite_env.migrations / 'migration_lock.toml').unlink()
    for url in ('mysql://u:topsecret@127.0.0.1:1/db', 'postgresql://u:topsecret@127.0.0.1:1/db'):
        result = sqlite_env.run(database_url=url, connect_timeout=3)
        assert result['failed'] and 'Cannot reach' in result['msg'] and 'nothing was changed' in result['msg']
        assert 'topsecret' not in json.dumps(result)


def test_missing_migrations_folder(sqlite_env):
    result = run_module(MODULE, dict(database_url=sqlite_env.db.url, migrations_dir=str(sqlite_env.tmp / 'nope')))
    assert result['failed'] and 'does not exist' in result['msg'] and 'migrations_dir' in result['msg']


def test_unknown_migration_name(sqlite_env):
    result = sqlite_env.run('applied', migration='20990101000000_not_there')
    assert result['failed'] and 'P3017' in result['msg'] and 'could not be found' in result['msg']


def test_names_are_bound_never_interpolated(sqlite_env):
    hostile = "20250101000001_x'; DROP TABLE _prisma_migrations; --"
    sqlite_env.add(hostile, 'SELECT 1;\n')
    result = sqlite_env.run('applied', migration=hostile)
    assert result['changed'] and not result.get('failed'), result.get('msg')
    assert [r[0] for r in sqlite_env.rows()] == [hostile]  # the table is still there, with the name as written
    for name in ('a;b', '"quoted"'):
        result = sqlite_env.run('applied', migration=name, direct=True)
        assert result['failed'] and 'P3017' in result['msg'] and not result['changed']
    for name in ('../20250101000000_init', 'a/b', 'tab\there'):
        result = sqlite_env.run('applied', migration=name, direct=True)
        assert result['failed'] and 'Invalid migration name' in result['msg'] and not result['changed']
    assert [r[0] for r in sqlite_env.rows()] == [hostile]


def test_missing_env_file(sqlite_env):
    result = run_module(MODULE, dict(env_file=str(sqlite_env.tmp / 'missing.env'), migrations_dir=str(sqlite_env.migrations)))
    assert result['failed'] and 'does not exist' in result['msg'] and 'DATABASE_URL' in result['msg']


def test_provider_mismatch(sqlite_env, tmp_path):
    (sqlite_env.migrations / 'migration_lock.toml').write_text('provider = "postgresql"\n')
    result = sqlite_env.run()
    assert result['failed'] and 'P3019' in result['msg']


LOCK_SQL = {
    'mariadb': ("SELECT GET_LOCK('prisma_migrate', 5)", "SELECT RELEASE_LOCK('prisma_migrate')"),
    'postgresql': ('SELECT pg_advisory_lock(72707369)', 'SELECT pg_advisory_unlock(72707369)'),
}


@pytest.mark.parametrize('engine', sorted(LOCK_SQL))
def test_waits_for_prismas_migrate_lock_and_changes_nothing_while_it_is_held(engine, request, tmp_path):
    env = Env(engine, request.getfixturevalue(ENGINES[engine][0]), tmp_path)
    env.add(INIT)
    holder = env.db.connect()
    take, release = LOCK_SQL[engine]
    try:
        cur = holder.cursor()
        cur.execute(take)
        blocked = env.run('deployed', lock_timeout=2)
        assert blocked['failed'] and not blocked['changed']
        assert 'Timed out after 2s waiting for the Prisma migrate lock' in blocked['msg']
        assert env.run(direct=True)['summary']['pending'] == [INIT]
        cur.execute(release)
    finally:
        holder.close()
    assert env.run('deployed', direct=True)['summary']['applied'] == [INIT]
