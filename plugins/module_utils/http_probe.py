# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP health probes: one request judged against expectations, and concurrent sampling with statistics."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import re
import threading
import time

try:
    import requests
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - reported by the module
    requests = None
    HAS_REQUESTS = False

MISSING = object()


def percentile(values, pct):
    """Nearest-rank percentile (what an operator computes by hand): pct in (0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-pct * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def json_field(document, path):
    """Value at a dotted path (``checks.database`` or ``items.0.id``), or MISSING."""
    node = document
    for part in path.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


class HttpExpectation(object):
    """What a healthy answer looks like: status codes, a body regex, JSON fields."""

    def __init__(self, expect_status=None, expect_body=None, expect_json=None):
        self.expect_status = list(expect_status or [200])
        self.body_pattern = re.compile(expect_body) if expect_body else None
        self.expect_json = dict(expect_json or {})

    def problems(self, status, body):
        """Why an answer is not healthy; an empty list means healthy."""
        found = []
        if status not in self.expect_status:
            found.append('status %s, expected %s' % (status, ' or '.join(str(s) for s in self.expect_status)))
        if self.body_pattern is not None and not self.body_pattern.search(body):
            found.append('body does not match /%s/' % self.body_pattern.pattern)
        if self.expect_json:
            found.extend(self._json_problems(body))
        return found

    def _json_problems(self, body):
        try:
            document = json.loads(body)
        except ValueError:
            return ['body is not JSON: %r' % body[:80]]
        found = []
        for path, expected in sorted(self.expect_json.items()):
            actual = json_field(document, path)
            if actual is MISSING:
                found.append('JSON field %s is missing' % path)
            elif actual != expected:
                found.append('JSON field %s is %r, expected %r' % (path, actual, expected))
        return found


class HttpProbe(object):
    """One keep-alive session to one URL; each ``probe()`` is a single judged request."""

    def __init__(self, url, expectation, method='GET', headers=None, timeout=5.0, validate_certs=True):
        # requests applies ``timeout`` to the connection and to each read of the answer.
        self.url = url
        self.expectation = expectation
        self.method = method
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.validate_certs = validate_certs
        self._local = threading.local()
        self._lock = threading.Lock()
        self.sessions = []

    def _session(self):
        # requests sessions are not thread-safe: one per sampling thread, each kept alive.
        session = getattr(self._local, 'session', None)
        if session is None:
            session = requests.Session()
            session.headers.update(self.headers)
            self._local.session = session
            with self._lock:
                self.sessions.append(session)
        return session

    def probe(self):
        started = time.monotonic()
        try:
            answer = self._session().request(self.method, self.url, timeout=self.timeout, verify=self.validate_certs,
                                             allow_redirects=False)
            body = answer.text
        except requests.exceptions.SSLError as exc:
            return self._outcome(started, None, ['TLS verification failed: %s' % _short(exc)])
        except requests.exceptions.Timeout:
            return self._outcome(started, None, ['no answer within %ss' % self.timeout])
        except requests.exceptions.ConnectionError as exc:
            return self._outcome(started, None, ['connection failed: %s' % _short(exc)])
        except requests.exceptions.RequestException as exc:  # a broken answer (bad chunking, encoding ...)
            return self._outcome(started, None, ['request failed: %s' % _short(exc)])
        return self._outcome(started, answer.status_code, self.expectation.problems(answer.status_code, body))

    def _outcome(self, started, status, problems):
        return dict(ok=not problems, status=status, latency_ms=round((time.monotonic() - started) * 1000, 1),
                    problems=problems)

    def close(self):
        """Close the connections of every thread that probed."""
        with self._lock:
            sessions, self.sessions = self.sessions, []
        for session in sessions:
            session.close()


def _short(exc):
    text = str(exc)
    reason = re.search(r"(Connection refused|Name or service not known|certificate verify failed[^'\")]*|timed out)", text)
    return reason.group(1) if reason else text[:200]


def sample(probe, count, concurrency, pct=95):
    """``count`` requests over at most ``concurrency`` threads; error rate and latency figures."""
    results = []
    lock = threading.Lock()
    remaining = [count]

    def worker():
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            outcome = probe.probe()
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=worker) for _unused in range(max(1, min(concurrency, count)))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarize_samples(results, time.monotonic() - started, pct)


LATENCY_PERCENTILES = (50, 90, 95, 99)


def latency_figures(latencies, pct):
    """p50/p90/p95/p99, the gate's own percentile and the maximum, in milliseconds."""
    figures = dict(('p%s' % p, percentile(latencies, p)) for p in sorted(set(LATENCY_PERCENTILES + (pct,))))
    figures['max'] = max(latencies) if latencies else None
    return figures


def summarize_samples(results, elapsed, pct=95):
    latencies = [r['latency_ms'] for r in results]
    errors = [r for r in results if not r['ok']]
    problems = {}
    for outcome in errors:
        for problem in outcome['problems']:
            problems[problem] = problems.get(problem, 0) + 1
    return dict(
        requests=len(results), errors=len(errors),
        error_rate=round(float(len(errors)) / len(results), 4) if results else None,
        latency_ms=latency_figures(latencies, pct),
        duration_s=round(elapsed, 3),
        requests_per_s=round(len(results) / elapsed, 1) if elapsed > 0 else None,
        top_problems=sorted(problems.items(), key=lambda item: -item[1])[:5])


def sample_problems(figures, max_error_rate, max_latency_ms=None, pct=95):
    """Why sampling figures fail the limits; an empty list means they pass."""
    if not figures['requests']:
        return ['no sample was taken']
    found = []
    if figures['error_rate'] > max_error_rate:
        found.append('sample error rate %.2f%% above %.2f%% (%s)' % (
            figures['error_rate'] * 100, max_error_rate * 100, ', '.join('%s x%d' % p for p in figures['top_problems'])))
    latency = figures['latency_ms']['p%s' % pct]
    if max_latency_ms is not None and latency > max_latency_ms:
        found.append('sample p%s latency %.1f ms above %.1f ms' % (pct, latency, max_latency_ms))
    return found


class HttpCheck(object):
    """The probe as one of the gate's polled checks."""

    def __init__(self, probe):
        self.probe = probe
        self.name = 'http %s' % probe.url

    def run(self):
        outcome = self.probe.probe()
        msg = '; '.join(outcome['problems']) or 'HTTP %s in %.1f ms' % (outcome['status'], outcome['latency_ms'])
        return dict(name=self.name, passed=outcome['ok'], msg=msg, status=outcome['status'],
                    latency_ms=outcome['latency_ms'])
