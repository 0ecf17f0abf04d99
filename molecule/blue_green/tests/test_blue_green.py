"""After blue-green.yml released 2.0.0 under continuous traffic: green serves it, blue stopped, no request failed."""
import json
import pathlib
import urllib.request

SANDBOX = pathlib.Path(__file__).resolve().parents[1] / ".sandbox"
APP = SANDBOX / "bg-demo"
testinfra_hosts = ["local://"]


def listen_port():
    return json.loads((SANDBOX / "ports.json").read_text())[2]


def requests():
    lines = (SANDBOX / "load-bg-demo.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def run_audit():
    entries = [json.loads(line) for line in (APP / "state" / "audit.jsonl").read_text().splitlines()]
    last_run = [e for e in entries if e["playbook"] == "blue-green"][-1]["run_id"]
    return [e for e in entries if e["run_id"] == last_run]


def test_green_serves_the_new_release_through_nginx(host):
    for _attempt in range(5):
        with urllib.request.urlopen("http://127.0.0.1:%d/api/version" % listen_port(), timeout=5) as answer:
            assert json.load(answer)["release"] == "v2" and answer.headers["X-Release-Pool"] == "green"
    assert host.file(str(APP / "green")).linked_to == str(APP / "releases" / "2.0.0")
    assert host.file(str(APP / "blue")).linked_to == str(APP / "releases" / "1.0.0")


def test_blue_was_stopped_after_the_switch_and_green_runs(host):
    assert not host.file(str(APP / "run" / "bg_demo-blue.pid")).exists
    pid = host.file(str(APP / "run" / "bg_demo-green.pid")).content_string.strip()
    assert host.process.get(pid=int(pid)).args.endswith("demo_app serve --host 127.0.0.1")


def test_no_request_failed_during_the_release(host):
    seen = requests()
    assert len(seen) > 100, "the load should have run through the release"
    assert [r for r in seen if r["status"] != 200] == []
    assert {r["release"] for r in seen} == {"v1", "v2"}


def test_the_audit_shows_the_gates_and_the_finish(host):
    steps = [(e["step"], e["result"]) for e in run_audit()]
    assert ("gate green before the switch", "ok") in steps and ("watch live traffic on green", "ok") in steps
    assert steps[-1] == ("finish", "ok")
