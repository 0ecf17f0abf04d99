"""health_gate's HTTP side without Ansible: expectations, percentiles, limits, and probes against the real demo app."""
from ansible_collections.saferelease.core.plugins.module_utils import http_probe


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert http_probe.percentile(values, 50) == 50
    assert http_probe.percentile(values, 95) == 95
    assert http_probe.percentile(values, 100) == 100
    assert http_probe.percentile([7], 99) == 7
    assert http_probe.percentile([3, 1, 2], 50) == 2
    assert http_probe.percentile([], 50) is None


def test_latency_figures_include_the_gates_own_percentile():
    figures = http_probe.latency_figures([float(v) for v in range(1, 201)], 97)
    assert figures == dict(p50=100.0, p90=180.0, p95=190.0, p97=194.0, p99=198.0, max=200.0)
    assert http_probe.latency_figures([], 95)["p95"] is None


def test_json_field_paths():
    document = {"checks": {"database": "ok"}, "items": [{"id": 4}], "flag": False}
    assert http_probe.json_field(document, "checks.database") == "ok"
    assert http_probe.json_field(document, "items.0.id") == 4
    assert http_probe.json_field(document, "flag") is False
    assert http_probe.json_field(document, "items.1.id") is http_probe.MISSING
    assert http_probe.json_field(document, "checks.database.x") is http_probe.MISSING


def test_expectation_reports_every_problem():
    expect = http_probe.HttpExpectation([200], r'"status":\s*"ok"', {'checks.database': 'ok', 'items.0': 1})
    assert expect.problems(200, '{"status": "ok", "checks": {"database": "ok"}, "items": [1]}') == []
    problems = expect.problems(503, '{"status": "fail", "checks": {"database": "down"}}')
    assert problems[0] == 'status 503, expected 200'
    assert 'body does not match /"status":\\s*"ok"/' in problems
    assert "JSON field checks.database is 'down', expected 'ok'" in problems
    assert 'JSON field items.0 is missing' in problems
    assert expect.problems(200, '<html>')[-1].startswith('body is not JSON')
    assert http_probe.HttpExpectation([200, 204]).problems(301, '') == ['status 301, expected 200 or 204']


def test_sample_limits():
    outcomes = [dict(ok=True, status=200, latency_ms=float(ms), problems=[]) for ms in range(1, 96)]
    outcomes += [dict(ok=False, status=500, latency_ms=200.0, problems=['status 500, expected 200'])] * 5
    figures = http_probe.summarize_samples(outcomes, 2.0, 95)
    assert figures['requests'] == 100 and figures['errors'] == 5 and figures['error_rate'] == 0.05
    assert figures['requests_per_s'] == 50.0 and figures['top_problems'] == [('status 500, expected 200', 5)]
    assert http_probe.sample_problems(figures, max_error_rate=0.05, max_latency_ms=95, pct=95) == []
    problems = http_probe.sample_problems(figures, max_error_rate=0.01, max_latency_ms=90, pct=95)
    assert problems == ['sample error rate 5.00% above 1.00% (status 500, expected 200 x5)',
                        'sample p95 latency 95.0 ms above 90.0 ms']
    assert http_probe.sample_problems(http_probe.summarize_samples([], 0.0), 0) == ['no sample was taken']


def test_probe_against_the_demo_app(demo_app, unused_port):
    good = http_probe.HttpProbe(demo_app.url + '/api/health', http_probe.HttpExpectation(expect_json={'schema': 'ok'}))
    outcome = good.probe()
    assert outcome['ok'] and outcome['status'] == 200 and outcome['latency_ms'] > 0
    wrong = http_probe.HttpProbe(demo_app.url + '/api/version', http_probe.HttpExpectation(expect_json={'release': 'v1'}))
    assert wrong.probe()['problems'] == ["JSON field release is 'v2', expected 'v1'"]
    refused = http_probe.HttpProbe('http://127.0.0.1:%d/' % unused_port, http_probe.HttpExpectation(), timeout=1)
    outcome = refused.probe()
    assert not outcome['ok'] and outcome['status'] is None
    assert outcome['problems'] == ['connection failed: Connection refused']
    for probe in (good, wrong, refused):
        probe.close()


def test_sampling_keeps_to_its_concurrency_and_counts_every_answer(demo_app_factory):
    app = demo_app_factory(fault='error_rate:0.1')  # every 10th request answers 500
    probe = http_probe.HttpProbe(app.url + '/api/version', http_probe.HttpExpectation())
    figures = http_probe.sample(probe, 200, 4)
    probe.close()
    assert figures['requests'] == 200 and figures['errors'] == 20 and figures['error_rate'] == 0.1
    assert figures['top_problems'] == [('status 500, expected 200', 20)]
    assert 1 <= probe.opened <= 4 and probe.connections == []  # one kept-alive connection per thread, all closed


def test_a_keep_alive_connection_the_server_closed_is_not_an_error(tmp_path):
    """A server that closes idle connections (as nginx does after keepalive_timeout) is asked again, once."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def do_GET(self):
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True  # closes without "Connection: close": the client learns it on its next request

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe = http_probe.HttpProbe('http://user:p%%40ss@127.0.0.1:%d/health' % server.server_address[1],
                                     http_probe.HttpExpectation(expect_json={'status': 'ok'}))
        outcomes = [probe.probe() for _attempt in range(5)]
        probe.close()
    finally:
        server.shutdown()
        server.server_close()
    assert [o['ok'] for o in outcomes] == [True] * 5 and probe.opened == 5
    assert probe.headers['Authorization'] == 'Basic dXNlcjpwQHNz'  # user:p@ss


def test_only_http_and_https_urls():
    import pytest
    for url in ('ftp://host/x', 'http:///path', 'localhost:3000/health'):
        with pytest.raises(ValueError):
            http_probe.HttpProbe(url, http_probe.HttpExpectation())
