# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP health probes: one request judged against expectations, and concurrent sampling with statistics."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import http.client as http_client
import json
import re
import socket
import ssl
import threading
import time

from urllib.parse import unquote, urlsplit

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
    """Keep-alive HTTP(S) connections to one URL, one per probing thread; each ``probe()`` is a single judged request.

    Built on the standard library (``http.client``, ``ssl``), so a managed host needs nothing but
    Debian's ``python3``. Redirects are not followed and proxies are not used: the gate judges the
    service it names. ``user:password@`` in the URL becomes a Basic ``Authorization`` header.
    """

    def __init__(self, url, expectation, method='GET', headers=None, timeout=5.0, validate_certs=True):
        parts = urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ValueError('url must be http:// or https:// with a host, not %r' % url)
        self.url = url
        self.expectation = expectation
        self.method = method.upper()
        self.host = parts.hostname
        self.port = parts.port
        self.https = parts.scheme == 'https'
        self.target = (parts.path or '/') + ('?' + parts.query if parts.query else '')
        self.headers = {'User-Agent': 'saferelease-health-gate', 'Accept': '*/*'}
        if parts.username is not None:
            credentials = '%s:%s' % (unquote(parts.username), unquote(parts.password or ''))
            self.headers['Authorization'] = 'Basic ' + base64.b64encode(credentials.encode('utf-8')).decode('ascii')
        self.headers.update(headers or {})
        self.timeout = timeout
        self.context = None
        if self.https:
            self.context = ssl.create_default_context()
            if not validate_certs:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        self._local = threading.local()
        self._lock = threading.Lock()
        self.connections = []  # open ones, of every thread
        self.opened = 0

    def _connection(self):
        """This thread's connection (kept alive between probes), and whether it served a request before."""
        connection = getattr(self._local, 'connection', None)
        if connection is not None:
            return connection, True
        if self.https:
            connection = http_client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        else:
            connection = http_client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._local.connection = connection
        with self._lock:
            self.connections.append(connection)
            self.opened += 1
        return connection, False

    def _drop(self):
        connection = getattr(self._local, 'connection', None)
        self._local.connection = None
        if connection is not None:
            connection.close()
            with self._lock:
                self.connections.remove(connection)

    def _exchange(self):
        connection, reused = self._connection()
        try:
            connection.request(self.method, self.target, headers=self.headers)
            answer = connection.getresponse()
            body = answer.read()
        except _STALE_CONNECTION:
            self._drop()
            if not reused:
                raise
            # the server closed an idle keep-alive connection: that is not an answer, ask again once
            connection, _reused = self._connection()
            connection.request(self.method, self.target, headers=self.headers)
            answer = connection.getresponse()
            body = answer.read()
        if answer.will_close:
            self._drop()
        charset = answer.headers.get_content_charset() or 'utf-8'
        return answer.status, body.decode(charset, 'replace')

    def probe(self):
        started = time.monotonic()
        try:
            status, body = self._exchange()
        except ssl.SSLError as exc:
            self._drop()
            return self._outcome(started, None, ['TLS verification failed: %s' % _short(exc)])
        except socket.timeout:
            self._drop()
            return self._outcome(started, None, ['no answer within %ss' % self.timeout])
        except (OSError, http_client.HTTPException) as exc:
            self._drop()
            kind = 'request failed' if isinstance(exc, http_client.HTTPException) else 'connection failed'
            return self._outcome(started, None, ['%s: %s' % (kind, _short(exc))])
        return self._outcome(started, status, self.expectation.problems(status, body))

    def _outcome(self, started, status, problems):
        return dict(ok=not problems, status=status, latency_ms=round((time.monotonic() - started) * 1000, 1),
                    problems=problems)

    def close(self):
        """Close the connections of every thread that probed."""
        with self._lock:
            connections, self.connections = self.connections, []
        for connection in connections:
            connection.close()


# What a keep-alive connection the server already closed looks like on the next request.
_STALE_CONNECTION = (http_client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def _short(exc):
    text = str(exc) or exc.__class__.__name__
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
