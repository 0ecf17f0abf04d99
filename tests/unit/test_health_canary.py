"""Canary analysis over the nginx_split JSON access log: verdicts, windows and reading a log from its end."""
import json

from ansible_collections.saferelease.core.plugins.module_utils import canary_analysis


def _entries(pool, count, status=200, seconds=0.01, start=1000.0):
    return [dict(msec=start + i * 0.01, pool=pool, status=status, request_time=seconds) for i in range(count)]


def _write(path, entries, head=()):
    path.write_text('\n'.join(list(head) + [json.dumps(e) for e in entries]) + '\n')


def test_canary_verdicts():
    good = _entries('blue', 300) + _entries('green', 300, seconds=0.012)
    verdict, reasons, figures = canary_analysis.analyse(good, 'green', 'blue')
    assert (verdict, reasons) == ('pass', [])
    assert figures['canary']['requests'] == 300 and figures['canary']['latency_ms']['p95'] == 12.0
    bad = _entries('blue', 300) + _entries('green', 270) + _entries('green', 30, status=502)
    verdict, reasons, figures = canary_analysis.analyse(bad, 'green', 'blue')
    assert verdict == 'fail' and figures['canary']['errors'] == 30 and figures['canary']['error_rate'] == 0.1
    assert reasons == ['canary green error rate 10.00% exceeds baseline blue 0.00% by more than 1.00 points']
    slow = _entries('blue', 300) + _entries('green', 300, seconds=0.2)
    assert canary_analysis.analyse(slow, 'green', 'blue')[1] == [
        'canary green p95 latency 200.0 ms exceeds 1.5x baseline blue (10.0 ms, floor 20.0 ms)']


def test_client_errors_are_no_canary_errors():
    entries = _entries('blue', 200) + _entries('green', 150) + _entries('green', 50, status=404)
    assert canary_analysis.analyse(entries, 'green', 'blue')[0] == 'pass'


def test_a_bad_baseline_raises_the_bar_the_canary_is_measured_against():
    entries = _entries('blue', 180) + _entries('blue', 20, status=500) + _entries('green', 190) + _entries('green', 10, status=500)
    assert canary_analysis.analyse(entries, 'green', 'blue')[0] == 'pass'


def test_too_little_traffic_is_inconclusive_in_either_pool():
    thin = _entries('blue', 300) + _entries('green', 20)
    verdict, reasons, _unused = canary_analysis.analyse(thin, 'green', 'blue', min_requests=100)
    assert verdict == 'inconclusive'
    assert reasons == ['too little traffic: canary green had 20 requests (min_requests 100)']
    verdict, reasons, _unused = canary_analysis.analyse(_entries('green', 500, status=500), 'green', 'blue')
    assert verdict == 'inconclusive' and 'baseline blue had 0 requests' in reasons[0]


def test_window_and_foreign_lines(tmp_path):
    log = tmp_path / 'split.log'
    _write(log, _entries('blue', 5, start=100.0) + _entries('blue', 5, start=500.0),
           head=['127.0.0.1 - - "GET / HTTP/1.1" 200'])
    entries, skipped = canary_analysis.read_entries(str(log), since=400.0)
    assert [e['msec'] for e in entries] == [500.0, 500.01, 500.02, 500.03, 500.04]
    # Reading stopped at the lines far older than the window, before the foreign line at the top.
    assert skipped == 0
    entries, skipped = canary_analysis.read_entries(str(log), since=0)
    assert len(entries) == 10 and skipped == 1


def test_reading_backwards_across_blocks(tmp_path):
    log = tmp_path / 'split.log'
    entries = _entries('blue', 300, start=1000.0)
    _write(log, entries)
    lines = list(canary_analysis.lines_backwards(str(log), block=37))  # every line spans block edges
    assert [json.loads(line) for line in reversed(lines)] == entries


def test_a_line_being_written_is_skipped(tmp_path):
    log = tmp_path / 'split.log'
    _write(log, _entries('blue', 3))
    with open(str(log), 'a') as handle:
        handle.write('{"msec": 1000.5, "pool": "bl')
    entries, skipped = canary_analysis.read_entries(str(log), since=0)
    assert len(entries) == 3 and skipped == 1


def test_analyse_log_since_the_weights_changed(tmp_path):
    log = tmp_path / 'split.log'
    before = _entries('blue', 100, start=1000.0) + _entries('green', 100, status=500, start=1000.0)
    after = _entries('blue', 100, start=1100.0) + _entries('green', 100, start=1100.0)
    _write(log, sorted(before + after, key=lambda e: e['msec']))
    verdict, _unused, figures = canary_analysis.analyse_log(str(log), 'green', 'blue', window_s=300, now=1200.0,
                                                            min_requests=50)
    assert verdict == 'fail' and figures['window_s'] == 300
    verdict, _unused, figures = canary_analysis.analyse_log(str(log), 'green', 'blue', window_s=300, now=1200.0,
                                                            since=1100.0, min_requests=50)
    assert verdict == 'pass' and figures['canary']['requests'] == 100 and figures['window_s'] == 100
