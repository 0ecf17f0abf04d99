"""Runbook 001's levels on the demo stack (SQLite, plain process) with a ~100 MB database.

Wall time of each ``ansible-playbook`` run from start to the health gate passing, taken the way an
operator runs them:

    level 1      a release answering 500          -> rollback-level1.yml
    level 2      a failed migration record blocks  -> rollback-level2.yml
                 the start (Prisma P3009)
    level 3      a column dropped                  -> rollback-level3.yml (restores the nightly backup)
    escalation   a new release + a column dropped  -> rollback.yml: level 1 fails, level 2 fails, level 3

Targets (issue 06): level 1 <= 15 s, level 2 <= 20 s, level 3 <= 60 s. The escalation waits out
two failing gates of --gate-timeout seconds each.

    .venv/bin/python bench/rollback.py [--size-mb 100] [--gate-timeout 10]
"""
import argparse
import json
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.harness.ansible_run import run_module  # noqa: E402
from tests.harness.collection import REPO_ROOT, ensure_collection_link  # noqa: E402
from tests.harness.site import Site  # noqa: E402

TARGETS = {"level 1": 15, "level 2": 20, "level 3": 60}
CONFIRMED = dict(rollback_confirm="CONFIRM_FULL_ROLLBACK", rollback_reason="bench: column dropped")
ROW_BYTES = 240


def fill(site, size_mb):
    """Shipments until the SQLite file holds about ``size_mb`` MB."""
    rows = size_mb * 1024 * 1024 // ROW_BYTES
    site.sql('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) '
             'INSERT INTO "Shipment" ("trackingNumber", "status", "shipmentFile") '
             "SELECT printf('TRK-%%09d', i), 'delivered', hex(randomblob(%d)) FROM n" % (rows, (ROW_BYTES - 40) // 2))
    site.sql('INSERT INTO "ShipmentItem" ("shipmentId", "sku", "quantity") SELECT "id", \'SKU-1\', 1 FROM "Shipment" LIMIT 1000')
    return rows


def take_nightly_backup(site):
    result = run_module("saferelease.core.db_backup", dict(
        database_url=site.url, dest_dir=os.path.join(site.base, "backups"), name="nightly",
        include_paths=[os.path.join(site.prisma_dir, "migrations"), os.path.join(site.prisma_dir, "schema.prisma")]))
    if result["failed"]:
        raise RuntimeError(result["msg"])
    return result


def timed(site, playbook, expected_level, **extra_vars):
    started = time.monotonic()
    run = site.play(playbook, extra_vars=extra_vars)
    elapsed = time.monotonic() - started
    if not run.ok:
        raise RuntimeError("%s failed: %s" % (playbook, run))
    stats = run.published_stats()
    status, _body = site.health()
    if int(stats["level_reached"]) != expected_level or status != 200:
        raise RuntimeError("%s ended at level %s with health %s" % (playbook, stats["level_reached"], status))
    return round(elapsed, 2)


def break_migration_record(site):
    """A failed row for a migration this release does not have: every start refuses (P3009)."""
    site.stop()
    site.sql("INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count, logs) "
             "VALUES ('%s', '%s', '20250901000000_add_broken_index', %d, 0, 'no such table: NoSuchTable')"
             % (uuid.uuid4(), "0" * 64, int(time.time() * 1000)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--gate-timeout", type=float, default=10)
    options = parser.parse_args()
    ensure_collection_link()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="sr-bench-rollback-") as scratch:
        site = Site(os.path.join(scratch, "site"), "sqlite", None).deploy()
        try:
            rows = fill(site, options.size_mb)
            site.set_env("DEMO_MIGRATE_ON_START", "1")
            site.start()
            started = time.monotonic()
            take_nightly_backup(site)
            backup_s = round(time.monotonic() - started, 2)
            db_bytes = os.path.getsize(site.sqlite_path)

            site.release("v3-bad", settings={"DEMO_RELEASE": "v3", "DEMO_FAULT": "error500"})
            figures["level 1"] = timed(site, "rollback-level1", 1)

            break_migration_record(site)
            figures["level 2"] = timed(site, "rollback-level2", 2)

            site.drop_column()
            figures["level 3"] = timed(site, "rollback-level3", 3, **CONFIRMED)

            site.release("v2.1", settings={"DEMO_RELEASE": "v2.1"})
            site.drop_column()
            figures["escalation 1-2-3"] = timed(site, "rollback", 3, rollback_gate_wait_timeout=options.gate_timeout,
                                                **CONFIRMED)
        finally:
            site.stop()
    print("demo stack, SQLite database of %.1f MB (%d shipments); nightly backup + verify took %.2f s"
          % (db_bytes / 1e6, rows, backup_s))
    print("%-20s %10s %10s" % ("run", "wall s", "target s"))
    for name, seconds in figures.items():
        target = TARGETS.get(name)
        print("%-20s %10.2f %10s %s" % (name, seconds, target or "-", "" if target is None else
                                        ("ok" if seconds <= target else "OVER TARGET")))
    out_dir = os.path.join(REPO_ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "rollback.json"), "w") as handle:
        json.dump(dict(database_bytes=db_bytes, shipments=rows, backup_s=backup_s, gate_timeout_s=options.gate_timeout,
                       wall_s=figures, targets_s=TARGETS), handle, indent=2)
    print("written: bench/results/rollback.json")


if __name__ == "__main__":
    main()
