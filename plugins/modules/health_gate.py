#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: health_gate
short_description: Decide from real signals whether a service is healthy enough to go on
version_added: 0.1.0
description:
  - Polls an HTTP endpoint and any extra checks (process manager, TCP ports, file sizes, forbidden log lines, SQL
    values) every O(interval) seconds until they all pass O(consecutive_successes) times in a row, or fails after
    O(wait_timeout) seconds.
  - Optionally keeps watching for O(observe) seconds after that and fails at the first failed check, then samples
    the endpoint O(samples) times for error rate and latency percentiles, then compares a canary pool with its baseline
    from an nginx access log written in the format M(saferelease.core.nginx_split) configures.
  - Forbidden log lines fail the gate at once, since waiting cannot undo a line that was logged.
  - The verdict is C(pass), C(fail) or C(inconclusive) (a canary with too little traffic is never a silent pass).
  - Read only; SQL checks run in a read-only session.
requirements:
  - Python 3 on the managed host (Debian's C(python3)); HTTP, TCP, file and log checks and the canary analysis need
    nothing more (HTTP runs on the standard library, keeping connections alive while sampling).
  - C(pm2) or C(systemctl) on the host for the O(process) checks that name them.
author:
  - saferelease.core contributors (@saferelease)
extends_documentation_fragment:
  - saferelease.core.database
options:
  url:
    description: URL to probe. Without it only the extra checks run.
    type: str
  method:
    description: HTTP method.
    type: str
    default: GET
  headers:
    description:
      - Request headers, e.g. a C(Host) header or a token.
      - Kept out of the logs, as they may hold credentials.
    type: dict
    default: {}
  expect_status:
    description: Status codes that count as healthy. Redirects are not followed.
    type: list
    elements: int
    default: [200]
  expect_body:
    description: Regular expression the body must match.
    type: str
  expect_json:
    description: JSON fields (dotted paths such as C(checks.database) or C(items.0.id)) and the values they must have.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for the connection and for each read of one answer.
    type: float
    default: 5
  validate_certs:
    description: Verify TLS certificates. Turn off only for a self-signed certificate you trust.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the checks to pass O(consecutive_successes) times in a row.
    type: float
    default: 60
  interval:
    description: Seconds from the start of one poll to the start of the next.
    type: float
    default: 2
  consecutive_successes:
    description: How many polls in a row must pass; a service that answers once and fails the next second does not pass.
    type: int
    default: 1
  observe:
    description:
      - Seconds to keep polling after the gate passed; the first failed poll fails the gate.
      - A service that turns unhealthy is seen within O(interval) + O(timeout) seconds.
    type: float
    default: 0
  samples:
    description: Requests to send after the polls passed, to measure error rate and latency; 0 skips sampling.
    type: int
    default: 0
  sample_concurrency:
    description: Most requests in flight at once while sampling.
    type: int
    default: 4
  max_error_rate:
    description: Highest share of failed samples (0 to 1) that still passes.
    type: float
    default: 0.0
  max_latency_ms:
    description: Highest sample latency at O(latency_percentile) that still passes.
    type: float
  latency_percentile:
    description: Percentile (1 to 100) used for O(max_latency_ms) and for the canary latency comparison.
    type: int
    default: 95
  process:
    description: Processes that must be running; give at least one of O(process.pm2), O(process.systemd) or O(process.pid_file).
    type: dict
    suboptions:
      pm2:
        description:
          - pm2 app name; every instance must be C(online) in C(pm2 jlist), and none may restart between two polls
            (a crash loop shows as C(online) most of the time).
          - A pm2 daemon that is not running fails the check; the gate does not start one.
        type: str
      pm2_binary:
        description: The pm2 executable.
        type: str
        default: pm2
      pm2_home:
        description: PM2_HOME of the pm2 daemon to ask; by default C($PM2_HOME), else C(~/.pm2) of the remote user.
        type: path
      systemd:
        description: systemd unit that must be C(active) (C(systemctl is-active)).
        type: str
      pid_file:
        description: Pid file whose process must be alive.
        type: path
  tcp:
    description: TCP ports that must accept connections.
    type: list
    elements: dict
    suboptions:
      host:
        description: Host to connect to.
        type: str
        default: 127.0.0.1
      port:
        description: Port to connect to.
        type: int
        required: true
  file_min_size:
    description: Files that must exist with at least this many bytes (runbook 002's 0-byte database).
    type: list
    elements: dict
    suboptions:
      path:
        description: The file.
        type: path
        required: true
      bytes:
        description: Smallest healthy size.
        type: int
        default: 1
  log_file:
    description:
      - Log file watched for O(forbidden_patterns), from the moment the gate starts (or from O(log_offset)).
      - A file that shrank or was replaced (rotation) is read again from its start.
    type: path
  log_offset:
    description: Byte offset in O(log_file) to start reading from, e.g. the size recorded before a restart.
    type: int
  forbidden_patterns:
    description: Regular expressions that must not appear in new lines of O(log_file).
    type: list
    elements: str
    default: []
  sql_checks:
    description:
      - Queries whose first value must equal C(expect), e.g. an orphan-row count of 0. Use the connection options.
      - They run in a read-only session, so a query that tries to write fails the check.
    type: list
    elements: dict
    suboptions:
      query:
        description: A read-only query.
        type: str
        required: true
      expect:
        description: Expected value of the first column of the first row (compared as text when the types differ).
        type: raw
        required: true
      name:
        description: Short name for the report.
        type: str
  schema_dir:
    description: Folder a relative SQLite C(file:) URL is resolved against (the prisma folder).
    type: path
  canary:
    description: Compare a canary pool with its baseline from the access log nginx_split configures.
    type: dict
    suboptions:
      access_log:
        description: The JSON-lines access log.
        type: path
        required: true
      canary_pool:
        description: Pool name of the canary.
        type: str
        required: true
      baseline_pool:
        description: Pool name of the baseline.
        type: str
        required: true
      window:
        description: Seconds of log to analyse, ending now.
        type: float
        default: 300
      since:
        description: Epoch seconds before which no request counts, e.g. when the weights last changed.
        type: float
      min_requests:
        description: Fewest requests in each pool for a verdict; fewer is C(inconclusive).
        type: int
        default: 100
      max_error_rate_increase:
        description: How much higher (0 to 1) the canary's error rate (5xx answers) may be than the baseline's.
        type: float
        default: 0.01
      max_latency_ratio:
        description: How many times the baseline's latency percentile the canary's may be.
        type: float
        default: 1.5
      latency_floor_ms:
        description: Baseline latencies below this count as this, so that a few milliseconds of noise do not fail a canary.
        type: float
        default: 20
  fail_on_unhealthy:
    description: Fail the task when the verdict is not C(pass). With V(false) the verdict is only reported.
    type: bool
    default: true
notes:
  - Supports check mode; it never changes anything, so it runs the same checks.
'''

EXAMPLES = r'''
- name: Gate on health after the restart (three good answers in a row within a minute)
  saferelease.core.health_gate:
    url: http://127.0.0.1:3000/api/health
    expect_json:
      database: ok
    consecutive_successes: 3
    wait_timeout: 60
    interval: 1
    process:
      pm2: easy-erp

- name: Runbook 002 - no skipped migrations, no 0-byte database, latency under load
  saferelease.core.health_gate:
    url: http://127.0.0.1:8080/health
    file_min_size:
      - path: /opt/elontalk/customer_service.db
        bytes: 4096
    log_file: /var/log/elontalk/app.log
    forbidden_patterns: ['(?i)skipping migration']
    samples: 200
    max_error_rate: 0.01
    max_latency_ms: 300

- name: Runbook 004 - no orphan rows after the migration scripts
  saferelease.core.health_gate:
    env_file: /opt/ai-doc/.env
    process:
      systemd: ai-doc-backend.service
    sql_checks:
      - name: orphan task logs
        query: SELECT COUNT(*) FROM task_logs tl LEFT JOIN tasks t ON t.id = tl.task_id WHERE t.id IS NULL
        expect: 0

- name: Canary analysis over the traffic since the weights changed
  saferelease.core.health_gate:
    canary:
      access_log: /var/log/nginx/danci_split.log
      canary_pool: green
      baseline_pool: blue
      window: 900
      since: "{{ canary_step_started }}"
      min_requests: 200
    fail_on_unhealthy: false
  register: canary_gate
'''

RETURN = r'''
healthy:
  description: Whether the verdict is C(pass).
  returned: always
  type: bool
verdict:
  description: C(pass), C(fail) or C(inconclusive).
  returned: always
  type: str
checks:
  description: The latest result of every polled check, each with C(name), C(passed), C(msg) and its figures.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: "http http://127.0.0.1:3000/api/health", passed: true, msg: "HTTP 200 in 4.1 ms", status: 200, latency_ms: 4.1}
    - {name: "process pm2 easy-erp", passed: true, msg: "1 of 1 instances online", instances: 1, online: 1, restarts: 0}
metrics:
  description:
    - C(samples) (requests, errors, error_rate, latency_ms percentiles, requests_per_s) when sampling ran.
    - C(canary) (per-pool requests, errors, error_rate, latency_ms; window_s) when the canary analysis ran.
  returned: always
  type: dict
attempts:
  description: How many polls ran.
  returned: always
  type: int
elapsed_s:
  description: Seconds the gate took.
  returned: always
  type: float
'''

import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.saferelease.core.plugins.module_utils import canary_analysis, gate_checks, http_probe
from ansible_collections.saferelease.core.plugins.module_utils.database import (
    DatabaseError, connect, database_argument_spec, resolve_target)
from ansible_collections.saferelease.core.plugins.module_utils.process_runner import Pm2Runner, SystemctlRunner

NEXT_STEP = {
    'fail': 'The gate changed nothing; fix or roll back the release before going on (checks and metrics hold every figure).',
    'inconclusive': 'The gate changed nothing; let more traffic reach both pools (or widen the window) and analyse again '
                    'before going on.',
}


def build_http_probe(params):
    if not params['url']:
        return None
    expectation = http_probe.HttpExpectation(params['expect_status'], params['expect_body'], params['expect_json'])
    return http_probe.HttpProbe(params['url'], expectation, method=params['method'], headers=params['headers'],
                                timeout=params['timeout'], validate_certs=params['validate_certs'])


def build_process_checks(process):
    checks = []
    if process.get('pm2'):
        checks.append(gate_checks.Pm2Check(process['pm2'], Pm2Runner(process['pm2_binary'], process['pm2_home'])))
    if process.get('systemd'):
        checks.append(gate_checks.SystemdCheck(process['systemd'], SystemctlRunner()))
    if process.get('pid_file'):
        checks.append(gate_checks.PidFileCheck(process['pid_file']))
    return checks


def build_sql_checks(params):
    target = resolve_target(params['database_url'], params['env_file'], base_dir=params['schema_dir'],
                            variable=params['env_var'])

    def open_connection():
        return connect(target, params['connect_timeout'])
    return [gate_checks.SqlValueCheck(s['query'], s['expect'], target, open_connection, s['name'])
            for s in params['sql_checks']]


def build_polled_checks(params, probe):
    checks = [http_probe.HttpCheck(probe)] if probe else []
    checks.extend(build_process_checks(params['process'] or {}))
    checks.extend(gate_checks.TcpCheck(t['host'], t['port']) for t in params['tcp'] or [])
    checks.extend(gate_checks.FileMinSizeCheck(f['path'], f['bytes']) for f in params['file_min_size'] or [])
    if params['sql_checks']:
        checks.extend(build_sql_checks(params))
    if params['log_file'] and params['forbidden_patterns']:
        checks.append(gate_checks.ForbiddenLogLines(params['log_file'], params['forbidden_patterns'], params['log_offset']))
    return checks


def poll_until_healthy(params, gate):
    """Reasons the polled checks did not pass (then observe); empty when they did."""
    if not gate.checks:
        return []
    needed = params['consecutive_successes']
    outcome = gate.wait_until_healthy(needed, params['wait_timeout'])
    failed = gate_checks.failed_summary(gate.last)
    if outcome == 'final':
        return ['stopped after %d poll(s), as waiting cannot undo it: %s' % (gate.attempts, failed)]
    if outcome == 'timeout':
        return ['not healthy %d time(s) in a row within %ss after %d poll(s): %s' % (
            needed, params['wait_timeout'], gate.attempts, failed)]
    if params['observe'] > 0 and not gate.observe(params['observe']):
        return ['became unhealthy while observed for %ss, at poll %d: %s' % (
            params['observe'], gate.attempts, gate_checks.failed_summary(gate.last))]
    return []


def judge_samples(params, probe, result):
    pct = params['latency_percentile']
    figures = http_probe.sample(probe, params['samples'], params['sample_concurrency'], pct)
    result['metrics']['samples'] = figures
    return http_probe.sample_problems(figures, params['max_error_rate'], params['max_latency_ms'], pct)


def judge_canary(canary, pct, result):
    try:
        verdict, reasons, figures = canary_analysis.analyse_log(
            canary['access_log'], canary['canary_pool'], canary['baseline_pool'], window_s=canary['window'],
            since=canary['since'], min_requests=canary['min_requests'],
            max_error_rate_increase=canary['max_error_rate_increase'], max_latency_ratio=canary['max_latency_ratio'],
            latency_percentile=pct, latency_floor_ms=canary['latency_floor_ms'])
    except (IOError, OSError) as exc:
        verdict, reasons, figures = 'fail', ['cannot read access log %s: %s' % (canary['access_log'], exc.strerror)], {}
    result['metrics']['canary'] = figures
    return verdict, reasons


def run_gate(params):
    started = time.monotonic()
    probe = build_http_probe(params)
    gate = gate_checks.Gate(build_polled_checks(params, probe), params['interval'])
    result = dict(changed=False, metrics={})
    verdict = 'pass'
    try:
        reasons = poll_until_healthy(params, gate)
        if not reasons and probe and params['samples'] > 0:
            reasons = judge_samples(params, probe, result)
        if reasons:
            verdict = 'fail'
        elif params['canary']:
            verdict, reasons = judge_canary(params['canary'], params['latency_percentile'], result)
    finally:
        if probe:
            probe.close()
    result.update(verdict=verdict, healthy=verdict == 'pass', checks=gate.last, attempts=gate.attempts,
                  elapsed_s=round(time.monotonic() - started, 3))
    if verdict == 'pass':
        result['msg'] = 'healthy: %s; %.1fs' % ('; '.join(passed_summary(params, gate, result['metrics'])), result['elapsed_s'])
    else:
        result['msg'] = 'Health gate %s: %s. %s' % (verdict, ' | '.join(reasons), NEXT_STEP[verdict])
    return result


def passed_summary(params, gate, metrics):
    """What a passing gate saw, in the words of the message."""
    parts = []
    pct = params['latency_percentile']
    if gate.checks:
        parts.append('%d check(s) passed %d time(s) in a row after %d poll(s)' % (
            len(gate.checks), params['consecutive_successes'], gate.attempts))
    if gate.checks and params['observe'] > 0:
        parts.append('stayed healthy while observed for %ss' % params['observe'])
    if 'samples' in metrics:
        samples = metrics['samples']
        parts.append('%d samples, %.2f%% errors, p%s %.1f ms' % (
            samples['requests'], samples['error_rate'] * 100, pct, samples['latency_ms']['p%s' % pct]))
    if 'canary' in metrics:
        canary, baseline = metrics['canary']['canary'], metrics['canary']['baseline']
        parts.append('canary %s %.2f%% errors, p%s %.1f ms over %d requests; baseline %s %.2f%%, p%s %.1f ms over %d' % (
            params['canary']['canary_pool'], canary['error_rate'] * 100, pct, canary['latency_ms']['p%s' % pct],
            canary['requests'], params['canary']['baseline_pool'], baseline['error_rate'] * 100, pct,
            baseline['latency_ms']['p%s' % pct], baseline['requests']))
    return parts


def settings_problems(params):
    """Settings no argument spec can express; each entry says which option to fix."""
    found = []
    if not (params['url'] or params['process'] or params['tcp'] or params['file_min_size'] or params['sql_checks']
            or params['canary'] or (params['log_file'] and params['forbidden_patterns'])):
        found.append('nothing to check: give url, process, tcp, file_min_size, sql_checks, canary or log_file with '
                     'forbidden_patterns')
    if params['process'] and not any(params['process'].get(k) for k in ('pm2', 'systemd', 'pid_file')):
        found.append('process needs pm2, systemd or pid_file')
    if params['sql_checks'] and not (params['database_url'] or params['env_file']):
        found.append('sql_checks need the database: set database_url or env_file')
    if params['interval'] <= 0 or params['wait_timeout'] < 0 or params['timeout'] <= 0 or params['observe'] < 0:
        found.append('interval and timeout must be above 0, wait_timeout and observe at least 0')
    if params['consecutive_successes'] < 1 or params['samples'] < 0 or params['sample_concurrency'] < 1:
        found.append('consecutive_successes and sample_concurrency must be at least 1, samples at least 0')
    if not 0 <= params['max_error_rate'] <= 1 or not 1 <= params['latency_percentile'] <= 100:
        found.append('max_error_rate must lie in 0..1 and latency_percentile in 1..100')
    return found


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(
        url=dict(type='str'),
        method=dict(type='str', default='GET'),
        headers=dict(type='dict', default={}, no_log=True),
        expect_status=dict(type='list', elements='int', default=[200]),
        expect_body=dict(type='str'),
        expect_json=dict(type='dict', default={}),
        timeout=dict(type='float', default=5),
        validate_certs=dict(type='bool', default=True),
        wait_timeout=dict(type='float', default=60),
        interval=dict(type='float', default=2),
        consecutive_successes=dict(type='int', default=1),
        observe=dict(type='float', default=0),
        samples=dict(type='int', default=0),
        sample_concurrency=dict(type='int', default=4),
        max_error_rate=dict(type='float', default=0.0),
        max_latency_ms=dict(type='float'),
        latency_percentile=dict(type='int', default=95),
        process=dict(type='dict', options=dict(
            pm2=dict(type='str'), pm2_binary=dict(type='str', default='pm2'), pm2_home=dict(type='path'),
            systemd=dict(type='str'), pid_file=dict(type='path'))),
        tcp=dict(type='list', elements='dict', options=dict(
            host=dict(type='str', default='127.0.0.1'), port=dict(type='int', required=True))),
        file_min_size=dict(type='list', elements='dict', options=dict(
            path=dict(type='path', required=True), bytes=dict(type='int', default=1))),
        log_file=dict(type='path'),
        log_offset=dict(type='int'),
        forbidden_patterns=dict(type='list', elements='str', default=[]),
        sql_checks=dict(type='list', elements='dict', options=dict(
            query=dict(type='str', required=True), expect=dict(type='raw', required=True), name=dict(type='str'))),
        schema_dir=dict(type='path'),
        canary=dict(type='dict', options=dict(
            access_log=dict(type='path', required=True), canary_pool=dict(type='str', required=True),
            baseline_pool=dict(type='str', required=True), window=dict(type='float', default=300),
            since=dict(type='float'), min_requests=dict(type='int', default=100),
            max_error_rate_increase=dict(type='float', default=0.01), max_latency_ratio=dict(type='float', default=1.5),
            latency_floor_ms=dict(type='float', default=20))),
        fail_on_unhealthy=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('database_url', 'env_file')])
    params = module.params
    problems = settings_problems(params)
    if problems:
        module.fail_json(msg='Invalid health_gate settings: %s. Nothing was checked.' % '; '.join(problems))
    try:
        result = run_gate(params)
    except ValueError as exc:
        module.fail_json(msg='Invalid health_gate settings: %s. Nothing was checked.' % exc)
    except DatabaseError as exc:
        module.fail_json(msg='Cannot prepare the SQL checks: %s' % exc)
    except re.error as exc:
        module.fail_json(msg='Invalid regular expression in expect_body or forbidden_patterns: %s. Nothing was checked.' % exc)
    if not result['healthy'] and params['fail_on_unhealthy']:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
