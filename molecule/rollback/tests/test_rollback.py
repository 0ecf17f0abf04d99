"""After one run of rollback.yml: each copy is healthy again, at the level its damage needed."""
import json
import pathlib
import urllib.request

import pytest

SANDBOX = pathlib.Path(__file__).resolve().parents[1] / ".sandbox"
HOSTS = ["rb-release", "rb-record", "rb-database"]
BAD_MIGRATION = "20250901000000_add_broken_index"
testinfra_hosts = ["local://"]


def mysql(host, database, sql):
    facts = json.loads((SANDBOX / "mariadb.json").read_text())
    return host.check_output("mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P %s -u %s -N -B -e %s %s",
                             str(facts["port"]), facts["user"], sql, database).splitlines()


def audit(name):
    lines = (SANDBOX / name / "state" / "audit.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["playbook"] == "rollback"]


def gates(name):
    """{level: result} of the health gates the rollback ran."""
    return dict((entry["step"].split()[1], entry["result"]) for entry in audit(name) if entry["step"].endswith("health gate"))


def health(name):
    port = json.loads((SANDBOX / "ports.json").read_text())[HOSTS.index(name)]
    with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % port, timeout=5) as answer:
        return answer.status, json.load(answer)


@pytest.mark.parametrize("name", HOSTS)
def test_every_copy_is_healthy_and_the_run_succeeded(host, name):
    status, body = health(name)
    assert status == 200 and body["schema"] == "ok"
    assert audit(name)[-1]["step"] == "finish" and audit(name)[-1]["result"] == "ok"
    assert host.file(str(SANDBOX / name / "current")).linked_to == str(SANDBOX / name / "releases" / "initial")
    assert not host.file(str(SANDBOX / name / "state" / "lock")).exists


def test_a_bad_release_needed_level1_only(host):
    assert gates("rb-release") == {"1": "ok"}
    assert health("rb-release")[1]["release"] == "v2"


def test_a_failed_migration_record_escalated_to_level2_which_marked_it_rolled_back(host):
    assert gates("rb-record") == {"1": "failed", "2": "ok"}
    rows = mysql(host, "rb_record", "SELECT rolled_back_at IS NOT NULL, finished_at IS NULL FROM _prisma_migrations "
                                    "WHERE migration_name = '%s'" % BAD_MIGRATION)
    assert rows == ["1\t1"], "the failed record should be kept and marked rolled back, as Prisma does"
    saved = list((SANDBOX / "rb-record" / "state").glob("prisma-migrations-*.json"))
    assert saved and host.file(str(saved[-1])).mode == 0o600


def test_a_damaged_database_escalated_to_level3_which_restored_the_backup(host):
    assert gates("rb-database") == {"1": "failed", "2": "failed", "3": "ok"}
    shipments = mysql(host, "rb_database", "SELECT trackingNumber FROM Shipment ORDER BY trackingNumber")
    assert "TRK-BEFORE-BACKUP" in shipments and "TRK-AFTER-BACKUP" not in shipments
    backups = SANDBOX / "rb-database" / "backups"
    assert [p.name for p in backups.iterdir() if p.name.startswith("emergency")], "no emergency snapshot before the restore"
    restore = [e for e in audit("rb-database") if e["step"] == "level 3 restore"]
    assert restore and restore[0]["details"]["backup"] == "nightly" and restore[0]["reason"].startswith("Shipment tables")
