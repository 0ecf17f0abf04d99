"""health_gate's checks besides HTTP, and the polling gate, without Ansible: real files, sockets, processes, SQLite."""
import decimal
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.saferelease.core.plugins.module_utils import gate_checks
from ansible_collections.saferelease.core.plugins.module_utils.database import connect, parse_database_url


def test_file_min_size_catches_the_zero_byte_database(tmp_path):
    empty = tmp_path / 'customer_service.db'
    empty.write_bytes(b'')
    outcome = gate_checks.FileMinSizeCheck(str(empty), 1).run()
    assert not outcome['passed'] and outcome['size_bytes'] == 0
    assert outcome['msg'] == '%s is 0 bytes, expected at least 1' % empty
    assert 'does not exist' in gate_checks.FileMinSizeCheck(str(tmp_path / 'nope.db'), 1).run()['msg']
    empty.write_bytes(b'x' * 4096)
    assert gate_checks.FileMinSizeCheck(str(empty), 4096).run()['passed']


def test_tcp_check(unused_port):
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(1)
        assert gate_checks.TcpCheck('127.0.0.1', listener.getsockname()[1]).run()['passed']
    refused = gate_checks.TcpCheck('127.0.0.1', unused_port).run()
    assert not refused['passed'] and refused['msg'] == 'cannot connect: Connection refused'


def test_pid_file_check(tmp_path):
    pid_file = tmp_path / 'app.pid'
    assert gate_checks.PidFileCheck(str(pid_file)).run()['msg'] == 'no readable pid in %s' % pid_file
    pid_file.write_text('%d\n' % os.getpid())
    assert gate_checks.PidFileCheck(str(pid_file)).run()['passed']
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()  # reaped: its pid is free now
    pid_file.write_text('%d\n' % child.pid)
    outcome = gate_checks.PidFileCheck(str(pid_file)).run()
    assert not outcome['passed'] and outcome['msg'] == 'pid %d from %s is not running' % (child.pid, pid_file)


def _process_state(pid):
    with open('/proc/%d/stat' % pid) as handle:
        return handle.read().rsplit(')', 1)[-1].split()[0]


def test_pid_file_of_a_zombie_is_not_running(tmp_path):
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    try:
        while _process_state(child.pid) != 'Z':  # exited, not reaped yet: a zombie
            time.sleep(0.01)
        pid_file = tmp_path / 'app.pid'
        pid_file.write_text(str(child.pid))
        assert not gate_checks.PidFileCheck(str(pid_file)).run()['passed']
    finally:
        child.wait()


def test_forbidden_lines_only_count_from_the_start_offset_and_survive_partial_lines(tmp_path):
    log = tmp_path / 'app.log'
    log.write_text('WARN skipping migration 0001 (old run)\n')
    check = gate_checks.ForbiddenLogLines(str(log), [r'(?i)skipping migration'])
    assert check.run()['passed']
    with open(str(log), 'a') as handle:
        handle.write('INFO started\nWARN Skipping migra')
    assert check.run()['passed']
    with open(str(log), 'a') as handle:
        handle.write('tion 0002\n')
    outcome = check.run()
    assert not outcome['passed'] and outcome['final']
    assert outcome['msg'] == 'forbidden line /(?i)skipping migration/ logged: WARN Skipping migration 0002'
    assert outcome['start_offset'] == len('WARN skipping migration 0001 (old run)\n')


def test_forbidden_lines_from_a_given_offset(tmp_path):
    log = tmp_path / 'app.log'
    log.write_text('old line\n')
    offset = log.stat().st_size  # recorded before the restart
    with open(str(log), 'a') as handle:
        handle.write('Database initialized, skipping migration for now\n')
    outcome = gate_checks.ForbiddenLogLines(str(log), ['skipping migration'], offset=offset).run()
    assert not outcome['passed'] and outcome['matches'][0]['line'] == 'Database initialized, skipping migration for now'


def test_forbidden_lines_after_rotation(tmp_path):
    log = tmp_path / 'app.log'
    log.write_text('x' * 1000 + '\n')
    check = gate_checks.ForbiddenLogLines(str(log), ['FATAL'])
    assert check.run()['passed']
    os.rename(str(log), str(tmp_path / 'app.log.1'))  # logrotate's rename + create
    log.write_text('FATAL cannot open database\n' + 'y' * 2000 + '\n')
    outcome = check.run()
    assert not outcome['passed'] and 'FATAL cannot open database' in outcome['msg']


def test_missing_log_file_fails_the_poll_but_is_not_final(tmp_path):
    outcome = gate_checks.ForbiddenLogLines(str(tmp_path / 'later.log'), ['x']).run()
    assert not outcome['passed'] and not outcome.get('final') and 'No such file' in outcome['msg']


ORPHANS = 'SELECT COUNT(*) FROM items i LEFT JOIN orders o ON o.id = i.order_id WHERE o.id IS NULL'


@pytest.fixture
def orders_db(tmp_path):
    target = parse_database_url('file:%s' % (tmp_path / 'shop.db'))
    conn = connect(target, create=True)
    conn.executescript('CREATE TABLE orders (id INTEGER PRIMARY KEY); CREATE TABLE items (id INTEGER, order_id INTEGER);'
                       'INSERT INTO orders VALUES (1); INSERT INTO items VALUES (1, 1), (2, 9);')
    conn.close()
    return target


def test_sql_value_check(orders_db):
    check = gate_checks.SqlValueCheck(ORPHANS, 0, orders_db, lambda: connect(orders_db), 'orphan items')
    outcome = check.run()
    assert not outcome['passed'] and outcome['value'] == 1 and outcome['msg'] == 'value 1, expected 0'
    assert outcome['name'] == 'sql orphan items'
    assert gate_checks.SqlValueCheck(ORPHANS, '1', orders_db, lambda: connect(orders_db)).run()['passed']


def test_sql_checks_cannot_write(orders_db):
    check = gate_checks.SqlValueCheck('DELETE FROM items', 0, orders_db, lambda: connect(orders_db))
    outcome = check.run()
    assert not outcome['passed'] and 'query failed' in outcome['msg'] and 'readonly' in outcome['msg']
    conn = connect(orders_db)
    assert conn.execute('SELECT COUNT(*) FROM items').fetchone()[0] == 2
    conn.close()


def test_plain_values():
    assert gate_checks.plain_value(decimal.Decimal('3')) == 3 and gate_checks.plain_value(2.5) == 2.5
    assert gate_checks.same_value(3, '3') and not gate_checks.same_value(3, 0)


# --- the gate ---------------------------------------------------------------------------------

def test_gate_waits_for_consecutive_successes(tmp_path):
    database = tmp_path / 'dev.db'
    database.write_bytes(b'')
    gate = gate_checks.Gate([gate_checks.FileMinSizeCheck(str(database), 4096)], interval=0.05)
    fill = threading.Timer(0.3, database.write_bytes, [b'x' * 4096])
    fill.start()
    try:
        assert gate.wait_until_healthy(3, wait_timeout=30) == 'passed'
    finally:
        fill.join()
    assert gate.attempts >= 4 and gate.last[0]['passed'] and gate.last[0]['size_bytes'] == 4096


def test_gate_times_out_with_the_last_results(tmp_path):
    gate = gate_checks.Gate([gate_checks.FileMinSizeCheck(str(tmp_path / 'never.db'), 1)], interval=0.05)
    assert gate.wait_until_healthy(1, wait_timeout=0.2) == 'timeout'
    assert gate.attempts >= 2 and not gate.last[0]['passed']
    assert gate_checks.failed_summary(gate.last) == 'file_min_size %s: %s does not exist' % (
        tmp_path / 'never.db', tmp_path / 'never.db')


def test_gate_stops_at_a_failure_waiting_cannot_undo(tmp_path):
    log = tmp_path / 'app.log'
    log.write_text('')
    checks = [gate_checks.ForbiddenLogLines(str(log), ['skipping migration'])]
    log.write_text('skipping migration for now\n')
    gate = gate_checks.Gate(checks, interval=0.05)
    assert gate.wait_until_healthy(1, wait_timeout=3600) == 'final'
    assert gate.attempts == 1


def test_gate_observe_stops_at_the_first_failure(tmp_path):
    database = tmp_path / 'dev.db'
    database.write_bytes(b'x' * 10)
    gate = gate_checks.Gate([gate_checks.FileMinSizeCheck(str(database), 1)], interval=0.05)
    assert gate.wait_until_healthy(1, wait_timeout=5) == 'passed'
    assert gate.observe(0.2) and gate.attempts >= 3
    truncate = threading.Timer(0.2, database.write_bytes, [b''])
    truncate.start()
    try:
        assert not gate.observe(3600)
    finally:
        truncate.join()
    assert gate.last[0]['size_bytes'] == 0
