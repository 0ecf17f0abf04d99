# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary analysis over the JSON-lines access log that nginx_split configures.

Each line holds at least ``msec`` (epoch seconds), ``pool``, ``status`` and ``request_time``
(seconds). A canary fails when its error rate (5xx answers) exceeds the baseline's by more than a
margin, or its latency percentile exceeds the baseline's by more than a ratio; fewer requests than
``min_requests`` in either pool is ``inconclusive``, never a pass.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import time

from ansible_collections.saferelease.core.plugins.module_utils.http_probe import latency_figures

BLOCK_BYTES = 256 * 1024
# nginx stamps $msec when it writes the line, and its workers append in parallel, so a log is
# chronological to within moments (longer with a buffered access_log). Reading backwards stops only
# once lines are older than the window by this much, so a large log costs its window, not its size.
ORDER_SLACK_S = 60.0


def lines_backwards(path, block=BLOCK_BYTES):
    """The non-empty lines of ``path`` (bytes), last first, reading ``block`` bytes at a time."""
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        head = b''
        while position > 0:
            step = min(block, position)
            position -= step
            handle.seek(position)
            lines = (handle.read(step) + head).split(b'\n')
            head = lines.pop(0)  # may be the end of a line that began in the block before
            for line in reversed(lines):
                if line.strip():
                    yield line
        if head.strip():
            yield head


def read_entries(path, since, until=None):
    """Access-log entries with ``since <= msec <= until``, oldest first, and how many lines in the
    part read were not our JSON (counted, not fatal: another format may share the file)."""
    entries, skipped = [], 0
    until = until if until is not None else float('inf')
    for raw in lines_backwards(path):
        try:
            entry = json.loads(raw)
            stamp = float(entry['msec'])
        except (ValueError, KeyError, TypeError):
            skipped += 1
            continue
        if stamp < since - ORDER_SLACK_S:
            break
        if since <= stamp <= until:
            entries.append(entry)
    entries.reverse()
    return entries, skipped


def is_error(entry):
    """A 5xx answer (nginx's own 502/504 included) is an error; a status that is no number too."""
    try:
        return int(entry.get('status', 0)) >= 500
    except (TypeError, ValueError):
        return True


def request_ms(entry):
    try:
        return float(entry.get('request_time') or 0) * 1000
    except (TypeError, ValueError):
        return 0.0


def pool_figures(entries, pct):
    latencies = [request_ms(e) for e in entries]
    errors = sum(1 for e in entries if is_error(e))
    figures = latency_figures(latencies, pct)
    return dict(requests=len(entries), errors=errors,
                error_rate=round(float(errors) / len(entries), 4) if entries else None,
                latency_ms=dict((key, round(value, 1) if value is not None else None) for key, value in figures.items()))


def analyse(entries, canary_pool, baseline_pool, min_requests=100, max_error_rate_increase=0.01,
            max_latency_ratio=1.5, latency_percentile=95, latency_floor_ms=20.0):
    """Verdict (pass/fail/inconclusive), the reasons and per-pool figures."""
    pools = dict(canary=canary_pool, baseline=baseline_pool)
    figures = dict((role, pool_figures([e for e in entries if e.get('pool') == pool], latency_percentile))
                   for role, pool in pools.items())
    short = [role for role in ('canary', 'baseline') if figures[role]['requests'] < min_requests]
    if short:
        return 'inconclusive', ['too little traffic: %s' % ', '.join(
            '%s %s had %d requests (min_requests %d)' % (role, pools[role], figures[role]['requests'], min_requests)
            for role in short)], figures
    canary, baseline = figures['canary'], figures['baseline']
    reasons = []
    if canary['error_rate'] - baseline['error_rate'] > max_error_rate_increase:
        reasons.append('canary %s error rate %.2f%% exceeds baseline %s %.2f%% by more than %.2f points' % (
            canary_pool, canary['error_rate'] * 100, baseline_pool, baseline['error_rate'] * 100, max_error_rate_increase * 100))
    key = 'p%s' % latency_percentile
    # The floor keeps a few milliseconds of noise on a fast baseline from failing a canary.
    allowed = max(baseline['latency_ms'][key], latency_floor_ms) * max_latency_ratio
    if canary['latency_ms'][key] > allowed:
        reasons.append('canary %s p%s latency %.1f ms exceeds %.1fx baseline %s (%.1f ms, floor %.1f ms)' % (
            canary_pool, latency_percentile, canary['latency_ms'][key], max_latency_ratio, baseline_pool,
            baseline['latency_ms'][key], latency_floor_ms))
    return ('fail' if reasons else 'pass'), reasons, figures


def analyse_log(path, canary_pool, baseline_pool, window_s=300, now=None, since=None, **limits):
    """``analyse`` over the last ``window_s`` seconds of the log (not before ``since``, e.g. the moment
    the weights last changed)."""
    now = time.time() if now is None else now
    start = now - window_s if since is None else max(now - window_s, since)
    entries, skipped = read_entries(path, start, now)
    verdict, reasons, figures = analyse(entries, canary_pool, baseline_pool, **limits)
    figures.update(window_s=round(now - start, 3), skipped_lines=skipped)
    return verdict, reasons, figures
