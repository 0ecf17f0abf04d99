"""state=synced over a whole migration history per engine: how much it decides, how long it takes.

For PostgreSQL, MariaDB and SQLite (throwaway servers on loopback from tests/harness), builds the
history of tests/harness/prisma_corpus.py (about 160 migrations: generated steps written by the
real Prisma CLI, MySQL in Prisma's form, and hand-written kinds), then measures:

- ``deployed``: applying the whole history to an empty database (the module's entry point);
- the sweep: for every migration in turn, delete its row and run ``state=synced`` (one module
  run each), checking every outcome as the compat test does;
- the share decided on its own, and the causes of the rest.

Every outcome is checked: a wrong decision (a migration run again, a failed row, a changed
schema) stops the bench. Results go to bench/results/sync_corpus.json.

    .venv/bin/python bench/sync_corpus.py [--engines postgresql,mysql,sqlite]
"""
import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.harness.collection import COLLECTIONS_PATH, REPO_ROOT, ensure_collection_link  # noqa: E402
from tests.harness.fixtures import ServerDatabase, SqliteDatabase  # noqa: E402
from tests.harness.prisma_corpus import build_corpus  # noqa: E402
from tests.harness.servers import MariaDBServer, PostgresServer  # noqa: E402
from tests.harness.sync_sweep import deploy, schema_fingerprint, sweep_one  # noqa: E402
from tests.compat.prisma_cli import cli_problem  # noqa: E402

SERVERS = {'postgresql': PostgresServer, 'mysql': MariaDBServer}


def measure(engine, scratch):
    started = time.monotonic()
    corpus = build_corpus(engine)
    build_s = time.monotonic() - started
    server = None
    try:
        if engine in SERVERS:
            server = SERVERS[engine]().start()  # its own world-readable scratch folder: postgres runs as postgres
            server.create_database('corpus')
            database = ServerDatabase(server, 'corpus')
        else:
            database = SqliteDatabase(os.path.join(scratch, 'dev.db'))
            open(database.path, 'w').close()
        folder = corpus.write(os.path.join(scratch, engine, 'prisma', 'migrations'))
        deploy_s = deploy(database, folder)
        reference = schema_fingerprint(database)
        started = time.monotonic()
        outcomes = [sweep_one(database, folder, name, reference) for name in corpus.names]
        sweep_s = time.monotonic() - started
    finally:
        if server is not None:
            server.stop()
    wrong = [o.as_dict() for o in outcomes if o.problems]
    if wrong:
        raise RuntimeError('%s: wrong decisions: %s' % (engine, json.dumps(wrong, indent=2)[:4000]))
    decided = [o for o in outcomes if o.decided]
    per_run = [o.elapsed for o in outcomes]
    return dict(
        migrations=len(outcomes),
        kinds=dict(collections.Counter(tag for name in corpus.names for tag in corpus.tags(name))),
        build_s=round(build_s, 1),
        deployed_s=round(deploy_s, 2),
        sweep_s=round(sweep_s, 1),
        synced_run_s=dict(median=round(statistics.median(per_run), 3), max=round(max(per_run), 3)),
        decided=len(decided),
        share=round(len(decided) / float(len(outcomes)), 4),
        decisions=dict(collections.Counter(o.decision for o in outcomes)),
        undecided=[dict(name=o.name, reason=o.reason) for o in outcomes if not o.decided],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--engines', default='postgresql,mysql,sqlite')
    options = parser.parse_args()
    problem = cli_problem()
    if problem:
        sys.exit('bench/sync_corpus.py: ' + problem)
    ensure_collection_link()
    if COLLECTIONS_PATH not in sys.path:
        sys.path.insert(0, COLLECTIONS_PATH)
    results = {}
    with tempfile.TemporaryDirectory(prefix='sr-bench-sync-') as scratch:
        for engine in options.engines.split(','):
            os.makedirs(os.path.join(scratch, engine))
            results[engine] = measure(engine, os.path.join(scratch, engine))

    print('%-11s %10s %10s %12s %14s %16s %9s' % ('engine', 'migrations', 'deployed', 'synced sweep', 'per synced run',
                                                  'decided', 'undecided'))
    for engine, figures in results.items():
        print('%-11s %10d %9.2fs %11.1fs %13.3fs %9d (%4.1f%%) %9d' % (
            engine, figures['migrations'], figures['deployed_s'], figures['sweep_s'], figures['synced_run_s']['median'],
            figures['decided'], 100 * figures['share'], len(figures['undecided'])))
    for engine, figures in results.items():
        for entry in figures['undecided']:
            print('  %s undecided: %s: %s' % (engine, entry['name'], entry['reason']))
    out_dir = os.path.join(REPO_ROOT, 'bench', 'results')
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'sync_corpus.json'), 'w') as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
    print('written: bench/results/sync_corpus.json')


if __name__ == '__main__':
    main()
