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
  - Read only; check mode runs the same checks.
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
    description: Request headers, e.g. a C(Host) header or a token.
    type: dict
    default: {}
  expect_status:
    description: Status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  expect_body:
    description: Regular expression the body must match.
    type: str
  expect_json:
    description: JSON fields (dotted paths such as C(checks.database)) and the values they must have.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for one answer.
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
    description: Seconds between two polls.
    type: float
    default: 2
  consecutive_successes:
    description: How many polls in a row must pass; a service that answers once and fails the next second does not pass.
    type: int
    default: 1
  observe:
    description: Seconds to keep polling after the gate passed; the first failed poll fails the gate.
    type: float
    default: 0
  samples:
    description: Requests to send after the polls passed, to measure error rate and latency; 0 skips sampling.
    type: int
    default: 0
  sample_concurrency:
    description: Parallel requests while sampling.
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
    description: Percentile used for O(max_latency_ms) and for the canary latency comparison.
    type: int
    default: 95
  process:
    description: A process that must be running; give one of C(pm2), C(systemd) or C(pid_file).
    type: dict
    suboptions:
      pm2:
        description: pm2 app name; every instance must be C(online) in C(pm2 jlist).
        type: str
      pm2_binary:
        description: The pm2 executable.
        type: str
        default: pm2
      pm2_home:
        description: PM2_HOME of the pm2 daemon to ask.
        type: path
      systemd:
        description: systemd unit that must be C(active).
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
    description: Log file watched for O(forbidden_patterns) from the moment the gate starts (or from O(log_offset)).
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
    description: Queries whose first value must equal C(expect), e.g. an orphan-row count of 0. Use the connection options.
    type: list
    elements: dict
    suboptions:
      query:
        description: A read-only query.
        type: str
        required: true
      expect:
        description: Expected value of the first column of the first row.
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
      min_requests:
        description: Fewest requests per pool for a verdict; fewer is C(inconclusive).
        type: int
        default: 100
      max_error_rate_increase:
        description: How much higher (0 to 1) the canary's error rate may be than the baseline's.
        type: float
        default: 0.01
      max_latency_ratio:
        description: How many times the baseline's latency percentile the canary's may be.
        type: float
        default: 1.5
  fail_on_unhealthy:
    description: Fail the task when the verdict is not C(pass). With V(false) the verdict is only reported.
    type: bool
    default: true
notes:
  - Supports check mode; it never changes anything.
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
    sql_checks:
      - name: orphan document chunks
        query: SELECT COUNT(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id WHERE d.id IS NULL
        expect: 0

- name: Canary analysis over the last five minutes
  saferelease.core.health_gate:
    canary:
      access_log: /var/log/nginx/danci_split.log
      canary_pool: green
      baseline_pool: blue
      window: 300
      min_requests: 200
  register: canary_gate
  failed_when: false
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
  description: The last result of every check, each with C(name), C(passed), C(msg) and its figures.
  returned: always
  type: list
  elements: dict
metrics:
  description: C(samples) (error rate, latency percentiles) and C(canary) (per-pool figures) when they ran.
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.saferelease.core.plugins.module_utils import canary_analysis, gate_checks, http_probe
from ansible_collections.saferelease.core.plugins.module_utils.database import (
    DatabaseError, connect, database_argument_spec, resolve_target)


def build_http_probe(params):
    if not params['url']:
        return None
    expectation = http_probe.HttpExpectation(params['expect_status'], params['expect_body'], params['expect_json'])
    return http_probe.HttpProbe(params['url'], expectation, method=params['method'], headers=params['headers'],
                                timeout=params['timeout'], validate_certs=params['validate_certs'])


class HttpCheck(object):
    def __init__(self, probe):
        self.probe = probe
        self.name = 'http %s' % probe.url

    def run(self):
        outcome = self.probe.probe()
        msg = 'HTTP %s in %.1f ms' % (outcome['status'], outcome['latency_ms'])
        if outcome['problems']:
            msg = '; '.join(outcome['problems'])
        return gate_checks.result(self.name, outcome['ok'], msg, status=outcome['status'], latency_ms=outcome['latency_ms'])


def build_polled_checks(params, probe):
    checks = [HttpCheck(probe)] if probe else []
    process = params['process'] or {}
    if process.get('pm2'):
        environ = {'PM2_HOME': process['pm2_home']} if process.get('pm2_home') else None
        checks.append(gate_checks.Pm2Check(process['pm2'], gate_checks.CommandRunner(process['pm2_binary'], environ)))
    if process.get('systemd'):
        checks.append(gate_checks.SystemdCheck(process['systemd'], gate_checks.CommandRunner('systemctl')))
    if process.get('pid_file'):
        checks.append(gate_checks.PidFileCheck(process['pid_file']))
    checks.extend(gate_checks.TcpCheck(t['host'], t['port']) for t in params['tcp'] or [])
    checks.extend(gate_checks.FileMinSizeCheck(f['path'], f['bytes']) for f in params['file_min_size'] or [])
    if params['sql_checks']:
        target = resolve_target(params['database_url'], params['env_file'], base_dir=params['schema_dir'],
                                variable=params['env_var'])

        def open_connection():
            return connect(target, params['connect_timeout'])
        checks.extend(gate_checks.SqlValueCheck(s['query'], s['expect'], open_connection, s.get('name'))
                      for s in params['sql_checks'])
    return checks


class Gate(object):
    """Polls the checks until they pass ``needed`` times in a row, then optionally observes."""

    def __init__(self, checks, log_check, interval, clock=time.monotonic, sleep=time.sleep):
        self.checks, self.log_check = checks, log_check
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self.attempts = 0
        self.last = []

    def poll(self):
        self.attempts += 1
        self.last = [check.run() for check in self.checks]
        if self.log_check is not None:
            self.last.append(self.log_check.run())
        return all(r['passed'] for r in self.last)

    def log_failed(self):
        return any(not r['passed'] and r['name'] == getattr(self.log_check, 'name', None) for r in self.last)

    def wait_until_healthy(self, needed, deadline):
        streak = 0
        while True:
            streak = streak + 1 if self.poll() else 0
            if streak >= needed:
                return True
            if self.log_failed() or self.clock() + self.interval > deadline:
                return False
            self.sleep(self.interval)

    def observe(self, until):
        while self.clock() + self.interval <= until:
            self.sleep(self.interval)
            if not self.poll():
                return False
        return True


def failed_summary(checks):
    return '; '.join('%s: %s' % (c['name'], c['msg']) for c in checks if not c['passed'])


def run_gate(params):
    started = time.monotonic()
    probe = build_http_probe(params)
    log_check = None
    if params['log_file'] and params['forbidden_patterns']:
        log_check = gate_checks.ForbiddenLogLines(params['log_file'], params['forbidden_patterns'], params['log_offset'])
    gate = Gate(build_polled_checks(params, probe), log_check, params['interval'])
    result = dict(changed=False, healthy=False, verdict='fail', checks=[], metrics={}, attempts=0, elapsed_s=0.0)
    reasons = []
    try:
        passed = True
        if gate.checks or log_check:
            passed = gate.wait_until_healthy(max(1, params['consecutive_successes']), started + params['wait_timeout'])
            if not passed:
                reasons.append('not healthy %d time(s) in a row within %ss after %d poll(s): %s' % (
                    params['consecutive_successes'], params['wait_timeout'], gate.attempts, failed_summary(gate.last)))
            elif params['observe'] > 0 and not gate.observe(time.monotonic() + params['observe']):
                passed = False
                reasons.append('became unhealthy while observed for %ss: %s' % (params['observe'], failed_summary(gate.last)))
        verdict = 'pass' if passed else 'fail'
        if passed and probe and params['samples'] > 0:
            verdict = judge_samples(params, probe, result, reasons)
        if verdict == 'pass' and params['canary']:
            verdict = judge_canary(params['canary'], params['latency_percentile'], result, reasons)
    finally:
        if probe:
            probe.close()
    result.update(verdict=verdict, healthy=verdict == 'pass', checks=gate.last, attempts=gate.attempts,
                  elapsed_s=round(time.monotonic() - started, 3))
    result['msg'] = 'healthy after %d poll(s) in %.1fs' % (gate.attempts, result['elapsed_s']) if verdict == 'pass' \
        else 'Health gate %s: %s' % (verdict, ' | '.join(reasons))
    return result


def judge_samples(params, probe, result, reasons):
    figures = http_probe.sample(probe, params['samples'], params['sample_concurrency'])
    result['metrics']['samples'] = figures
    failed = []
    if figures['error_rate'] > params['max_error_rate']:
        failed.append('sample error rate %.2f%% above %.2f%% (%s)' % (
            figures['error_rate'] * 100, params['max_error_rate'] * 100,
            ', '.join('%s x%d' % p for p in figures['top_problems'])))
    if params['max_latency_ms'] is not None:
        key = {50: 'p50', 90: 'p90', 95: 'p95', 99: 'p99'}.get(params['latency_percentile'])
        value = figures['latency_ms'][key] if key else None
        if value is None:
            failed.append('latency_percentile must be 50, 90, 95 or 99 for sampling')
        elif value > params['max_latency_ms']:
            limit = params['max_latency_ms']
            failed.append('sample p%d latency %.1f ms above %.1f ms' % (params['latency_percentile'], value, limit))
    reasons.extend(failed)
    return 'fail' if failed else 'pass'


def judge_canary(canary, pct, result, reasons):
    try:
        verdict, why, figures = canary_analysis.analyse_log(
            canary['access_log'], canary['canary_pool'], canary['baseline_pool'], window_s=canary['window'],
            min_requests=canary['min_requests'], max_error_rate_increase=canary['max_error_rate_increase'],
            max_latency_ratio=canary['max_latency_ratio'], latency_percentile=pct)
    except (IOError, OSError) as exc:
        verdict, why, figures = 'fail', ['cannot read access log %s: %s' % (canary['access_log'], exc.strerror)], {}
    result['metrics']['canary'] = figures
    reasons.extend(why)
    return verdict


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(
        url=dict(type='str'),
        method=dict(type='str', default='GET'),
        headers=dict(type='dict', default={}),
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
            min_requests=dict(type='int', default=100), max_error_rate_increase=dict(type='float', default=0.01),
            max_latency_ratio=dict(type='float', default=1.5))),
        fail_on_unhealthy=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('database_url', 'env_file')])
    params = module.params
    if params['url'] and not http_probe.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'))
    if not (params['url'] or params['process'] or params['tcp'] or params['file_min_size'] or params['sql_checks']
            or params['canary'] or (params['log_file'] and params['forbidden_patterns'])):
        module.fail_json(msg='Nothing to check: give url, process, tcp, file_min_size, sql_checks, canary or '
                             'log_file with forbidden_patterns.')
    if params['sql_checks'] and not (params['database_url'] or params['env_file']):
        module.fail_json(msg='sql_checks need the database: set database_url or env_file.')
    try:
        result = run_gate(params)
    except DatabaseError as exc:
        module.fail_json(msg='Cannot prepare the SQL checks: %s' % exc)
    except re.error as exc:
        module.fail_json(msg='Invalid regular expression in expect_body or forbidden_patterns: %s' % exc)
    except (ValueError, TypeError) as exc:
        module.fail_json(msg='Invalid gate settings: %s' % exc)
    if not result['healthy'] and params['fail_on_unhealthy']:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
