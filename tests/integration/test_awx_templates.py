"""Every job template of awx/job_templates.yml launched the way AWX launches it (survey -> extra vars,
private data directory, ansible-runner) against the demo, with the set_stats artifacts a workflow
would branch on; and the deploy-update workflow's failure path, node by node."""
import os

import pytest

from tests.harness import awx
from tests.harness.load import Load
from tests.integration.test_deploy_update import ORPHANS, priority_step, stage_v3
from tests.integration.test_rollback import BAD_MIGRATION, BROKEN_SQL, add_shipment, take_backup


def launch(site, name_part, tmp_path, answers=None, extra_data=None, **inventory):
    return awx.launch(awx.template(name_part), site.inventory(**inventory), str(tmp_path / "job"), answers=answers,
                      extra_data=extra_data)


def succeeded(job):
    assert (job.rc, job.status) == (0, "successful"), job
    assert job.outcome["outcome"] == "success", job
    return job.outcome


def test_safe_sync_template(site_factory, tmp_path):
    site = site_factory("sqlite").start()
    site.forget_record()
    outcome = succeeded(launch(site, "safe sync", tmp_path, answers=dict(safe_sync_reason="runbook 000")))
    assert outcome["playbook"] == "safe-sync" and outcome["up_to_date"] is True
    assert [a["action"] for a in outcome["actions"]] == ["mark_applied"]


def test_backup_template(site_factory, tmp_path):
    site = site_factory("sqlite")
    job = launch(site, "verified backup", tmp_path, answers=dict(backup_name="before-3-0"))
    assert job.extra_vars == dict(target_hosts="all", backup_name="before-3-0", backup_verify="true")
    outcome = succeeded(job)
    assert outcome["backup_name"] == "before-3-0" and outcome["verified"] is True


def test_rollback_level1_template(site_factory, tmp_path):
    site = site_factory("sqlite").start()
    site.release("v3-bad", settings={"DEMO_RELEASE": "v3", "DEMO_FAULT": "error500"})
    with pytest.raises(awx.SurveyError, match="rollback_reason is required"):
        launch(site, "rollback level 1", tmp_path)
    outcome = succeeded(launch(site, "rollback level 1", tmp_path, answers=dict(rollback_reason="500s")))
    assert outcome["level_reached"] == 1 and outcome["healthy"] is True and site.current_release() == "initial"


def test_rollback_level2_template(site_factory, tmp_path):
    site = site_factory("sqlite")
    site.set_env("DEMO_MIGRATE_ON_START", "1")
    site.start()
    site.release("v3-migration", migrations={BAD_MIGRATION: BROKEN_SQL["sqlite"]})
    # Level 1 puts the code back, but the failed record of the migration stops migrate-on-start (P3009).
    assert not site.play("rollback-level1").ok
    assert site.sql("SELECT rolled_back_at FROM _prisma_migrations WHERE migration_name = '%s'" % BAD_MIGRATION) == [(None,)]
    outcome = succeeded(launch(site, "rollback level 2", tmp_path, answers=dict(rollback_reason="P3009")))
    assert outcome["level_reached"] == 2 and outcome["healthy"] is True
    rows = site.sql("SELECT rolled_back_at FROM _prisma_migrations WHERE migration_name = '%s'" % BAD_MIGRATION)
    assert len(rows) == 1 and rows[0][0] is not None, "the failed record is marked rolled back, as Prisma does"


def test_rollback_level3_template_takes_the_token_as_a_password(site_factory, tmp_path):
    site = site_factory("sqlite").start()
    add_shipment(site, "TRK-1")
    take_backup(site, "nightly")
    site.sql('DROP TABLE "ShipmentItem"')
    site.sql('DROP TABLE "Shipment"')
    job = launch(site, "rollback level 3", tmp_path, answers=dict(rollback_reason="table dropped",
                                                                  rollback_confirm="CONFIRM_FULL_ROLLBACK"))
    outcome = succeeded(job)
    assert outcome["level_reached"] == 3 and outcome["backup_used"] == "nightly" and site.health()[0] == 200
    assert "CONFIRM_FULL_ROLLBACK" not in job.stdout


def test_rollback_with_escalation_template(site_factory, tmp_path):
    site = site_factory("sqlite").start()
    site.release("v3-bad", settings={"DEMO_RELEASE": "v3", "DEMO_FAULT": "error500"})
    job = launch(site, "rollback with escalation", tmp_path, answers=dict(rollback_reason="500s"))
    assert job.extra_vars["rollback_level"] == "1" and "rollback_confirm" not in job.extra_vars
    outcome = succeeded(job)
    assert outcome["level_reached"] == 1 and outcome["nothing_to_do"] is False


def test_blue_green_template(colour_site, tmp_path):
    site = colour_site.add_release("1.0.0", release="v1")
    outcome = succeeded(launch(site, "blue-green", tmp_path, answers=dict(traffic_release="1.0.0", traffic_observe=1)))
    assert outcome["live"] == "blue" and site.get()[1]["release"] == "v1"


def test_canary_template_pauses_for_approval_then_aborts(colour_site, tmp_path):
    site = colour_site.add_release("1.0.0", release="v1").add_release("2.0.0", release="v2")
    assert site.play("blue-green", extra_vars=dict(traffic_release="1.0.0")).ok
    answers = dict(traffic_release="2.0.0", traffic_canary_interval=1)
    paused = succeeded(launch(site, "canary", tmp_path, answers=answers, traffic_canary_pause_before=[5]))
    assert paused["paused"] is True and float(paused["paused_before"]) == 5.0 and site.running("green")
    aborted = launch(site, "canary", tmp_path, answers=dict(answers, traffic_canary_abort="true"))
    assert aborted.status == "successful" and aborted.outcome["aborted"] is True and aborted.outcome["live"] == "blue"
    assert not site.running("green")


def test_rolling_update_template(instance_fleet, tmp_path):
    fleet = instance_fleet.add_release("1.0.0", release="v1").add_release("2.0.0", release="v2").deploy("1.0.0")
    private = str(tmp_path / "job")
    with Load(fleet.listen_port, rate=20) as load:
        job = awx.launch(awx.template("rolling update"), fleet.inventory(), private,
                         answers=dict(target_hosts="app", traffic_release="2.0.0", traffic_drain_seconds=0.5))
    outcome = succeeded(job)
    assert outcome["playbook"] == "rolling-update" and load.failed() == []
    assert [fleet.release_of(name) for name in fleet.names] == ["2.0.0"] * len(fleet.names)


def test_pre_deploy_check_template(site_factory, tmp_path):
    site = site_factory("sqlite")
    build = stage_v3(site, fault="skip_migrations")
    job = launch(site, "pre-deploy check", tmp_path, answers=dict(precheck_release_dir=build), precheck_smoke_seconds=2)
    assert (job.rc, job.status) == (2, "failed")
    assert job.outcome["verdict"] == "fail" and "forbidden log lines" in job.outcome["failed_checks"]


def test_deploy_update_template(site_factory, tmp_path):
    site = site_factory("sqlite").start()
    build = stage_v3(site)
    job = launch(site, "deploy update", tmp_path, update_gate_interval=0.5,
                 answers=dict(update_release_name="v3", update_source_dir=build),
                 extra_data=dict(update_migrations=[priority_step("sqlite")], update_orphan_checks=ORPHANS))
    outcome = succeeded(job)
    assert outcome["release"] == "v3" and outcome["backup_verified"] is True and outcome["migrations"][0]["applied"] is True


def test_recover_sqlite_template(site_factory, tmp_path):
    site = site_factory("sqlite").start()
    open(site.sqlite_path, "w").close()
    outcome = succeeded(launch(site, "recover SQLite", tmp_path, recover_gate_interval=0.5))
    assert outcome["recovered"] is True and site.health()[0] == 200


def workflow_nodes():
    [workflow] = awx.load_templates()["saferelease_awx_workflows"]
    return dict((node["identifier"], node) for node in workflow["workflow_nodes"])


def test_workflow_failed_update_then_rollback_node(site_factory, tmp_path):
    """The workflow's update node does not roll back itself; its failure runs the rollback node with
    the update's artifacts as extra variables, as AWX passes them."""
    nodes = workflow_nodes()
    assert nodes["update"]["related"]["failure_nodes"] == [dict(identifier="rollback")]
    site = site_factory("sqlite").start()
    build = stage_v3(site, column="priorty")
    update = awx.launch(awx.template("deploy update"), site.inventory(update_gate_interval=0.5), str(tmp_path / "update"),
                        answers=dict(update_release_name="v3", update_source_dir=build),
                        extra_data=dict(nodes["update"]["extra_data"], update_migrations=[priority_step("sqlite")]))
    assert update.status == "failed" and update.outcome["phase"] == "database_changed"
    assert update.outcome["rollback_level"] == 0 and site.current_release() == "v3"
    rollback = awx.launch(awx.template("rollback with escalation"), site.inventory(), str(tmp_path / "rollback"),
                          extra_data=dict(update.artifacts, **nodes["rollback"]["extra_data"]))
    outcome = succeeded(rollback)
    assert outcome["level_reached"] == 1 and site.current_release() == "initial" and site.health()[0] == 200


def test_workflow_rollback_node_after_an_update_that_changed_nothing(site_factory, tmp_path):
    nodes = workflow_nodes()
    site = site_factory("sqlite").start()
    update = awx.launch(awx.template("deploy update"), site.inventory(), str(tmp_path / "update"),
                        answers=dict(update_release_name="v3", update_source_dir=os.path.join(site.base, "not-staged")),
                        extra_data=nodes["update"]["extra_data"])
    assert update.status == "failed" and update.outcome["phase"] == "before_switch"
    rollback = awx.launch(awx.template("rollback with escalation"), site.inventory(), str(tmp_path / "rollback"),
                          extra_data=dict(update.artifacts, **nodes["rollback"]["extra_data"]))
    outcome = succeeded(rollback)
    assert outcome["nothing_to_do"] is True and outcome["level_reached"] == 0 and site.current_release() == "initial"
