"""How ``synced`` decides whether a migration ran (sql_dialect, ddl_parser, schema_model, schema_catalog, schema_probe).

SQLite cases run on real database files; PostgreSQL and MySQL cases compare with the catalog a
database would have (a replay of the history, changed the way each case needs). The same rules
meet real servers in tests/integration/test_prisma_sync.py and in the corpus sweep.
"""
import sqlite3

import pytest

from ansible_collections.saferelease.core.plugins.module_utils.database import DatabaseTarget
from ansible_collections.saferelease.core.plugins.module_utils.ddl_parser import parse_migration
from ansible_collections.saferelease.core.plugins.module_utils.prisma import LocalMigration
from ansible_collections.saferelease.core.plugins.module_utils.schema_catalog import Catalog, read_catalog
from ansible_collections.saferelease.core.plugins.module_utils.schema_model import Expr, SchemaModel
from ansible_collections.saferelease.core.plugins.module_utils.schema_probe import History, Prober
from ansible_collections.saferelease.core.plugins.module_utils.sql_dialect import Dialect, truncate_pg_identifier
from tests.harness.prisma_changes import LITE_BASE, LITE_CHANGES, MY_BASE, MY_CHANGES, PG_BASE, PG_CHANGES

PG, MY, LITE = Dialect('postgresql', namespace='public'), Dialect('mysql', namespace='app'), Dialect('sqlite')
DIALECTS = {'postgresql': PG, 'mysql': MY, 'sqlite': LITE}
LONG64 = 'shipment_tracking_number_lookup_index_for_the_carrier_dashboards'
assert len(LONG64) == 64


def history_of(dialect, migrations):
    return History(dialect, [LocalMigration(name, '/m/%s/migration.sql' % name, script=sql.encode())
                             for name, sql in migrations])


def replayed_catalog(history, names, change=None):
    """The catalog a database holds after ``names`` ran (optionally changed by ``change(model)``)."""
    model = history.replay(set(names))
    if change is not None:
        change(model)
    objects = dict((key, dict((n, v) for n, v in comps.items() if not n.startswith('_'))) for key, comps in model.objects.items())
    return Catalog(history.dialect, objects)


def sqlite_catalog(tmp_path, scripts):
    path = str(tmp_path / 'live.db')
    conn = sqlite3.connect(path, isolation_level=None)
    for script in scripts:
        conn.executescript(script)
    return read_catalog(conn, DatabaseTarget('sqlite', path=path))


def verdict(dialect, migrations, pending, catalog):
    history = history_of(dialect, migrations)
    applied = [name for name, _sql in migrations if name != pending]
    prober = Prober(history, catalog)
    report = prober.probe(pending, applied, [])
    return report, prober


def live_from(dialect, migrations, ran, change=None):
    return replayed_catalog(history_of(dialect, migrations), ran, change)


# --- item 1: identifiers as each engine reads them ------------------------------------------------

def test_postgresql_truncates_names_to_63_bytes_on_a_character_boundary_and_folds_unquoted_ones():
    assert truncate_pg_identifier(LONG64) == LONG64[:63]
    assert truncate_pg_identifier('é' * 40) == 'é' * 31  # 62 bytes: the 32nd character would need bytes 63-64
    ops = parse_migration('CREATE INDEX "%s" ON Shipment (TrackingNumber);' % LONG64, PG)[0].ops
    assert ops[0].args[0] == LONG64[:63] and ops[0].args[1] == 'shipment' and ops[0].args[2][0].column == 'trackingnumber'


@pytest.mark.parametrize('create', ['CREATE INDEX "{0}" ON "Shipment"("code");',
                                    'CREATE INDEX IF NOT EXISTS "{0}_and_more_characters" ON "Shipment"("code");'])
def test_postgresql_finds_an_applied_index_under_its_truncated_name(create):
    migrations = [('m1', 'CREATE TABLE "Shipment" ("id" SERIAL NOT NULL, "code" TEXT);'), ('m2', create.format(LONG64))]
    report, prober = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))
    assert report.state == 'present', report.as_dict()
    # the same history without the index: absent, and running it would work
    report, prober = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1']))
    assert report.state == 'absent' and not prober.would_fail('m2', report)


def test_postgresql_create_index_if_not_exists_on_a_truncated_name_that_exists_is_a_no_op():
    migrations = [('m1', 'CREATE TABLE "T" ("a" TEXT); CREATE INDEX "%s" ON "T"("a");' % LONG64),
                  ('m2', 'CREATE INDEX IF NOT EXISTS "%sxyz" ON "T"("a"); ALTER TABLE "T" ADD COLUMN "b" TEXT;' % LONG64)]
    report, _p = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))
    assert report.state == 'present'
    assert [s.status for s in report.statements] == ['noop', 'seen']


def test_mysql_compares_column_and_index_names_without_case_and_table_names_as_the_server_says():
    migrations = [('m1', 'CREATE TABLE `Shipment` (`id` INTEGER NOT NULL, `Code` VARCHAR(20) NULL, PRIMARY KEY (`id`));'),
                  ('m2', 'CREATE INDEX `Shipment_Code_idx` ON `Shipment`(`CODE`);')]
    live = live_from(MY, migrations, ['m1', 'm2'])
    assert ('index', 'Shipment', 'shipment_code_idx') in live.objects and ('column', 'Shipment', 'code') in live.objects
    assert verdict(MY, migrations, 'm2', live)[0].state == 'present'
    folding = Dialect('mysql', lower_case_table_names=1)
    assert folding.key('Shipment', 'table') == 'shipment' and MY.key('Shipment', 'table') == 'Shipment'


def test_mysql_refuses_to_run_a_name_longer_than_64_characters():
    migrations = [('m1', 'CREATE TABLE `T` (`id` INTEGER NOT NULL, `a` INTEGER NULL, PRIMARY KEY (`id`));'),
                  ('m2', 'CREATE INDEX `%sx` ON `T`(`a`);' % LONG64)]
    report, _prober = verdict(MY, migrations, 'm2', live_from(MY, migrations, ['m1']))
    assert report.state == 'unprobeable' and 'MySQL refuses it' in report.reason and 'longer than 64' in report.reason


def test_sqlite_compares_every_name_without_case(tmp_path):
    migrations = [('m1', 'CREATE TABLE "Shipment" ("id" INTEGER NOT NULL PRIMARY KEY, "code" TEXT);'),
                  ('m2', 'CREATE INDEX "shipment_code_idx" ON "SHIPMENT"("CODE");')]
    live = sqlite_catalog(tmp_path, [migrations[0][1], 'CREATE INDEX "Shipment_Code_Idx" ON "shipment"("code");'])
    assert verdict(LITE, migrations, 'm2', live)[0].state == 'present'


def test_if_exists_on_a_missing_object_is_a_no_op(tmp_path):
    migrations = [('m1', 'CREATE TABLE "T" ("id" INTEGER NOT NULL PRIMARY KEY);'),
                  ('m2', 'DROP INDEX IF EXISTS "never_created"; ALTER TABLE "T" ADD COLUMN "b" TEXT;')]
    live = sqlite_catalog(tmp_path, [migrations[0][1], 'ALTER TABLE "T" ADD COLUMN "b" TEXT;'])
    report, _p = verdict(LITE, migrations, 'm2', live)
    assert report.state == 'present' and [s.status for s in report.statements] == ['noop', 'seen']


# --- item 2: OR REPLACE proves nothing by existence --------------------------------------------------

BODY_V1 = "BEGIN NEW.\"touchedAt\" = now(); RETURN NEW; END;"
BODY_V2 = "BEGIN NEW.\"touchedAt\" = clock_timestamp(); RETURN NEW; END;"
FUNCTION = 'CREATE OR REPLACE FUNCTION "touch"() RETURNS TRIGGER AS $$%s$$ LANGUAGE plpgsql;'


def test_postgresql_or_replace_function_is_judged_by_its_body():
    migrations = [('m1', FUNCTION % BODY_V1), ('m2', FUNCTION % BODY_V2)]
    assert verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))[0].state == 'present'
    report, prober = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1']))
    assert report.state == 'absent' and not prober.would_fail('m2', report)


def test_postgresql_or_replace_view_needs_the_rendering_the_server_gives():
    # without a server to render the body, the view's existence alone decides nothing
    migrations = [('m1', 'CREATE TABLE "T" ("a" INT, "b" INT); CREATE VIEW "v" AS SELECT "a" FROM "T";'),
                  ('m2', 'CREATE OR REPLACE VIEW "v" AS SELECT "a", "b" FROM "T";')]
    live = live_from(PG, migrations, ['m1'])
    report, _p = verdict(PG, migrations, 'm2', live)
    assert report.state == 'unprobeable' and 'view v' in report.reason


@pytest.mark.parametrize('engine', ['mysql', 'sqlite'])
def test_replaced_view_is_judged_by_its_definition(engine, tmp_path):
    q = '`' if engine == 'mysql' else '"'
    table = 'CREATE TABLE {0}T{0} ({0}a{0} INT, {0}b{0} INT);'.format(q)
    v1 = 'CREATE VIEW {0}v{0} AS SELECT {0}a{0} FROM {0}T{0};'.format(q)
    v2 = ('CREATE OR REPLACE VIEW {0}v{0} AS SELECT {0}a{0}, {0}b{0} FROM {0}T{0};' if engine == 'mysql' else
          'DROP VIEW IF EXISTS {0}v{0}; CREATE VIEW {0}v{0} AS SELECT {0}a{0}, {0}b{0} FROM {0}T{0};').format(q)
    migrations = [('m1', table + v1), ('m2', v2)]
    if engine == 'sqlite':
        (tmp_path / 'old').mkdir()
        (tmp_path / 'new').mkdir()
        old = sqlite_catalog(tmp_path / 'old', [table, v1])
        new = sqlite_catalog(tmp_path / 'new', [table, 'CREATE VIEW "v" AS SELECT "a", "b" FROM "T";'])
    else:
        # MySQL keeps its own rendering of the body: qualified names and an alias for every column
        def rendered(body):
            def change(model):
                model.objects[('view', 'v')]['definition'] = Expr(MY.expression_from_text(body))
            return change
        old = live_from(MY, migrations, ['m1'], rendered('select `T`.`a` AS `a` from `app`.`T`'))
        new = live_from(MY, migrations, ['m1', 'm2'], rendered('select `T`.`a` AS `a`,`T`.`b` AS `b` from `app`.`T`'))
    assert verdict(DIALECTS[engine], migrations, 'm2', new)[0].state == 'present'
    assert verdict(DIALECTS[engine], migrations, 'm2', old)[0].state == 'absent'


def test_a_migration_is_only_present_when_every_statement_was_seen():
    migrations = [('m1', 'CREATE TABLE "T" ("a" INT); CREATE VIEW "v" AS SELECT "a" FROM "T";'),
                  ('m2', 'ALTER TABLE "T" ADD COLUMN "b" INT; CREATE OR REPLACE VIEW "v" AS SELECT "a", "b" FROM "T";')]
    report, _p = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))
    assert report.state == 'unprobeable'
    assert [s.status for s in report.statements] == ['seen', 'unknown'] and report.stopped_by.parsed.line == 1


# --- item 3: each kind of change is seen by its effect ------------------------------------------------

@pytest.mark.parametrize('change', sorted(PG_CHANGES))
def test_postgresql_changes_are_seen_by_their_effect(change):
    migrations = [('m1', PG_BASE), ('m2', PG_CHANGES[change])]
    assert verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))[0].state == 'present'
    report, prober = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1']))
    assert report.state == 'absent', report.as_dict()
    assert not prober.would_fail('m2', report)


@pytest.mark.parametrize('change', sorted(MY_CHANGES))
def test_mysql_changes_are_seen_by_their_effect(change):
    migrations = [('m1', MY_BASE), ('m2', MY_CHANGES[change])]
    assert verdict(MY, migrations, 'm2', live_from(MY, migrations, ['m1', 'm2']))[0].state == 'present'
    report, prober = verdict(MY, migrations, 'm2', live_from(MY, migrations, ['m1']))
    assert report.state == 'absent', report.as_dict()
    assert not prober.would_fail('m2', report)


@pytest.mark.parametrize('change', sorted(LITE_CHANGES))
def test_sqlite_changes_are_seen_by_their_effect(change, tmp_path):
    migrations = [('m1', LITE_BASE), ('m2', LITE_CHANGES[change])]
    (tmp_path / 'ran').mkdir()
    (tmp_path / 'not').mkdir()
    assert verdict(LITE, migrations, 'm2', sqlite_catalog(tmp_path / 'ran', [LITE_BASE, LITE_CHANGES[change]]))[0].state \
        == 'present'
    report, prober = verdict(LITE, migrations, 'm2', sqlite_catalog(tmp_path / 'not', [LITE_BASE]))
    assert report.state == 'absent' and not prober.would_fail('m2', report)


def test_mysql_foreign_key_gets_the_index_innodb_creates():
    model = SchemaModel(MY)
    for statement in parse_migration(MY_BASE, MY):
        for one in statement.ops:
            one.apply(model)
    index = model.get(('index', 'Post', 'post_userid_fkey'))
    assert index is not None and index['columns'] == (('userid', False),) and index['_auto']


# --- item 4: judged against what later migrations did ------------------------------------------------------

@pytest.mark.parametrize('engine', ['postgresql', 'mysql', 'sqlite'])
def test_objects_a_later_migration_dropped_are_expected_absent(engine, tmp_path):
    q = '`' if engine == 'mysql' else '"'
    base = 'CREATE TABLE {0}T{0} ({0}id{0} INTEGER NOT NULL PRIMARY KEY, {0}a{0} INTEGER);'.format(q)
    add = 'ALTER TABLE {0}T{0} ADD COLUMN {0}b{0} INTEGER; CREATE INDEX {0}T_a_idx{0} ON {0}T{0}({0}a{0});'.format(q)
    drop = ('ALTER TABLE {0}T{0} DROP COLUMN {0}b{0}; DROP INDEX {0}T_a_idx{0}' + (' ON `T`;' if engine == 'mysql' else ';')
            ).format(q)
    migrations = [('m1', base), ('m2', add), ('m3', drop)]
    if engine == 'sqlite':
        live = sqlite_catalog(tmp_path, [base, add, drop])
    else:
        live = live_from(DIALECTS[engine], migrations, ['m1', 'm2', 'm3'])
    report, _p = verdict(DIALECTS[engine], migrations, 'm2', live)
    assert report.state == 'present', report.as_dict()
    assert all('would have failed without it' in o['via'] for s in report.statements for o in s.objects)


def test_partly_applied_means_partly_applied(tmp_path):
    base = 'CREATE TABLE "T" ("id" INTEGER NOT NULL PRIMARY KEY);'
    migrations = [('m1', base), ('m2', 'ALTER TABLE "T" ADD COLUMN "a" TEXT; ALTER TABLE "T" ADD COLUMN "b" TEXT;')]
    report, _p = verdict(LITE, migrations, 'm2', sqlite_catalog(tmp_path, [base, 'ALTER TABLE "T" ADD COLUMN "a" TEXT;']))
    assert report.state == 'partial' and report.present == ['column T.a'] and report.absent == ['column T.b']


def test_a_rebuild_written_before_later_changes_is_never_run_again(tmp_path):
    base = 'CREATE TABLE "T" ("id" INTEGER NOT NULL PRIMARY KEY);'
    rebuild = ('CREATE TABLE "new_T" ("id" INTEGER NOT NULL PRIMARY KEY, "a" TEXT NOT NULL DEFAULT \'x\');\n'
               'INSERT INTO "new_T" ("id") SELECT "id" FROM "T";\nDROP TABLE "T";\nALTER TABLE "new_T" RENAME TO "T";')
    later = 'ALTER TABLE "T" ADD COLUMN "b" TEXT;'
    migrations = [('m1', base), ('m2', rebuild), ('m3', later)]
    # "a" was dropped by hand: the rebuild did not run, but running it now would also drop "b"
    live = sqlite_catalog(tmp_path, [base, later])
    report, prober = verdict(LITE, migrations, 'm2', live)
    assert report.state == 'absent'
    assert any('column T.b would be left out' in problem for problem in prober.would_fail('m2', report))


def test_temporary_tables_are_not_objects_that_must_exist():
    sql = ('CREATE TEMP TABLE "tmp_ids" ON COMMIT DROP AS SELECT "id" FROM "T";\n'
           'INSERT INTO "tmp_ids" SELECT 1;\nALTER TABLE "T" ADD COLUMN "b" INT;\nDROP TABLE "tmp_ids";')
    parsed = parse_migration(sql, PG)
    assert [s.category for s in parsed] == ['neutral', 'neutral', 'ddl', 'neutral']
    migrations = [('m1', 'CREATE TABLE "T" ("id" INT);'), ('m2', sql)]
    assert verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))[0].state == 'present'


# --- item 5: data statements ---------------------------------------------------------------------------------

def test_data_statements_stop_marking_applied_but_not_applying_when_nothing_ran():
    migrations = [('m1', 'CREATE TABLE "T" ("id" INT);'),
                  ('m2', 'ALTER TABLE "T" ADD COLUMN "code" TEXT;\nUPDATE "T" SET "code" = \'x\';')]
    report, _p = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))
    assert report.state == 'unprobeable' and 'changes rows' in report.reason and report.stopped_by.parsed.line == 2
    assert verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1']))[0].state == 'absent'
    # a data statement before the first schema change might have run on its own: no decision either way
    migrations[1] = ('m2', 'UPDATE "T" SET "id" = 1;\nALTER TABLE "T" ADD COLUMN "code" TEXT;')
    assert verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1']))[0].state == 'unprobeable'


def test_statements_that_cannot_be_modelled_are_named():
    parsed = parse_migration('DO $$ BEGIN PERFORM 1; END $$;\nGRANT SELECT ON "T" TO reporting;', PG)
    assert [s.category for s in parsed] == ['opaque', 'opaque']
    migrations = [('m1', 'CREATE TABLE "T" ("id" INT);'), ('m2', 'GRANT SELECT ON "T" TO reporting;')]
    report, _p = verdict(PG, migrations, 'm2', live_from(PG, migrations, ['m1', 'm2']))
    assert report.state == 'unprobeable' and report.reason.startswith('line 1 cannot be modelled')
