"""``prisma_migration_state state=synced`` on real MariaDB, PostgreSQL and SQLite: one case per way it went wrong on real
histories (long names, OR REPLACE, folders named "... copy", temp tables, objects later migrations dropped, changes
other than additions), undecidable migrations that no longer block the others, and ``deployed`` creating the database."""
import os
import uuid

import pytest

from tests.harness.ansible_run import run_module as run_through_ansible
from tests.harness.fixtures import SqliteDatabase
from tests.harness.prisma_changes import BASES, CHANGES
from tests.harness.sync_sweep import failed_rows, placeholder, rows_of, run_module, schema_fingerprint

DATABASES = {'sqlite': 'sqlite_db', 'mysql': 'mariadb_db', 'postgresql': 'postgres_db'}
LONG64 = 'shipment_tracking_number_lookup_index_for_the_carrier_dashboards'


class History(object):
    """A migrations folder of the test's own and the database it is synced against."""

    def __init__(self, engine, database, folder):
        self.engine = engine
        self.database = database
        self.folder = folder
        os.makedirs(folder)
        with open(os.path.join(folder, 'migration_lock.toml'), 'w') as handle:
            handle.write('provider = "%s"\n' % engine)

    def add(self, name, sql):
        os.makedirs(os.path.join(self.folder, name))
        with open(os.path.join(self.folder, name, 'migration.sql'), 'w') as handle:
            handle.write(sql)
        return name

    def run(self, state='status', check=False, **params):
        args = dict(database_url=self.database.url, migrations_dir=self.folder, state=state)
        args.update(params)
        return run_module(args, check=check)

    def forget(self, name):
        self.database.execute('DELETE FROM _prisma_migrations WHERE migration_name = %s' % placeholder(self.database), (name,))

    def decision(self, result, name):
        return next(d for d in result['sync'] if d['migration'] == name)

    def q(self, name):
        return '`%s`' % name if self.engine == 'mysql' else '"%s"' % name


@pytest.fixture(params=sorted(DATABASES))
def history(request, tmp_path):
    return History(request.param, request.getfixturevalue(DATABASES[request.param]), str(tmp_path / 'migrations'))


@pytest.fixture
def pg_history(postgres_db, tmp_path):
    return History('postgresql', postgres_db, str(tmp_path / 'migrations'))


def deployed(history):
    result = history.run('deployed')
    assert not result.get('failed'), result.get('msg')
    assert history.run()['up_to_date']


def test_long_index_names_that_ran_are_marked_applied_never_run_again(pg_history):
    """Defect 1: PostgreSQL keeps 63 bytes of a 64-character name; the probe looked for 64 and re-ran the migration."""
    h = pg_history
    h.add('20240101000000_init', 'CREATE TABLE "Shipment" ("id" SERIAL NOT NULL, "code" TEXT, "carrier" TEXT);')
    names = [h.add('20240102000000_index_64', 'CREATE INDEX "%s" ON "Shipment"("code");' % LONG64),
             h.add('20240103000000_index_73', 'CREATE INDEX "%s_and_carrier" ON "Shipment"("code", "carrier");'
                   % LONG64.replace('shipment', 'parcel')),
             h.add('20240104000000_index_if_not_exists', 'CREATE INDEX IF NOT EXISTS "%s_by_carrier" ON "Shipment"("carrier");'
                   % LONG64.replace('carrier', 'courier'))]
    deployed(h)
    before = schema_fingerprint(h.database)
    for name in names:
        h.forget(name)
    result = h.run('synced')
    assert not result.get('failed'), result.get('msg')
    assert [h.decision(result, n)['decision'] for n in names] == ['mark_applied'] * 3
    assert [rows_of(h.database, n)[0][4] for n in names] == [0, 0, 0]  # recorded, not run (applied_steps_count 0)
    assert not failed_rows(h.database) and schema_fingerprint(h.database) == before


def view_scripts(h):
    q = h.q
    table = 'CREATE TABLE {0} ({1} INTEGER NOT NULL PRIMARY KEY, {2} TEXT, {3} TEXT);'.format(
        q('Order'), q('id'), q('ref'), q('note'))
    first = 'CREATE VIEW {0} AS SELECT {1}, {2} FROM {3};'.format(q('order_refs'), q('id'), q('ref'), q('Order'))
    body = 'SELECT {0}, {1}, {2} FROM {3}'.format(q('id'), q('ref'), q('note'), q('Order'))
    if h.engine == 'sqlite':
        second = 'DROP VIEW IF EXISTS "order_refs";\nCREATE VIEW "order_refs" AS %s;' % body
    else:
        second = 'CREATE OR REPLACE VIEW %s AS %s;' % (q('order_refs'), body)
    if h.engine == 'postgresql':
        first += ('\nCREATE OR REPLACE FUNCTION "order_label"(ref TEXT) RETURNS TEXT AS $$ SELECT \'#\' || ref $$ '
                  'LANGUAGE sql;')
        second += ('\nCREATE OR REPLACE FUNCTION "order_label"(ref TEXT) RETURNS TEXT AS $$ SELECT \'No. \' || ref $$ '
                   'LANGUAGE sql;')
    return table + '\n' + first, second


def view_columns(h):
    if h.engine == 'sqlite':
        return [r[0] for r in h.database.execute("SELECT name FROM pragma_table_info('order_refs')")]
    if h.engine == 'mysql':
        return [r[0] for r in h.database.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                                                 "DATABASE() AND TABLE_NAME = 'order_refs' ORDER BY ORDINAL_POSITION")]
    return [r[0] for r in h.database.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'order_refs'::regclass "
                                             "AND attnum > 0 ORDER BY attnum")]


def test_or_replace_is_judged_by_what_it_sets_never_by_existence(history):
    """Defect 2: CREATE OR REPLACE VIEW counted as applied because the view existed; its new column never appeared."""
    h = history
    first, second = view_scripts(h)
    h.add('20240101000000_orders', first)
    deployed(h)
    replace = h.add('20240201000000_replace_view', second)
    result = h.run('synced')
    assert not result.get('failed'), result.get('msg')
    assert h.decision(result, replace)['decision'] == 'apply'
    assert view_columns(h) == ['id', 'ref', 'note']
    if h.engine == 'postgresql':
        assert h.database.execute("SELECT order_label('7')") == [('No. 7',)]
    # and once it ran, a lost row is recorded again without running it
    h.forget(replace)
    result = h.run('synced')
    assert h.decision(result, replace)['decision'] == 'mark_applied' and rows_of(h.database, replace)[0][4] == 0


def test_folders_named_copy_work_with_every_state(history):
    """Defect 3: names with spaces were refused, and synced told the user to resolve them with a state that refused them."""
    h = history
    h.add('20240101000000_init', 'CREATE TABLE %s (%s INTEGER NOT NULL PRIMARY KEY);' % (h.q('Model'), h.q('id')))
    deployed(h)
    copy = h.add('20240126184148_new_models copy', 'ALTER TABLE %s ADD COLUMN %s INTEGER;' % (h.q('Model'), h.q('rank')))
    assert h.run('synced')['sync'][0]['decision'] == 'apply'
    assert h.run('absent', migration=copy)['changed'] and h.run()['summary']['pending'] == [copy]
    through_ansible = run_through_ansible('saferelease.core.prisma_migration_state',
                                          dict(database_url=h.database.url, migrations_dir=h.folder, state='applied',
                                               migration=copy))
    assert through_ansible['changed'] and not through_ansible.get('failed')
    h.forget(copy)
    result = h.run('synced', migration=copy)
    assert result['actions'][-1]['action'] == 'mark_applied' and h.run()['up_to_date']
    refused = h.run('applied', migration='../20240101000000_init')
    assert refused['failed'] and 'Invalid migration name' in refused['msg']


def test_temporary_tables_are_not_objects_that_must_exist(pg_history):
    """Defect 4: CREATE TEMP TABLE ... ON COMMIT DROP counted as a permanent table the database had to have."""
    h = pg_history
    h.add('20240101000000_init', 'CREATE TABLE "Invoice" ("id" SERIAL NOT NULL, CONSTRAINT "Invoice_pkey" PRIMARY KEY ("id"));')
    temp = h.add('20240201000000_with_temp', 'CREATE TEMP TABLE "tmp_ids" ON COMMIT DROP AS SELECT "id" FROM "Invoice";\n'
                                             'ALTER TABLE "Invoice" ADD COLUMN "legacyRef" INTEGER;')
    deployed(h)
    h.forget(temp)
    assert h.decision(h.run('synced'), temp)['decision'] == 'mark_applied'


def test_objects_a_later_migration_dropped_are_expected_absent(history):
    """Defect 5: a migration whose column and index a later one dropped was called partly applied."""
    h = history
    q = h.q
    h.add('20240101000000_init', 'CREATE TABLE {0} ({1} INTEGER NOT NULL PRIMARY KEY, {2} TEXT);'.format(
        q('Ticket'), q('id'), q('title')))
    added = h.add('20240201000000_add', 'ALTER TABLE {0} ADD COLUMN {1} TEXT;\nCREATE INDEX {2} ON {0}({3});'.format(
        q('Ticket'), q('legacy'), q('Ticket_title_idx'), q('title')))
    h.add('20240301000000_drop', 'DROP INDEX {0}{1};\nALTER TABLE {2} DROP COLUMN {3};'.format(
        q('Ticket_title_idx'), ' ON `Ticket`' if h.engine == 'mysql' else '', q('Ticket'), q('legacy')))
    deployed(h)
    h.forget(added)
    decision = h.decision(h.run('synced'), added)
    assert decision['decision'] == 'mark_applied' and decision['probe'] == 'present'


@pytest.mark.parametrize('engine', sorted(DATABASES))
def test_changes_other_than_additions_are_decided_by_their_effect(engine, request, tmp_path):
    """Defect 6: drops, defaults, nullability, types, enum values and renames could not be probed, so synced decided nothing."""
    database = request.getfixturevalue(DATABASES[engine])
    for number, (change, sql) in enumerate(sorted(CHANGES[engine].items())):
        if engine == 'sqlite':
            database = SqliteDatabase(tmp_path / ('db%d.sqlite' % number))
            open(database.path, 'w').close()
        elif number:
            database.server.drop_database(database.name)
            database.server.create_database(database.name)
        h = History(engine, database, str(tmp_path / ('m%d' % number)))
        h.add('20240101000000_base', BASES[engine])
        deployed(h)
        name = h.add('20240201000000_change', sql)
        result = h.run('synced')
        assert h.decision(result, name)['decision'] == 'apply', (change, result.get('msg'))
        assert h.run()['up_to_date'], change
        h.forget(name)
        result = h.run('synced')
        assert h.decision(result, name)['decision'] == 'mark_applied', (change, h.decision(result, name))


def test_an_undecidable_migration_stops_the_sync_but_not_the_ones_before_it(history):
    """Item 5: decide everything, act up to the first undecidable migration, report the rest with how to resolve them."""
    h = history
    q = h.q
    h.add('20240101000000_init', 'CREATE TABLE {0} ({1} INTEGER NOT NULL PRIMARY KEY);'.format(q('Account'), q('id')))
    deployed(h)
    by_hand = h.add('20240201000000_added_by_hand', 'ALTER TABLE {0} ADD COLUMN {1} TEXT;'.format(q('Account'), q('plan')))
    h.database.execute('ALTER TABLE {0} ADD COLUMN {1} TEXT'.format(q('Account'), q('plan')))
    backfill = h.add('20240301000000_backfill', "UPDATE {0} SET {1} = 'free' WHERE {1} IS NULL;".format(q('Account'), q('plan')))
    later = h.add('20240401000000_later', 'ALTER TABLE {0} ADD COLUMN {1} INTEGER;'.format(q('Account'), q('seats')))
    check = h.run('synced', check=True)
    assert check['failed'] and [a['migration'] for a in check['actions']] == [by_hand]
    assert not rows_of(h.database, by_hand)  # check mode changes nothing
    result = h.run('synced')
    assert result['failed'] and result['changed']
    assert [(d['migration'], d['decision'], d['acted']) for d in result['sync']] == [
        (by_hand, 'mark_applied', True), (backfill, 'undecidable', False), (later, 'apply', False)]
    assert 'line 1: UPDATE' in result['msg'] and 'state=applied migration="%s"' % backfill in result['msg']
    assert 'nothing after it was changed' in result['msg']
    assert len(rows_of(h.database, by_hand)) == 1 and not rows_of(h.database, backfill) and not rows_of(h.database, later)
    # the command the report gives settles it, and the next sync does the rest
    assert not h.run('applied', migration=backfill).get('failed')
    assert not h.run('synced').get('failed') and h.run()['up_to_date']


@pytest.mark.parametrize('engine', ['mysql', 'postgresql'])
def test_deployed_creates_a_missing_database_like_prisma_migrate_deploy(engine, request, tmp_path):
    """Defect 7: on a database that did not exist yet, deployed failed where prisma migrate deploy creates it."""
    server = request.getfixturevalue({'mysql': 'mariadb_server', 'postgresql': 'postgres_server'}[engine])
    name = 'created_%s' % uuid.uuid4().hex[:10]

    class Missing(object):
        url = server.url(name)

    h = History(engine, Missing, str(tmp_path / 'migrations'))
    h.add('20240101000000_init', BASES[engine])
    listing = {'mysql': 'SHOW DATABASES', 'postgresql': 'SELECT datname FROM pg_database'}[engine]
    try:
        check = h.run('deployed', check=True)
        assert not check.get('failed'), check.get('msg')
        assert [a['action'] for a in check['actions']][:2] == ['create_database', 'create_migrations_table']
        assert name not in [r[0] for r in server.execute(listing)]
        result = h.run('deployed')
        assert not result.get('failed'), result.get('msg')
        assert result['actions'][0]['action'] == 'create_database' and name in [r[0] for r in server.execute(listing)]
        assert h.run()['up_to_date'] and not h.run('deployed')['changed']
        status = h.run(database_url=server.url('never_%s' % uuid.uuid4().hex[:8]))
        assert status['failed'] and 'has no database' in status['msg']
    finally:
        server.drop_database(name)
