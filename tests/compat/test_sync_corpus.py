"""``state=synced`` over whole migration histories shaped like real ones, on real servers.

Each engine's history (tests/harness/prisma_corpus.py: about 160 migrations, the generated ones
written by the real Prisma CLI) is deployed; then every migration in turn loses its row and is
synced: it must be marked applied or reported undecidable, never run again, never left failed,
and the schema must come out as it went in. Additive migrations whose objects are then dropped by
hand must be applied again. The share decided and the causes of the rest go to
``.build/reports/sync-corpus-<engine>.json`` (``bench/sync_corpus.py`` prints them as a table).

On SQLite the history is deployed by the real ``prisma migrate deploy``, and after the sweep the
real ``prisma migrate status`` must accept every row the module wrote.
"""
import collections
import json
import os
import time

import pytest

from tests.compat.prisma_cli import PrismaProject
from tests.harness.collection import REPO_ROOT
from tests.harness.prisma_corpus import build_corpus
from tests.harness.sync_sweep import deploy, reapply_one, reappliable, schema_fingerprint, sweep_one

DATABASES = {'postgresql': 'postgres_db', 'mysql': 'mariadb_db', 'sqlite': 'sqlite_db'}
REPORTS = os.path.join(REPO_ROOT, '.build', 'reports')
GOAL = 0.90
# what may stop a decision in this history: statements whose effect no catalog shows
ACCEPTED_CAUSES = ('changes rows', 'cannot be modelled')


@pytest.mark.parametrize('engine', sorted(DATABASES))
def test_synced_decides_a_real_shaped_history_and_is_never_wrong(engine, request, tmp_path):
    database = request.getfixturevalue(DATABASES[engine])
    corpus = build_corpus(engine)
    if engine == 'sqlite':
        project = PrismaProject(tmp_path / 'app', database_path=database.path)
        folder = corpus.write(project.migrations)
        started = time.time()
        deployed_by = 'prisma migrate deploy'
        assert project.deploy().returncode == 0
        deploy_s = time.time() - started
    else:
        folder = corpus.write(str(tmp_path / 'prisma' / 'migrations'))
        deployed_by = 'state=deployed'
        deploy_s = deploy(database, folder)
    reference = schema_fingerprint(database)

    started = time.time()
    outcomes = [sweep_one(database, folder, name, reference) for name in corpus.names]
    sweep_s = time.time() - started
    started = time.time()
    reapplied = [(name, reapply_one(database, folder, name, drops, reference)) for name, drops in reappliable(corpus)]
    reapply_s = time.time() - started

    decided = [o for o in outcomes if o.decided]
    report = dict(engine=engine, migrations=len(outcomes), deployed_by=deployed_by, deploy_s=round(deploy_s, 2),
                  sweep_s=round(sweep_s, 1), sweep_per_migration_s=round(sweep_s / len(outcomes), 3),
                  decided=len(decided), share=round(len(decided) / float(len(outcomes)), 4),
                  decisions=dict(collections.Counter(o.decision for o in outcomes)),
                  kinds=dict(collections.Counter(tag for name in corpus.names for tag in corpus.tags(name))),
                  undecided=[dict(name=o.name, reason=o.reason, kinds=sorted(corpus.tags(o.name))) for o in outcomes
                             if not o.decided],
                  reapplied=len(reapplied), reapply_s=round(reapply_s, 1),
                  wrong=[o.as_dict() for o in outcomes if o.problems] + [dict(name=n, problems=p) for n, p in reapplied if p])
    os.makedirs(REPORTS, exist_ok=True)
    with open(os.path.join(REPORTS, 'sync-corpus-%s.json' % engine), 'w') as handle:
        json.dump(report, handle, indent=2, sort_keys=True)

    assert not report['wrong'], json.dumps(report['wrong'], indent=2)[:6000]
    assert report['share'] >= GOAL, report['undecided']
    assert all(any(cause in (u['reason'] or '') for cause in ACCEPTED_CAUSES) for u in report['undecided']), report['undecided']
    assert len(outcomes) >= 150 and len(reapplied) >= 10
    if engine == 'sqlite':
        status = project.status()
        assert status.up_to_date and not status.failed, status
