"""playbooks/blue-green.yml (runbook 003) on real nginx and the demo app in two colours."""
import os


ADD_NOTE = 'ALTER TABLE "Shipment" ADD COLUMN "note" TEXT;'
DROP_STATUS = 'ALTER TABLE "Shipment" DROP COLUMN "status";'


def release_vars(name, **more):
    return dict(traffic_release=name, **more)


def test_first_release_then_switch_to_the_idle_colour(colour_site):
    site = colour_site.add_release("1.0.0", release="v1").add_release("2.0.0", release="v2")
    first = site.play("blue-green", extra_vars=release_vars("1.0.0"))
    assert first.ok, first
    assert site.get()[1]["release"] == "v1" and site.get()[2] == "blue"
    assert first.published_stats()["live"] == "blue" and first.published_stats()["previous"] == ""

    second = site.play("blue-green", extra_vars=release_vars("2.0.0", traffic_reason="release 2.0.0"))
    assert second.ok, second
    status, body, pool = site.get()
    assert (status, body["release"], pool) == (200, "v2", "green")
    published = second.published_stats()
    assert (published["live"], published["previous"], published["switched"], published["verdict"]) == ("green", "blue", True, "pass")
    assert published["samples"]["requests"] == 40 and published["samples"]["errors"] == 0
    assert site.colour_release("green") == "2.0.0" and site.colour_release("blue") == "1.0.0"
    assert site.running("green") and not site.running("blue"), "the old colour stops after the keep-warm delay"
    steps = [(e["step"], e["result"]) for e in site.audit() if e["run_id"] == published["run_id"]]
    assert ("gate green before the switch", "ok") in steps and ("watch live traffic on green", "ok") in steps


def test_a_release_failing_under_live_traffic_is_switched_back(colour_site):
    site = colour_site.add_release("1.0.0", release="v1").add_release("2.0.0-bad", release="v2", fault="error_rate:0.1")
    assert site.play("blue-green", extra_vars=release_vars("1.0.0")).ok
    run = site.play("blue-green", extra_vars=release_vars("2.0.0-bad"))
    assert not run.ok
    published = run.published_stats()
    assert published["outcome"] == "failure" and published["switched"] and published["switched_back"]
    assert published["live"] == "blue" and published["verdict"] == "fail" and published["samples"]["errors"] >= 1
    assert "failed under live traffic" in published["failure"] and "Traffic is back on blue" in published["failure"]
    assert [site.get()[1]["release"] for _request in range(5)] == ["v1"] * 5
    assert site.running("blue") and not site.running("green")


def test_an_unhealthy_release_never_gets_traffic(colour_site):
    site = colour_site.add_release("1.0.0", release="v1").add_release("2.0.0-down", release="v2", fault="error500")
    assert site.play("blue-green", extra_vars=release_vars("1.0.0")).ok
    with open(site.split_file) as handle:
        routing = handle.read()
    run = site.play("blue-green", extra_vars=release_vars("2.0.0-down"), traffic_gate_wait_timeout=3)
    assert not run.ok
    published = run.published_stats()
    assert not published["switched"] and "did not become healthy on its own port" in published["failure"]
    with open(site.split_file) as handle:
        assert handle.read() == routing, "the routing must not change"
    assert site.get()[1]["release"] == "v1" and not site.running("green")


def test_only_additive_migrations_are_applied_before_the_switch(colour_site):
    site = colour_site.add_release("1.0.0", release="v1")
    site.add_release("2.0.0", release="v2", migrations={"20251001000000_add_note": ADD_NOTE})
    site.add_release("3.0.0", release="v2", migrations={"20251101000000_drop_status": DROP_STATUS})
    assert site.play("blue-green", extra_vars=release_vars("1.0.0")).ok
    additive = site.play("blue-green", extra_vars=release_vars("2.0.0"))
    assert additive.ok, additive
    import sqlite3
    with sqlite3.connect(site.sqlite_path) as conn:
        assert "note" in [row[1] for row in conn.execute('PRAGMA table_info("Shipment")')]
    destructive = site.play("blue-green", extra_vars=release_vars("3.0.0"))
    assert not destructive.ok
    with sqlite3.connect(site.sqlite_path) as conn:
        assert "status" in [row[1] for row in conn.execute('PRAGMA table_info("Shipment")')], "the column must survive"
    assert site.get()[1]["release"] == "v2" and site.get()[2] == "green"
    assert not destructive.published_stats()["switched"]


def test_a_port_held_by_another_process_is_refused_never_a_false_success(colour_site, demo_app_factory):
    """The app already ran as a plain service on the port blue is given; the first run must not gate on it."""
    site = colour_site.add_release("1.0.0", release="v1")
    old = demo_app_factory(database_url=site.url, release="v0", port=site.ports["blue"], migrate=False)
    run = site.play("blue-green", extra_vars=release_vars("1.0.0"), traffic_port_free_timeout=2)
    assert not run.ok
    failures = dict(run.failed_tasks())
    message = failures["Refuse the idle colour while another process holds its port (it would answer the gate in the new release's place)"]
    assert "Port %d of blue" % site.ports["blue"] in message and "no release or migration changed" in message
    assert not os.path.exists(site.split_file), "no routing may be written"
    assert not site.running("blue") and old.get("/api/version")[0] == 200  # the other program is left alone


def test_check_mode_changes_nothing(colour_site):
    site = colour_site.add_release("1.0.0", release="v1").add_release("2.0.0", release="v2")
    assert site.play("blue-green", extra_vars=release_vars("1.0.0")).ok
    with open(site.split_file) as handle:
        routing = handle.read()
    run = site.play("blue-green", check=True, extra_vars=release_vars("2.0.0"))
    assert run.ok, run
    with open(site.split_file) as handle:
        assert handle.read() == routing
    assert site.colour_release("green") is None and not site.running("green") and site.running("blue")
    assert not os.path.exists(os.path.join(site.base, "state", "releases-green.json"))
