"""playbooks/rolling-update.yml (runbook 003) on real nginx and three demo-app instances."""
import os

import pytest

from tests.harness.load import Load


def steps(fleet, name, run_id):
    return [(e["step"], e["result"]) for e in fleet.audit(name) if e["run_id"] == run_id]


def test_every_instance_is_updated_one_at_a_time_under_load(instance_fleet):
    fleet = instance_fleet.add_release("1.0.0", release="v1").add_release("2.0.0", release="v2").deploy("1.0.0")
    with Load(fleet.listen_port, rate=30) as load:
        run = fleet.play(extra_vars=dict(traffic_release="2.0.0"))
    assert run.ok, run
    assert load.failed() == [], "no request may fail while instances are drained and restarted"
    assert len(load.requests) > 30 and load.served_by("v2"), "the load ran through the update"
    for name in fleet.names:
        assert fleet.release_of(name) == "2.0.0" and fleet.serves(name) == "v2"
        assert fleet.history(name)["stack"] == ["1.0.0", "2.0.0"]
    assert fleet.pool() == dict((fleet.address(name), False) for name in fleet.names), "every instance is back in the pool"
    published = run.published_stats()
    assert published["outcome"] == "success" and published["strategy"] == "rolling" and published["release"] == "2.0.0"
    assert (published["updated"], published["failed"], published["restored"]) == (fleet.names, "", False)
    # one at a time: each instance's turn ended before the next one's began
    turns = []
    for name in fleet.names:
        audit = fleet.audit(name)
        assert [s for s in steps(fleet, name, audit[-1]["run_id"]) if s[0].startswith("rolling")] == [
            ("rolling %s: drain" % name, "changed"), ("rolling %s: gate 2.0.0" % name, "ok"),
            ("rolling %s: back in the pool" % name, "changed")]
        turns.append([e["time"] for e in audit if e["step"].startswith("rolling")])
    assert all(earlier[-1] <= later[0] for earlier, later in zip(turns, turns[1:]))

    again = fleet.play(extra_vars=dict(traffic_release="2.0.0"))
    assert again.ok, again
    assert (again.published_stats()["updated"], again.published_stats()["unchanged"]) == ([], fleet.names), "a second run leaves them alone"
    assert not [r for r in again.results if r["result"].get("changed")], "and changes nothing"


def test_an_unhealthy_release_stops_at_the_first_instance_which_is_restored(instance_fleet):
    fleet = instance_fleet.add_release("1.0.0", release="v1").add_release("2.0.0-bad", release="v2", fault="error500")
    fleet.deploy("1.0.0")
    pids = dict((name, fleet.pid(name)) for name in fleet.names)
    with Load(fleet.listen_port, rate=30) as load:
        run = fleet.play(extra_vars=dict(traffic_release="2.0.0-bad"), traffic_gate_wait_timeout=3)
    assert not run.ok
    assert load.failed() == [], "the failing instance was drained before it got the release"
    published = run.published_stats()
    assert published["outcome"] == "failure"
    assert (published["failed"], published["restored"], published["updated"]) == ("app1", True, [])
    assert published["not_touched"] == ["app2", "app3"]
    failure = published["failure"]
    assert "stopped at instance app1" in failure and "500" in failure, failure
    assert "app1 is back on 1.0.0, healthy, and back in the pool" in failure
    # app1: back on its release, running, in the pool; the history no longer holds the bad release
    assert fleet.release_of("app1") == "1.0.0" and fleet.serves("app1") == "v1" and fleet.pid("app1") != pids["app1"]
    assert fleet.history("app1")["stack"] == ["1.0.0"]
    assert fleet.pool() == dict((fleet.address(name), False) for name in fleet.names)
    assert [fleet.get()[1]["release"] for _request in range(6)] == ["v1"] * 6
    steps_app1 = steps(fleet, "app1", published["run_id"])
    assert ("rolling app1: gate 2.0.0-bad", "failed") in steps_app1 and ("rolling app1: restore 1.0.0", "changed") in steps_app1
    # the others were never touched: same process, same release, no run recorded on them
    for name in ("app2", "app3"):
        assert fleet.pid(name) == pids[name] and fleet.release_of(name) == "1.0.0"
        assert fleet.audit(name) == [] and not os.path.exists(os.path.join(fleet.dir(name), "state", "releases.json"))


@pytest.mark.parametrize("instance_fleet", [2], indirect=True)
def test_check_mode_changes_nothing(instance_fleet):
    fleet = instance_fleet.add_release("1.0.0", release="v1").add_release("2.0.0", release="v2").deploy("1.0.0")
    pids = dict((name, fleet.pid(name)) for name in fleet.names)
    with open(fleet.split_file) as handle:
        routing = handle.read()
    run = fleet.play(check=True, extra_vars=dict(traffic_release="2.0.0"))
    assert run.ok, run
    assert run.published_stats()["updated"] == fleet.names, "check mode reports what it would do"
    with open(fleet.split_file) as handle:
        assert handle.read() == routing
    assert not os.path.exists(fleet.split_file + ".previous")
    for name in fleet.names:
        assert fleet.pid(name) == pids[name] and fleet.release_of(name) == "1.0.0" and fleet.serves(name) == "v1"
        assert not os.path.exists(os.path.join(fleet.dir(name), "state", "releases.json"))
        assert fleet.audit(name) == []
