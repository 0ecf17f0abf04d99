"""health_gate's building blocks without Ansible: expectations, percentiles, log scanning, canary verdicts."""
import json

from ansible_collections.saferelease.core.plugins.module_utils import canary_analysis, gate_checks, http_probe


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert http_probe.percentile(values, 50) == 50
    assert http_probe.percentile(values, 95) == 95
    assert http_probe.percentile([7], 99) == 7
    assert http_probe.percentile([], 50) is None


def test_expectation_reports_every_problem():
    expect = http_probe.HttpExpectation([200], r'"status":\s*"ok"', {'checks.database': 'ok', 'items.0': 1})
    assert expect.problems(200, '{"status": "ok", "checks": {"database": "ok"}, "items": [1]}') == []
    problems = expect.problems(503, '{"status": "fail", "checks": {"database": "down"}}')
    assert problems[0] == 'status 503, expected 200'
    assert "JSON field checks.database is 'down', expected 'ok'" in problems
    assert 'JSON field items.0 is missing' in problems
    assert expect.problems(200, '<html>')[-1].startswith('body is not JSON')


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
    assert not outcome['passed'] and 'Skipping migration 0002' in outcome['msg']


def test_file_min_size_catches_the_zero_byte_database(tmp_path):
    empty = tmp_path / 'customer_service.db'
    empty.write_bytes(b'')
    assert not gate_checks.FileMinSizeCheck(str(empty), 1).run()['passed']
    assert 'does not exist' in gate_checks.FileMinSizeCheck(str(tmp_path / 'nope.db'), 1).run()['msg']
    empty.write_bytes(b'x' * 4096)
    assert gate_checks.FileMinSizeCheck(str(empty), 4096).run()['passed']


def _entries(pool, count, status=200, seconds=0.01, start=1000.0):
    return [dict(msec=start + i * 0.01, pool=pool, status=status, request_time=seconds) for i in range(count)]


def test_canary_verdicts():
    good = _entries('blue', 300) + _entries('green', 300)
    assert canary_analysis.analyse(good, 'green', 'blue')[0] == 'pass'
    bad = _entries('blue', 300) + _entries('green', 270) + _entries('green', 30, status=502)
    verdict, reasons, figures = canary_analysis.analyse(bad, 'green', 'blue')
    assert verdict == 'fail' and 'error rate 10.00%' in reasons[0] and figures['canary']['errors'] == 30
    slow = _entries('blue', 300) + _entries('green', 300, seconds=0.2)
    assert 'latency' in canary_analysis.analyse(slow, 'green', 'blue')[1][0]
    thin = _entries('blue', 300) + _entries('green', 20)
    verdict, reasons, _unused = canary_analysis.analyse(thin, 'green', 'blue', min_requests=100)
    assert verdict == 'inconclusive' and 'green had 20 requests' in reasons[0]


def test_canary_window_and_foreign_lines(tmp_path):
    log = tmp_path / 'split.log'
    lines = [json.dumps(e) for e in _entries('blue', 5, start=100.0) + _entries('blue', 5, start=500.0)]
    log.write_text('\n'.join(lines + ['127.0.0.1 - - "GET / HTTP/1.1" 200']) + '\n')
    entries, skipped = canary_analysis.read_entries(str(log), since=400.0)
    assert len(entries) == 5 and skipped == 1
