"""prisma_migration_state against the real Prisma CLI on a SQLite database with 1,000 migrations.

Generates 1,000 migration folders (each a trivial CREATE TABLE), applies them twice on two
databases - once with the module's state=deployed, once with `prisma migrate deploy` (Prisma CLI
6.19.3, engine "js" + better-sqlite3 adapter, from `make prisma-cli`) - and then times the status
read on the Prisma-written database:

- `prisma migrate status` (a Node.js process: config load, WebAssembly schema engine),
- the module through Ansible (`ansible-playbook`, one task on localhost),
- the module's AnsibleModule entry point alone (what runs on a managed host),
- the pure-Python core in-process (read_migrations_dir + read_records + classify).

Every run is checked: all tools must report every migration applied and the database up to date,
on both databases. Results go to bench/results/prisma_state.json.

    .venv/bin/python bench/prisma_state.py [--migrations 1000] [--runs 3]
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.harness.collection import COLLECTIONS_PATH, REPO_ROOT, ensure_collection_link  # noqa: E402
from tests.harness.ansible_run import run_module  # noqa: E402
from tests.compat.prisma_cli import MODULE, PrismaProject, cli_problem, run_module_direct  # noqa: E402


def generate(project, count):
    """``count`` migrations one minute apart, each creating one table."""
    start = datetime.datetime(2024, 1, 1)
    names = []
    for index in range(count):
        name = "%s_create_t%04d" % ((start + datetime.timedelta(minutes=index)).strftime("%Y%m%d%H%M%S"), index)
        project.add(name, 'CREATE TABLE "t%04d" ("id" INTEGER NOT NULL PRIMARY KEY, "name" TEXT);\n' % index)
        names.append(name)
    return names


def core_status(url, migrations_dir):
    """The module's status logic in-process: (applied names, up_to_date)."""
    from ansible_collections.saferelease.core.plugins.module_utils.database import connect, resolve_target
    from ansible_collections.saferelease.core.plugins.module_utils.prisma import classify, read_migrations_dir, read_records
    target = resolve_target(url, None, base_dir=os.path.dirname(migrations_dir))
    conn = connect(target)
    try:
        records = read_records(conn, target)
    finally:
        conn.close()
    _entries, summary, up_to_date = classify(read_migrations_dir(migrations_dir), records)
    return summary, up_to_date


def timed(function):
    started = time.monotonic()
    value = function()
    return time.monotonic() - started, value


def check_module(result, names, label):
    if result.get("failed"):
        raise RuntimeError("%s failed: %s" % (label, result.get("msg")))
    return check_summary(result["summary"], result["up_to_date"], names, label)


def check_summary(summary, up_to_date, names, label):
    others = dict((k, v) for k, v in summary.items() if k != "applied" and v)
    if summary["applied"] != names or others or not up_to_date:
        raise RuntimeError("%s did not report all %d migrations applied: %d applied, others %r, up_to_date %r"
                           % (label, len(names), len(summary["applied"]), others, up_to_date))
    return len(summary["applied"])


def check_prisma(status, names, label):
    if not (status.up_to_date and status.local == names and not status.pending and not status.failed
            and not status.edited and status.history is None):
        raise RuntimeError("%s is not up to date with %d migrations: %r" % (label, len(names), status))
    if "%d migrations found in prisma/migrations" % len(names) not in status.run.stdout:
        raise RuntimeError("%s did not find %d migrations: %r" % (label, len(names), status))
    return len(status.local)


def summary(values):
    return dict(runs=[round(x, 3) for x in values], min=round(min(values), 3), median=round(statistics.median(values), 3),
                max=round(max(values), 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--migrations", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    problem = cli_problem()
    if problem:
        sys.exit("bench/prisma_state.py: " + problem)
    ensure_collection_link()
    if COLLECTIONS_PATH not in sys.path:
        sys.path.insert(0, COLLECTIONS_PATH)

    with tempfile.TemporaryDirectory(prefix="sr-bench-prisma-") as scratch:
        by_module = PrismaProject(os.path.join(scratch, "module"))
        by_prisma = PrismaProject(os.path.join(scratch, "prisma"))
        names = generate(by_module, options.migrations)
        by_module.copy_migrations_to(by_prisma)

        apply_module_s, deployed = timed(lambda: run_module_direct(dict(database_url=by_module.url,
                                                                        migrations_dir=by_module.migrations,
                                                                        state="deployed")))
        check_module(deployed, names, "module state=deployed")
        apply_prisma_s, deploy = timed(by_prisma.deploy)
        if deploy.applied != names:
            raise RuntimeError("prisma migrate deploy applied %d of %d migrations: %r" % (len(deploy.applied or []), len(names), deploy))

        # the cross checks: each tool on the other's database
        verified = dict(
            prisma_status_on_module_db=check_prisma(by_module.status(), names, "prisma migrate status (module-written rows)"),
            module_status_on_prisma_db=check_module(by_prisma.module(), names, "module status (Prisma-written rows)"),
        )

        params = dict(database_url=by_prisma.url, migrations_dir=by_prisma.migrations, state="status")
        measures = (
            ("prisma migrate status (CLI)", "prisma_cli",
             lambda: check_prisma(by_prisma.status(), names, "prisma migrate status")),
            ("module through Ansible", "module_ansible",
             lambda: check_module(run_module(MODULE, params), names, "module through Ansible")),
            ("module entry point alone", "module_direct",
             lambda: check_module(run_module_direct(params), names, "module entry point")),
            ("pure-Python core, in-process", "core",
             lambda: check_summary(*(core_status(by_prisma.url, by_prisma.migrations) + (names, "core")))),
        )
        timings, counts = {}, {}
        for _label, key, function in measures:
            values = []
            for _unused in range(options.runs):
                elapsed, count = timed(function)
                values.append(elapsed)
                counts[key] = count
            timings[key] = summary(values)

    prisma_median = timings["prisma_cli"]["median"]
    figures = dict(
        migrations=options.migrations,
        runs=options.runs,
        prisma_cli_version="6.19.3 (engine js, @prisma/adapter-better-sqlite3)",
        apply_s=dict(module_deployed=round(apply_module_s, 3), prisma_deploy=round(apply_prisma_s, 3),
                     ratio_prisma_over_module=round(apply_prisma_s / apply_module_s, 2)),
        status_s=timings,
        ratio_prisma_over=dict((key, round(prisma_median / timings[key]["median"], 2)) for key in timings if key != "prisma_cli"),
        applied_reported=dict(counts, **verified),
    )

    print("%-44s %s" % ("measure (%d migrations, %d runs)" % (options.migrations, options.runs), "value"))
    print("%-44s %.3f s" % ("apply: module state=deployed", apply_module_s))
    print("%-44s %.3f s (%.1fx the module)" % ("apply: prisma migrate deploy", apply_prisma_s, apply_prisma_s / apply_module_s))
    for label, key, _function in measures:
        values = timings[key]
        ratio = "" if key == "prisma_cli" else "  Prisma CLI / this = %.1fx" % (prisma_median / values["median"])
        print("%-44s %.3f / %.3f / %.3f s min/median/max, %d applied%s" % (
            "status: " + label, values["min"], values["median"], values["max"], counts[key], ratio))
    print("%-44s %d and %d applied, up to date" % ("cross-check (each tool on the other's rows)",
                                                   verified["prisma_status_on_module_db"], verified["module_status_on_prisma_db"]))
    out_dir = os.path.join(REPO_ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "prisma_state.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    print("written: bench/results/prisma_state.json")


if __name__ == "__main__":
    main()
