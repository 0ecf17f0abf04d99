"""Checksums, migration folder, timestamps, status classification, plans and writes on real SQLite
(plugins/module_utils/prisma.py)."""
import datetime
import hashlib
import json
import os
import sqlite3

import pytest

from ansible_collections.saferelease.core.plugins.module_utils import prisma as p
from ansible_collections.saferelease.core.plugins.module_utils.database import DatabaseTarget

UTC = datetime.timezone.utc


def test_checksum_is_sha256_hex_of_raw_bytes():
    assert p.compute_checksum(b'hello') == '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
    assert p.compute_checksum('abcd') == hashlib.sha256(b'abcd').hexdigest()


@pytest.mark.parametrize('pair', [(b'ab\ncd\nef\ngh\rab', b'ab\r\ncd\r\nef\r\ngh\rab'),
                                  (b'ab\ncd\nef\ngh\rab\n', b'ab\r\ncd\r\nef\r\ngh\rab\r\n')])
def test_checksum_is_line_ending_agnostic(pair):
    for script in pair:
        for other in pair:
            assert p.checksum_matches(script, p.compute_checksum(other))


def test_checksum_negative_and_legacy_unpadded():
    assert not p.checksum_matches(b'abc', p.compute_checksum(b'abcd'))
    assert not p.checksum_matches(b'abc\n', p.compute_checksum(b'abc'))
    # find a script whose digest has a byte < 0x10 so the legacy form is shorter than 64
    for i in range(100):
        script = ('SELECT %d;' % i).encode()
        digest = hashlib.sha256(script).digest()
        if any(b < 16 for b in digest):
            break
    legacy = ''.join('%x' % b for b in digest)
    assert len(legacy) < 64
    assert p.checksum_matches(script, legacy)
    assert not p.checksum_matches(b'other', legacy)


def test_migration_name_validation():
    # any folder name Prisma applies is a name: spaces, "copy", quotes (always bound, never interpolated)
    for good in ('20250821015630_add_shipment_file_field', '20240126184148_new_models copy', "x'; DROP TABLE t; --",
                 '_leading', '20240101_a;b', '2024.sql'):
        assert p.validate_migration_name(good) == good
    for bad in ('../etc', 'a/b', 'a..b', '..', '.', '', ' ', 'nul\x00', 'tab\there', 'line\nbreak', 'del\x7f'):
        with pytest.raises(p.MigrationNameError) as err:
            p.validate_migration_name(bad)
        assert 'nothing was changed' in err.value.message or 'No migration name' in err.value.message
    with pytest.raises(p.MigrationNameError) as err:
        p.validate_migration_name('a' * 201)
    assert err.value.code == 'P3010'


def make_dir(tmp_path, migrations, provider='sqlite'):
    root = tmp_path / 'prisma' / 'migrations'
    root.mkdir(parents=True)
    if provider:
        (root / 'migration_lock.toml').write_text('# Please do not edit\nprovider = "%s"\n' % provider)
    for name, sql in migrations:
        (root / name).mkdir()
        if sql is not None:
            (root / name / 'migration.sql').write_bytes(sql.encode() if isinstance(sql, str) else sql)
    return str(root)


def test_read_migrations_dir_sorted_with_provider(tmp_path):
    path = make_dir(tmp_path, [('2_b', 'SELECT 2;'), ('1_a', 'SELECT 1;'), ('3_broken', None)])
    (tmp_path / 'prisma' / 'migrations' / 'README.md').write_text('not a migration')
    mdir = p.read_migrations_dir(path)
    assert mdir.names == ['1_a', '2_b', '3_broken']
    assert mdir.provider == 'sqlite'
    assert mdir.get('3_broken').script is None
    with pytest.raises(p.MigrationsDirError) as err:
        mdir.get('3_broken').read_script()
    assert err.value.code == 'P3015'


def test_missing_migrations_dir(tmp_path):
    with pytest.raises(p.MigrationsDirError) as err:
        p.read_migrations_dir(str(tmp_path / 'nope'))
    assert 'does not exist' in err.value.message


def test_provider_mismatch_is_p3019(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [], provider='postgresql'))
    p.check_provider(mdir, 'postgresql')
    with pytest.raises(p.MigrationStateError) as err:
        p.check_provider(mdir, 'mysql')
    assert err.value.code == 'P3019'


def test_no_lock_file_means_no_check(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [], provider=None))
    assert mdir.provider is None
    p.check_provider(mdir, 'mysql')


@pytest.mark.parametrize('value, expected', [
    (1755741390123, '2025-08-21T01:56:30.123Z'),
    ('1755741390123', '2025-08-21T01:56:30.123Z'),
    ('2025-08-21 01:56:30', '2025-08-21T01:56:30.000Z'),
    ('2025-08-21 01:56:30.5', '2025-08-21T01:56:30.500Z'),
    ('2025-08-21T01:56:30.123456Z', '2025-08-21T01:56:30.123Z'),
    ('2025-08-21T03:56:30+02:00', '2025-08-21T01:56:30.000Z'),
    ('2025-08-21T01:56:30.123+00:00', '2025-08-21T01:56:30.123Z'),
    ('Thu, 21 Aug 2025 01:56:30 +0000', '2025-08-21T01:56:30.000Z'),
    (datetime.datetime(2025, 8, 21, 1, 56, 30), '2025-08-21T01:56:30.000Z'),
    (datetime.datetime(2025, 8, 21, 3, 56, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))), '2025-08-21T01:56:30.000Z'),
])
def test_timestamps_in_every_form(value, expected):
    assert p.format_timestamp(p.parse_timestamp(value)) == expected


def test_bad_timestamp():
    with pytest.raises(ValueError):
        p.parse_timestamp('yesterday')


def rec(name, checksum, finished=True, rolled_back=False, started=1, id=None, logs=None):
    ts = datetime.datetime(2025, 1, 1, tzinfo=UTC) + datetime.timedelta(minutes=started)
    return p.MigrationRecord(id or '%s-%d' % (name, started), checksum, ts if finished else None, name, logs,
                             ts if rolled_back else None, ts, 1 if finished else 0)


def test_classify_every_status(tmp_path):
    scripts = dict(('m%d' % i, 'SELECT %d;' % i) for i in range(1, 7))
    mdir = p.read_migrations_dir(make_dir(tmp_path, sorted(scripts.items())))
    cs = dict((k, p.compute_checksum(v)) for k, v in scripts.items())
    records = [
        rec('m1', cs['m1']),                                   # applied
        rec('m2', 'f' * 64),                                   # modified
        rec('m3', cs['m3'], finished=False),                   # failed
        rec('m4', cs['m4'], finished=False, rolled_back=True),  # rolled back
        # m5 pending
        rec('m6', cs['m6'], finished=False, rolled_back=True, started=1),
        rec('m6', cs['m6'], started=2),                        # applied after a rolled-back attempt
        rec('gone', 'a' * 64),                                 # missing locally
    ]
    entries, summary, up_to_date = p.classify(mdir, records)
    status = dict((e['name'], e['status']) for e in entries)
    assert status == {'m1': 'applied', 'm2': 'modified', 'm3': 'failed', 'm4': 'rolled_back', 'm5': 'pending',
                      'm6': 'applied', 'gone': 'missing_locally'}
    assert [e['name'] for e in entries] == ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'gone']
    assert summary['pending'] == ['m5'] and summary['missing_locally'] == ['gone']
    assert not up_to_date
    m6 = [e for e in entries if e['name'] == 'm6'][0]
    assert m6['records'] == 2 and m6['finished_at'] is not None and m6['checksum_matches'] is True


def test_a_failed_migration_missing_locally_is_failed_because_it_blocks_deploy(tmp_path):
    # After a Level 1 rollback the failed migration's folder is gone with the release, but its row
    # still makes `prisma migrate deploy` refuse with P3009: it must be listed as failed.
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;')]))
    records = [rec('m1', p.compute_checksum('SELECT 1;')), rec('gone_failed', 'b' * 64, finished=False),
               rec('gone_rolled_back', 'c' * 64, finished=False, rolled_back=True)]
    entries, summary, _unused = p.classify(mdir, records)
    assert summary['failed'] == ['gone_failed']
    assert summary['missing_locally'] == ['gone_rolled_back']
    assert [e['local'] for e in entries if e['name'] == 'gone_failed'] == [False]
    assert p.plan_mark_rolled_back(records, 'gone_failed') == [
        {'action': 'mark_rolled_back', 'migration': 'gone_failed', 'id': 'gone_failed-1'}]


def test_classify_crlf_file_matches_lf_checksum(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', b'SELECT 1;\r\nSELECT 2;\r\n')]))
    entries, _s, up = p.classify(mdir, [rec('m1', p.compute_checksum(b'SELECT 1;\nSELECT 2;\n'))])
    assert entries[0]['status'] == 'applied' and up


def test_up_to_date_and_no_table(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;')]))
    assert p.classify(mdir, [rec('m1', p.compute_checksum('SELECT 1;'))])[2] is True
    entries, summary, up = p.classify(mdir, None)
    assert summary['pending'] == ['m1'] and not up


def test_plan_mark_applied_rules(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;')]))
    cs = p.compute_checksum('SELECT 1;')
    assert [a['action'] for a in p.plan_mark_applied(mdir, [], 'm1', table_exists=False)] == ['create_migrations_table', 'mark_applied']
    assert p.plan_mark_applied(mdir, [rec('m1', cs)], 'm1') == []          # Prisma: P3008; here: nothing to do
    actions = p.plan_mark_applied(mdir, [rec('m1', cs, finished=False, id='x1')], 'm1')
    assert [(a['action'], a.get('id')) for a in actions] == [('mark_rolled_back', 'x1'), ('mark_applied', None)]
    with pytest.raises(p.MigrationNameError) as err:
        p.plan_mark_applied(mdir, [], 'nope')
    assert err.value.code == 'P3017'


def test_plan_mark_rolled_back_rules():
    with pytest.raises(p.MigrationStateError) as err:
        p.plan_mark_rolled_back([], 'm1')
    assert err.value.code == 'P3011'
    with pytest.raises(p.MigrationStateError) as err:
        p.plan_mark_rolled_back([rec('m1', 'c')], 'm1')
    assert err.value.code == 'P3012'
    actions = p.plan_mark_rolled_back([rec('m1', 'c', finished=False, id='f1')], 'm1')
    assert actions == [{'action': 'mark_rolled_back', 'migration': 'm1', 'id': 'f1'}]
    assert p.plan_mark_rolled_back([rec('m1', 'c', finished=False, rolled_back=True)], 'm1') == []


def test_plan_deploy_rules(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;'), ('m2', 'SELECT 2;')]))
    cs1 = p.compute_checksum('SELECT 1;')
    assert [a['migration'] for a in p.plan_deploy(mdir, [rec('m1', cs1)])] == ['m2']
    assert [a['migration'] for a in p.plan_deploy(mdir, [rec('m1', cs1, finished=False, rolled_back=True)])] == ['m1', 'm2']
    with pytest.raises(p.MigrationStateError) as err:
        p.plan_deploy(mdir, [rec('m1', cs1, finished=False, logs='boom')])
    assert err.value.code == 'P3009' and 'boom' in err.value.message
    with pytest.raises(p.MigrationStateError) as err:
        p.plan_deploy(mdir, None, table_exists=False, existing_tables=['User'])
    assert err.value.code == 'P3005'


class FakeReport(object):
    def __init__(self, state, present=(), absent=()):
        self.state = state
        self.present = list(present)
        self.absent = list(absent)

    def as_dict(self):
        return dict(present=self.present, absent=self.absent, unprobeable=[], reason=None, statements=[],
                    stopped_by=None)


class FakeProber(object):
    """Reports a fixed state per migration and records what it was asked."""

    def __init__(self, states, details=None, failures=None):
        self.states = states
        self.details = details or {}
        self.failures = failures or {}
        self.asked = []

    def probe(self, name, applied, pending_after):
        self.asked.append((name, sorted(applied), list(pending_after)))
        present, absent = self.details.get(name, ((), ()))
        return FakeReport(self.states[name], present, absent)

    def would_fail(self, name, report):
        return self.failures.get(name, [])


def test_plan_sync_decisions(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;'), ('m2', 'SELECT 2;'), ('m3', 'SELECT 3;')]))
    prober = FakeProber({'m1': 'present', 'm2': 'absent', 'm3': 'empty'})
    actions, decisions, blocked = p.plan_sync(mdir, [], prober)
    assert [(a['action'], a['migration']) for a in actions] == [('mark_applied', 'm1'), ('apply', 'm2'), ('apply', 'm3')]
    assert [d['decision'] for d in decisions] == ['mark_applied', 'apply', 'apply'] and not blocked
    # each migration is judged with the ones decided before it counted as applied
    assert prober.asked == [('m1', [], ['m2', 'm3']), ('m2', ['m1'], ['m3']), ('m3', ['m1', 'm2'], [])]
    actions, _d, _b = p.plan_sync(mdir, [], FakeProber({'m1': 'present', 'm2': 'present', 'm3': 'present'}), only='m3')
    assert [a['migration'] for a in actions] == ['m3']


def test_plan_sync_acts_up_to_the_first_undecidable_and_decides_the_rest(tmp_path):
    scripts = [('m1', 'SELECT 1;'), ('m2', 'SELECT 2;'), ('m3', 'SELECT 3;'), ('m4 copy', 'SELECT 4;')]
    mdir = p.read_migrations_dir(make_dir(tmp_path, scripts))
    prober = FakeProber({'m1': 'present', 'm2': 'unprobeable', 'm3': 'absent', 'm4 copy': 'partial'},
                        details={'m4 copy': (['column T.a'], ['column T.b'])})
    actions, decisions, blocked = p.plan_sync(mdir, [], prober)
    assert [(a['action'], a['migration']) for a in actions] == [('mark_applied', 'm1')]
    assert [(d['migration'], d['decision'], d['acted']) for d in decisions] == [
        ('m1', 'mark_applied', True), ('m2', 'undecidable', False), ('m3', 'apply', False), ('m4 copy', 'conflict', False)]
    assert [d['migration'] for d in blocked] == ['m2', 'm4 copy']
    assert 'state=applied migration="m2"' in blocked[0]['resolve'][0]
    assert 'prisma migrate resolve --applied "m2"' in blocked[0]['resolve'][0]
    message = p.sync_blocked_message(blocked, actions)
    assert message.startswith('Sync stopped at m2: 1 migration(s) synced before it; nothing after it was changed.')
    assert 'm4 copy is partly applied' in message and 'exists: column T.a | missing: column T.b' in message


def test_plan_sync_refuses_to_run_what_would_not_do_what_its_history_did(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;')]))
    _a, decisions, blocked = p.plan_sync(mdir, [], FakeProber({'m1': 'absent'}, failures={'m1': ['index i already exists']}))
    assert decisions[0]['decision'] == 'conflict' and 'index i already exists' in decisions[0]['reason'] and blocked


def test_plan_sync_failed_migration_is_rolled_back_first(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;')]))
    actions, _d, _b = p.plan_sync(mdir, [rec('m1', 'c', finished=False, id='f')], FakeProber({'m1': 'absent'}))
    assert [a['action'] for a in actions] == ['mark_rolled_back', 'apply']


def test_plan_sync_with_applied_rows_missing_locally_decides_nothing(tmp_path):
    mdir = p.read_migrations_dir(make_dir(tmp_path, [('m1', 'SELECT 1;')]))
    actions, decisions, blocked = p.plan_sync(mdir, [rec('m0_gone', 'c')], FakeProber({'m1': 'absent'}))
    assert not actions and decisions[0]['decision'] == 'undecidable' and 'm0_gone' in decisions[0]['reason']


def sqlite_target(tmp_path):
    return DatabaseTarget('sqlite', path=str(tmp_path / 'dev.db'))


def test_writes_on_real_sqlite_match_prisma_rows(tmp_path):
    path = make_dir(tmp_path, [('m1', 'CREATE TABLE a (id INTEGER);\n'), ('m2', 'CREATE TABLE b (id INTEGER); SELECT nope FROM missing;')])
    mdir = p.read_migrations_dir(path)
    target = sqlite_target(tmp_path)
    conn = sqlite3.connect(target.path, isolation_level=None)
    assert p.read_records(conn, target) is None
    with p.MigrationLock(conn, target, 2):
        actions = p.plan_deploy(mdir, None, table_exists=False)
        with pytest.raises(p.MigrationApplyError) as err:
            p.execute_actions(conn, target, mdir, actions)
    assert err.value.code == 'P3018'
    rows = conn.execute('SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count '
                        'FROM _prisma_migrations ORDER BY started_at').fetchall()
    assert len(rows) == 2
    ok, bad = rows
    assert ok[3] == 'm1' and ok[7] == 1 and ok[4] is None and isinstance(ok[2], int) and isinstance(ok[6], int)
    assert len(ok[0]) == 36 and ok[0][14] == '4'  # uuid v4
    assert ok[1] == p.compute_checksum('CREATE TABLE a (id INTEGER);\n')
    assert bad[3] == 'm2' and bad[2] is None and bad[7] == 0 and 'no such table: missing' in bad[4] and 'Migration name: m2' in bad[4]
    records = p.read_records(conn, target)
    entries, summary, _u = p.classify(mdir, records)
    assert summary['failed'] == ['m2']
    # resolve --rolled-back, then --applied
    p.execute_actions(conn, target, mdir, p.plan_mark_rolled_back(records, 'm2'))
    records = p.read_records(conn, target)
    assert p.classify(mdir, records)[1]['rolled_back'] == ['m2']
    p.execute_actions(conn, target, mdir, p.plan_mark_applied(mdir, records, 'm2'))
    records = p.read_records(conn, target)
    new = [r for r in records if r.migration_name == 'm2' and r.is_applied][0]
    assert new.logs == '' and new.applied_steps_count == 0 and new.started_at == new.finished_at
    assert p.classify(mdir, records)[2] is True
    # absent removes every row of the name
    p.execute_actions(conn, target, mdir, p.plan_delete(records, 'm2'))
    assert [r.migration_name for r in p.read_records(conn, target)] == ['m1']


def test_sqlite_text_timestamps_written_by_other_tools_are_read(tmp_path):
    target = sqlite_target(tmp_path)
    conn = sqlite3.connect(target.path, isolation_level=None)
    p.create_migrations_table(conn, target)
    conn.execute("INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at) VALUES ('a', 'c', 'm1', '2025-08-21T01:56:30.000+00:00')")
    records = p.read_records(conn, target)
    assert p.format_timestamp(records[0].finished_at) == '2025-08-21T01:56:30.000Z'
    assert records[0].started_at is not None  # DEFAULT current_timestamp text


def test_sqlite_lock_times_out_when_held(tmp_path):
    target = sqlite_target(tmp_path)
    first = sqlite3.connect(target.path, isolation_level=None)
    second = sqlite3.connect(target.path, isolation_level=None)
    with p.MigrationLock(first, target, 1):
        with pytest.raises(p.LockTimeoutError):
            p.MigrationLock(second, target, 0.3).acquire()
    p.MigrationLock(second, target, 1).acquire().release()


def test_simulate_and_render(tmp_path):
    records = [rec('m1', 'c', finished=False, id='f1')]
    after = p.simulate(records, [{'action': 'mark_rolled_back', 'id': 'f1', 'migration': 'm1'},
                                 {'action': 'mark_applied', 'migration': 'm1', 'checksum': 'c'}])
    assert [r.state for r in after] == ['rolled_back', 'applied']
    assert records[0].rolled_back_at is None
    text = p.render_records(after)
    assert text.count('\n') == 2 and 'm1' in text
    assert p.render_records(None).startswith('(no _prisma_migrations')


def test_backup_records(tmp_path):
    target = sqlite_target(tmp_path)
    out = p.backup_records([rec('m1', 'c')], str(tmp_path), target)
    assert os.path.dirname(out) == str(tmp_path) and oct(os.stat(out).st_mode & 0o777) == '0o600'
    data = json.load(open(out))
    assert data['rows'][0]['migration_name'] == 'm1' and data['table_exists'] is True
    explicit = p.backup_records(None, str(tmp_path / 'sub' / 'rows.json'), target)
    assert json.load(open(explicit))['table_exists'] is False


def test_ddl_matches_prisma():
    assert 'applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0\n) DEFAULT CHARACTER SET utf8mb4' in p.MIGRATIONS_TABLE_DDL['mysql']
    assert 'started_at              TIMESTAMPTZ NOT NULL DEFAULT now()' in p.MIGRATIONS_TABLE_DDL['postgresql']
    assert '"started_at"            DATETIME NOT NULL DEFAULT current_timestamp' in p.MIGRATIONS_TABLE_DDL['sqlite']
    assert (p.POSTGRES_LOCK_ID, p.MYSQL_LOCK_NAME) == (72707369, 'prisma_migrate')
