"""After canary.yml: cn-good promoted 2.0.0 with no failed request; cn-bad (500 on 5 % of requests) aborted by itself."""
import datetime
import json
import pathlib
import urllib.request

import pytest

SANDBOX = pathlib.Path(__file__).resolve().parents[1] / ".sandbox"
HOSTS = ["cn-good", "cn-bad"]
testinfra_hosts = ["local://"]


def listen_port(name):
    return json.loads((SANDBOX / "ports.json").read_text())[HOSTS.index(name) * 3 + 2]


def requests(name):
    return [json.loads(line) for line in (SANDBOX / ("load-%s.jsonl" % name)).read_text().splitlines()]


def run_audit(name):
    entries = [json.loads(line) for line in (SANDBOX / name / "state" / "audit.jsonl").read_text().splitlines()]
    last_run = [e for e in entries if e["playbook"] == "canary"][-1]["run_id"]
    return [e for e in entries if e["run_id"] == last_run]


def pools(name, count=10):
    seen = []
    for user in range(count):
        with urllib.request.urlopen("http://127.0.0.1:%d/api/version?user=%d" % (listen_port(name), user), timeout=5) as answer:
            seen.append((answer.headers["X-Release-Pool"], json.load(answer)["release"]))
    return set(seen)


def test_the_good_release_went_through_every_step_to_all_traffic(host):
    steps = [(e["step"], e["result"]) for e in run_audit("cn-good") if e["step"].startswith("canary ") and e["step"] != "canary plan"]
    assert steps == [("canary %s%%" % share, "ok") for share in ("5", "10", "25", "50", "100")]
    assert pools("cn-good") == {("green", "v2")}
    assert not host.file(str(SANDBOX / "cn-good" / "run" / "cn_good-blue.pid")).exists


def test_the_good_release_failed_no_request(host):
    seen = requests("cn-good")
    assert len(seen) > 300 and [r for r in seen if r["status"] != 200] == []


def test_the_bad_release_was_aborted_at_its_first_step(host):
    audit = run_audit("cn-bad")
    steps = [(e["step"], e["result"]) for e in audit if e["step"].startswith("canary") and e["step"] != "canary plan"]
    assert steps == [("canary 5%", "failed"), ("canary abort", "changed")]
    assert "error rate" in [e for e in audit if e["step"] == "canary 5%"][0]["details"]["msg"]
    assert pools("cn-bad") == {("blue", "v1")}
    assert not host.file(str(SANDBOX / "cn-bad" / "run" / "cn_bad-green.pid")).exists


@pytest.mark.parametrize("name", HOSTS)
def test_the_run_finished_and_released_its_lock(host, name):
    assert run_audit(name)[-1]["step"] == "finish"
    assert not host.file(str(SANDBOX / name / "state" / "lock")).exists


def audit_seconds(entry):
    """The epoch of an audit entry (its time is UTC, in whole seconds)."""
    when = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%SZ")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def test_only_the_bad_release_failed_requests_and_none_reached_it_after_the_abort(host):
    audit = run_audit("cn-bad")
    seen = requests("cn-bad")
    failed = [r for r in seen if r["status"] != 200]
    assert failed and {r["pool"] for r in failed} == {"green"}, "only the bad release's own errors"
    plan = [e for e in audit if e["step"] == "canary 5%"][0]
    abort = [e for e in audit if e["step"] == "canary abort"][0]
    assert abort["time"] >= plan["time"]
    # the abort is audited once nginx is back on blue: no request reached green after it
    assert max(r["time"] for r in seen if r["pool"] == "green") < audit_seconds(abort) + 1
