"""After safe-sync: Prisma's records are complete, the column is there, the apps are healthy."""
import json
import pathlib
import urllib.request

SANDBOX = pathlib.Path(__file__).resolve().parents[1] / ".sandbox"
MIGRATIONS = ["20250101000000_init", "20250821015630_add_shipment_file_field"]
APPLIED = ("SELECT migration_name FROM _prisma_migrations "
           "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name")
testinfra_hosts = ["local://"]


def ports():
    return json.loads((SANDBOX / "ports.json").read_text())


def mariadb():
    return json.loads((SANDBOX / "mariadb.json").read_text())


def sqlite(host, sql):
    database = SANDBOX / "demo-sqlite" / "current" / "prisma" / "dev.db"
    return host.check_output("sqlite3 %s %s", str(database), sql).split()


def mysql(host, sql):
    facts = mariadb()
    return host.check_output("mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P %s -u %s -N -B -e %s %s",
                             str(facts["port"]), facts["user"], sql, facts["database"]).split()


def test_every_migration_is_recorded_as_applied_once(host):
    assert sqlite(host, APPLIED) == MIGRATIONS
    assert mysql(host, APPLIED) == MIGRATIONS


def test_shipment_file_column_is_still_there(host):
    assert "shipmentFile" in sqlite(host, "SELECT name FROM pragma_table_info('Shipment')")
    assert mysql(host, "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                       "AND table_name = 'Shipment' AND column_name = 'shipmentFile'") == ["shipmentFile"]


def test_both_apps_listen_and_are_healthy(host):
    for port in ports():
        assert host.socket("tcp://127.0.0.1:%d" % port).is_listening
        with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % port, timeout=5) as answer:
            body = json.load(answer)
        assert answer.status == 200 and body["schema"] == "ok" and body["release"] == "v2"


def test_rows_were_saved_before_the_change_and_the_run_was_recorded(host):
    for name in ("demo-sqlite", "demo-mariadb"):
        state = SANDBOX / name / "state"
        saved = sorted(state.glob("prisma-migrations-*.json"))
        assert saved, "no _prisma_migrations backup in %s" % state
        assert host.file(str(saved[0])).mode == 0o600
        records = sorted((state / "records").glob("*.md"))
        assert records and "success" in host.file(str(records[0])).content_string
        audit = [json.loads(line) for line in host.file(str(state / "audit.jsonl")).content_string.splitlines()]
        assert {entry["step"] for entry in audit} >= {"start", "sync", "finish"}
        assert all(entry["time"].endswith("Z") and entry["operator"] for entry in audit)
