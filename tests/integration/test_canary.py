"""playbooks/canary.yml (runbook 003) on real nginx and the demo app in two colours, under continuous load."""
from tests.harness.load import Load

# Each request from a random user: the split spreads requests the way it spreads users.
CANARY = dict(nginx_site_split_key="$arg_user", traffic_canary_interval=3, traffic_canary_min_requests=15,
              traffic_canary_steps=[25, 50, 100], traffic_canary_latency_floor_ms=200)


def start_on_blue(site):
    site.add_release("1.0.0", release="v1")
    run = site.play("blue-green", extra_vars=dict(traffic_release="1.0.0"))
    assert run.ok, run


def test_full_promotion_under_load_fails_no_request(colour_site):
    start_on_blue(colour_site)
    colour_site.add_release("2.0.0", release="v2")
    with Load(colour_site.listen_port, rate=60) as load:
        run = colour_site.play("canary", extra_vars=dict(traffic_release="2.0.0"), **CANARY)
    assert run.ok, run
    assert load.failed() == [] and len(load.requests) > 200
    assert {r[2] for r in load.requests} == {"blue", "green"}
    published = run.published_stats()
    assert published["promoted"] and published["live"] == "green" and published["stopped"] == "blue"
    assert [float(s["share"]) for s in published["steps"]] == [25.0, 50.0, 100.0]
    assert [s["verdict"] for s in published["steps"]] == ["pass", "pass", "pass"]
    assert [colour_site.get()[2] for _request in range(5)] == ["green"] * 5
    assert not colour_site.running("blue")


def test_a_canary_with_5_percent_errors_is_aborted_by_itself(colour_site):
    start_on_blue(colour_site)
    colour_site.add_release("2.0.0-bad", release="v2", fault="error_rate:0.05")
    with Load(colour_site.listen_port, rate=60) as load:
        run = colour_site.play("canary", extra_vars=dict(traffic_release="2.0.0-bad"), **CANARY)
        aborted_at = load.requests[-1][0]
    assert not run.ok
    published = run.published_stats()
    assert published["aborted"] and published["live"] == "blue" and "aborted" in published["failure"]
    assert [s["verdict"] for s in published["steps"]] == ["fail"] and "error rate" in published["steps"][0]["msg"]
    failed = load.failed()
    assert failed and {r[2] for r in failed} == {"green"}, "only the bad release's own errors"
    after = [r for r in load.requests if r[0] > aborted_at]
    assert all(r[2] == "blue" for r in after)
    assert [colour_site.get()[2] for _request in range(5)] == ["blue"] * 5 and not colour_site.running("green")
    steps = [(e["step"], e["result"]) for e in colour_site.audit() if e["run_id"] == published["run_id"]]
    assert ("canary 25%", "failed") in steps and ("canary abort", "changed") in steps and steps[-1] == ("finish", "failed")


def test_pause_for_approval_then_resume(colour_site):
    start_on_blue(colour_site)
    colour_site.add_release("2.0.0", release="v2")
    settings = dict(CANARY, traffic_canary_pause_before=[50])
    with Load(colour_site.listen_port, rate=60):
        paused = colour_site.play("canary", extra_vars=dict(traffic_release="2.0.0"), **settings)
    assert paused.ok, paused
    published = paused.published_stats()
    assert published["paused"] and float(published["paused_before"]) == 50.0 and float(published["last_share"]) == 25.0
    assert colour_site.running("green") and colour_site.running("blue")
    other = colour_site.play("blue-green", extra_vars=dict(traffic_release="2.0.0"))
    assert not other.ok and "has 25" in other.published_stats()["failure"], "a blue-green must not run over a canary in progress"
    with Load(colour_site.listen_port, rate=60) as load:
        resumed = colour_site.play("canary", extra_vars=dict(traffic_release="2.0.0", traffic_canary_approved=[50]), **settings)
    assert resumed.ok, resumed
    published = resumed.published_stats()
    assert float(published["resumed_at"]) == 25.0 and [float(s["share"]) for s in published["steps"]] == [50.0, 100.0]
    assert published["promoted"] and load.failed() == []


def test_too_little_traffic_is_inconclusive_never_a_pass(colour_site):
    start_on_blue(colour_site)
    colour_site.add_release("2.0.0", release="v2")
    settings = dict(CANARY, traffic_canary_interval=1, traffic_canary_max_retries=1, traffic_canary_on_inconclusive="fail")
    run = colour_site.play("canary", extra_vars=dict(traffic_release="2.0.0"), **settings)
    assert not run.ok
    published = run.published_stats()
    assert published["aborted"] and published["steps"][0]["verdict"] == "inconclusive"
    assert colour_site.get()[2] == "blue" and not colour_site.running("green")
