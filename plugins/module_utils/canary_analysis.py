# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary analysis over the JSON-lines access log that nginx_split configures.

Each line holds at least ``msec`` (epoch seconds), ``pool``, ``status`` and ``request_time``.
A canary fails when its error rate exceeds the baseline's by more than a margin, or its latency
percentile exceeds the baseline's by more than a ratio; too few requests is ``inconclusive``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import time

from ansible_collections.saferelease.core.plugins.module_utils.http_probe import percentile


def read_entries(path, since, until=None):
    """Access-log entries with ``since <= msec <= until``; lines that are not our JSON are counted, not fatal."""
    entries, skipped = [], 0
    until = until if until is not None else float('inf')
    with open(path, 'rb') as handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
                stamp = float(entry['msec'])
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            if since <= stamp <= until:
                entries.append(entry)
    return entries, skipped


def is_error(entry, error_statuses_from=500):
    try:
        return int(entry.get('status', 0)) >= error_statuses_from
    except (TypeError, ValueError):
        return True


def pool_figures(entries, pct):
    latencies = [float(e.get('request_time') or 0) * 1000 for e in entries]
    errors = sum(1 for e in entries if is_error(e))
    return dict(requests=len(entries), errors=errors,
                error_rate=round(float(errors) / len(entries), 4) if entries else None,
                latency_ms=dict(p50=_round(percentile(latencies, 50)), p_target=_round(percentile(latencies, pct)),
                                max=_round(max(latencies)) if latencies else None))


def _round(value):
    return round(value, 1) if value is not None else None


def analyse(entries, canary_pool, baseline_pool, min_requests=100, max_error_rate_increase=0.01,
            max_latency_ratio=1.5, latency_percentile=95, latency_floor_ms=5.0):
    """Verdict (pass/fail/inconclusive), the reasons and per-pool figures."""
    canary = [e for e in entries if e.get('pool') == canary_pool]
    baseline = [e for e in entries if e.get('pool') == baseline_pool]
    figures = dict(canary=pool_figures(canary, latency_percentile), baseline=pool_figures(baseline, latency_percentile))
    short = [name for name, pool in (('canary', canary), ('baseline', baseline)) if len(pool) < min_requests]
    if short:
        return 'inconclusive', ['too little traffic: %s' % ', '.join(
            '%s %s had %d requests (min_requests %d)' % (name, canary_pool if name == 'canary' else baseline_pool,
                                                         figures[name]['requests'], min_requests) for name in short)], figures
    reasons = []
    c, b = figures['canary'], figures['baseline']
    if c['error_rate'] - b['error_rate'] > max_error_rate_increase:
        reasons.append('canary error rate %.2f%% exceeds baseline %.2f%% by more than %.2f points' % (
            c['error_rate'] * 100, b['error_rate'] * 100, max_error_rate_increase * 100))
    # A floor keeps sub-millisecond baselines from turning noise into a failed canary.
    allowed = max(b['latency_ms']['p_target'], latency_floor_ms) * max_latency_ratio
    if c['latency_ms']['p_target'] > allowed:
        reasons.append('canary p%s latency %.1f ms exceeds %.1fx baseline (%.1f ms)' % (
            latency_percentile, c['latency_ms']['p_target'], max_latency_ratio, b['latency_ms']['p_target']))
    return ('fail' if reasons else 'pass'), reasons, figures


def analyse_log(path, canary_pool, baseline_pool, window_s=300, now=None, **limits):
    now = time.time() if now is None else now
    entries, skipped = read_entries(path, now - window_s, now)
    verdict, reasons, figures = analyse(entries, canary_pool, baseline_pool, **limits)
    figures.update(window_s=window_s, skipped_lines=skipped)
    return verdict, reasons, figures
