#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: prisma_migration_state
short_description: Read and repair Prisma Migrate's C(_prisma_migrations) bookkeeping natively
description:
  - Reads the Prisma migrations folder and the C(_prisma_migrations) table on MySQL/MariaDB, PostgreSQL or SQLite
    with Python drivers, so no Node.js or Prisma CLI is needed on the host.
  - Reports each migration's status exactly as C(prisma migrate status) decides it, and changes the bookkeeping the way
    C(prisma migrate resolve) and C(prisma migrate deploy) do, writing the same rows (same checksums, ids, timestamps,
    C(logs) and C(applied_steps_count)).
  - O(state=synced) automates runbook 000 - for every migration not yet applied it replays the local history with and
    without that migration and compares the live catalog with both on exactly what the migration changes (tables,
    columns with their type, nullability and default, indexes, constraints, enum values, views, functions, triggers,
    sequences). It marks the migration applied only when every statement's effect is seen, applies it only when none is
    (and it can run), and otherwise reports it as undecidable (data statements, statements the catalog cannot show) or
    partly applied, with the statement that stopped it and the command that resolves it.
  - Identifiers follow each engine's rules (PostgreSQL truncates names to 63 bytes and folds unquoted names to lower case;
    MySQL compares most names without case; SQLite compares all names without case). C(CREATE OR REPLACE) counts only
    when the definition it sets is seen. Objects a later applied migration changed or dropped are expected as that
    migration left them.
  - Before changing anything it takes the same advisory lock as Prisma Migrate, so it never races a running
    C(prisma migrate deploy) - on PostgreSQL the advisory lock 72707369, on MySQL the named lock C(prisma_migrate),
    on SQLite the exclusive locking mode.
version_added: 0.1.0
author:
  - saferelease.core contributors (@saferelease)
extends_documentation_fragment:
  - saferelease.core.database
options:
  migrations_dir:
    description:
      - The Prisma migrations folder of the release, usually C(<app>/prisma/migrations), holding C(migration_lock.toml)
        and one sub-folder per migration with its C(migration.sql).
      - Its parent folder is the prisma folder that relative SQLite C(file:) URLs are resolved against.
    type: path
    required: true
  state:
    description:
      - V(status) reads only.
      - V(applied) records O(migration) as applied without running it, like C(prisma migrate resolve --applied);
        a migration that is already applied is left alone (C(changed=false)).
      - V(rolled_back) marks the failed O(migration) as rolled back, like C(prisma migrate resolve --rolled-back); refused with
        Prisma's P3011 when it was never applied and P3012 when it is not failed.
      - V(absent) deletes every record of O(migration) (runbook 001, level 2).
      - V(deployed) applies every migration that is not applied, in folder order, like C(prisma migrate deploy); stops at the first
        failure, leaving it recorded as failed.
      - V(deployed) creates the database first when it does not exist (PostgreSQL, MySQL; a SQLite file), as
        C(prisma migrate deploy) does.
      - V(synced) decides per migration that is not applied by probing the database (see description); O(migration) limits it to one.
        Migrations are decided in folder order and acted on up to the first one that cannot be decided or is partly applied;
        nothing after it is changed and the task fails, listing what is left and how to resolve each.
    type: str
    choices: [status, applied, rolled_back, absent, deployed, synced]
    default: status
  migration:
    description:
      - The migration folder name, for example C(20250821015630_add_shipment_file_field).
      - Required for O(state=applied), O(state=rolled_back) and O(state=absent); optional for O(state=synced); not used otherwise.
      - Any folder name Prisma accepts (spaces and names such as C(20240126184148_new_models copy) included); names with
        C(/), C(..), NUL or control characters are refused. The name is always passed to the database as a bound parameter.
    type: str
  backup_path:
    description:
      - Before any change, write the current C(_prisma_migrations) rows as JSON (mode 0600) to this file, or to a
        timestamped file inside it when it is an existing directory. Nothing is written when nothing changes or in check mode.
    type: path
  lock_timeout:
    description:
      - Seconds to wait for Prisma's migrate lock before giving up (Prisma itself waits 10 seconds).
    type: int
    default: 10
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reports the actions it would take and the resulting status; changes nothing and takes no lock.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the C(_prisma_migrations) rows before and after.
notes:
  - Status classification follows C(prisma migrate status) - C(failed) when a row has neither C(finished_at) nor
    C(rolled_back_at); C(modified) when the first row for the name does not match the local checksum (CRLF/LF variants and
    legacy unpadded checksums match, as in Prisma); C(rolled_back) when every row is rolled back (deploy applies it again);
    C(missing_locally) for rows without a folder.
  - SQLite timestamps are written as epoch milliseconds, as Prisma's engine does; all forms Prisma accepts are read.
seealso:
  - name: Prisma migrate resolve
    description: Resolving migration history issues in production.
    link: https://www.prisma.io/docs/orm/prisma-migrate/workflows/patching-and-hotfixing
'''

EXAMPLES = r'''
- name: Show the migration status of the deployed release
  saferelease.core.prisma_migration_state:
    env_file: /srv/easy-erp/current/.env
    migrations_dir: /srv/easy-erp/current/prisma/migrations
  register: migration_state

- name: Runbook 000 - sync the bookkeeping with what the database really holds
  saferelease.core.prisma_migration_state:
    env_file: /srv/easy-erp/current/.env
    migrations_dir: /srv/easy-erp/current/prisma/migrations
    state: synced
    backup_path: /var/backups/easy-erp/prisma-migrations
  register: sync

- name: Mark one migration applied (prisma migrate resolve --applied)
  saferelease.core.prisma_migration_state:
    database_url: "{{ vault_database_url }}"
    migrations_dir: /srv/easy-erp/current/prisma/migrations
    state: applied
    migration: 20250821015630_add_shipment_file_field

- name: Runbook 001 level 2 - forget a migration's record after undoing it
  saferelease.core.prisma_migration_state:
    env_file: /srv/easy-erp/current/.env
    migrations_dir: /srv/easy-erp/current/prisma/migrations
    state: absent
    migration: 20250821015630_add_shipment_file_field
    backup_path: /var/backups/easy-erp/prisma-migrations

- name: Apply pending migrations like prisma migrate deploy (PostgreSQL schema from the URL)
  saferelease.core.prisma_migration_state:
    database_url: "postgresql://app:{{ vault_db_password }}@db1:5432/shop?schema=app"
    migrations_dir: /srv/shop/current/prisma/migrations
    state: deployed
'''

RETURN = r'''
migrations:
  description: One entry per migration (local ones in folder order, then the ones only in the database), after the change (predicted in check mode).
  returned: success, and on failure once the database was read
  type: list
  elements: dict
  contains:
    name:
      description: Migration folder name.
      type: str
    status:
      description: One of V(applied), V(pending), V(failed), V(rolled_back), V(modified), V(missing_locally).
      type: str
    local:
      description: Whether the migration folder exists.
      type: bool
    records:
      description: Number of rows for the name in C(_prisma_migrations).
      type: int
    checksum_local:
      description: SHA-256 of the local C(migration.sql).
      type: str
    checksum_db:
      description: Checksum stored in the row that decides the status.
      type: str
    checksum_matches:
      description: Whether Prisma considers the stored checksum equal to the local file's (null without rows).
      type: bool
    started_at:
      description: ISO 8601 UTC.
      type: str
    finished_at:
      description: ISO 8601 UTC, null when not finished.
      type: str
    rolled_back_at:
      description: ISO 8601 UTC, null when not rolled back.
      type: str
    applied_steps_count:
      description: As stored by Prisma.
      type: int
    logs:
      description: Error text of a failed attempt.
      type: str
  sample:
    - name: 20250821015630_add_shipment_file_field
      status: applied
      local: true
      records: 1
      checksum_local: 4bd2c1ab3c2d6b2c59e4b5b0c9f45c0bfa6ed2b7e0f5e4a0b0d3f5f8a3f3a1c2
      checksum_db: 4bd2c1ab3c2d6b2c59e4b5b0c9f45c0bfa6ed2b7e0f5e4a0b0d3f5f8a3f3a1c2
      checksum_matches: true
      started_at: '2025-08-21T02:10:00.000Z'
      finished_at: '2025-08-21T02:10:00.000Z'
      rolled_back_at: null
      applied_steps_count: 0
      logs: ''
summary:
  description: Migration names per status, after the change (predicted in check mode).
  returned: success
  type: dict
  sample: {applied: [20250101000000_init, 20250821015630_add_shipment_file_field], pending: [], failed: [], rolled_back: [],
           modified: [], missing_locally: []}
up_to_date:
  description: Whether every migration is applied (nothing pending, failed, rolled back, modified or missing locally).
  returned: success
  type: bool
before:
  description: Summary and up_to_date before the change.
  returned: success
  type: dict
actions:
  description: What was done (or would be done in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample:
    - action: mark_applied
      migration: 20250821015630_add_shipment_file_field
      reason: all objects its SQL creates already exist
      done: true
sync:
  description:
    - For O(state=synced), the decision per migration that is not applied, in folder order.
    - C(decision) is V(mark_applied), V(apply), V(undecidable) or V(conflict); C(acted) says whether it was acted on
      (only decisions before the first undecidable or conflicting migration are).
    - C(probe) is V(present), V(absent), V(partial), V(empty) or V(unprobeable); C(present) and C(absent) list the objects seen
      and not seen; C(statements) gives each statement with its status and the objects compared (expected and live values);
      C(stopped_by) the statement that made the migration undecidable; C(resolve) the commands that settle it.
  returned: when state is synced
  type: list
  elements: dict
database:
  description: The target without its password (engine, host, port, user, database, schema, path, redacted url).
  returned: success
  type: dict
backup_file:
  description: The file the rows were saved to before the change, if any.
  returned: success
  type: str
error_code:
  description: Prisma's error code for a refusal that Prisma would also make (P3005, P3008-P3019), else null.
  returned: failure
  type: str
  sample: P3012
'''

import os
import sqlite3
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.saferelease.core.plugins.module_utils.database import (
    DatabaseError,
    DatabaseMissingError,
    connect,
    create_database,
    database_argument_spec,
    describe_error,
    resolve_target,
)
from ansible_collections.saferelease.core.plugins.module_utils.prisma import (
    MigrationApplyError,
    MigrationLock,
    PrismaError,
    backup_records,
    check_provider,
    classify,
    execute_actions,
    migrations_table_exists,
    plan_delete,
    plan_deploy,
    plan_mark_applied,
    plan_mark_rolled_back,
    plan_sync,
    read_migrations_dir,
    read_records,
    render_records,
    simulate,
    sync_blocked_message,
    user_tables,
    validate_migration_name,
)
from ansible_collections.saferelease.core.plugins.module_utils.schema_catalog import read_catalog, server_dialect
from ansible_collections.saferelease.core.plugins.module_utils.schema_probe import History, Prober

NAMED_STATES = ('applied', 'rolled_back', 'absent')
CREATING_STATES = ('deployed', 'synced')


def _status(migrations_dir, records):
    migrations, summary, up_to_date = classify(migrations_dir, records)
    return dict(migrations=migrations, summary=summary, up_to_date=up_to_date)


def plan_state(state, migrations_dir, records, table_exists, migration, conn, target):
    """The actions for ``state``, the sync decisions and the blocked ones, without changing anything."""
    if state == 'status':
        return [], None, []
    if state == 'applied':
        return plan_mark_applied(migrations_dir, records, migration, table_exists), None, []
    if state == 'rolled_back':
        return plan_mark_rolled_back(records, migration), None, []
    if state == 'absent':
        return plan_delete(records, migration), None, []
    if state == 'deployed':
        existing = [] if table_exists or conn is None else user_tables(conn, target)
        return plan_deploy(migrations_dir, records, table_exists, existing), None, []
    dialect = server_dialect(conn, target)
    history = History(dialect, migrations_dir.migrations)
    return plan_sync(migrations_dir, records, Prober(history, read_catalog(conn, target, dialect)), table_exists, only=migration)


def _open(module, target, state):
    """``(connection, created)``: the database, created first for deployed when it does not exist (as Prisma does).

    In check mode a database that does not exist yet reads as an empty one (``connection`` None
    for a server, an in-memory database for SQLite) and nothing is created.
    """
    params = module.params
    if target.engine == 'sqlite' and state in CREATING_STATES and not os.path.exists(target.path):
        if module.check_mode:
            return sqlite3.connect(':memory:', isolation_level=None), True
        return connect(target, params['connect_timeout'], create=True), True
    try:
        return connect(target, params['connect_timeout']), False
    except DatabaseMissingError:
        if state != 'deployed':
            raise
    if module.check_mode:
        return None, True
    create_database(target, params['connect_timeout'])
    return connect(target, params['connect_timeout']), True


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(
        migrations_dir=dict(type='path', required=True),
        state=dict(type='str', default='status', choices=['status', 'applied', 'rolled_back', 'absent', 'deployed', 'synced']),
        migration=dict(type='str'),
        backup_path=dict(type='path'),
        lock_timeout=dict(type='int', default=10),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[('database_url', 'env_file')],
        required_one_of=[('database_url', 'env_file')],
        required_if=[('state', name, ['migration']) for name in NAMED_STATES],
    )
    params = module.params
    state = params['state']
    result = dict(changed=False, actions=[], state=state)

    try:
        migration = validate_migration_name(params['migration']) if params['migration'] is not None else None
        if migration is not None and state == 'deployed':
            module.fail_json(msg='migration is not used with state=deployed (it applies every pending migration, like prisma '
                                 'migrate deploy); use state=synced with migration to handle one.', **result)
        migrations_dir = read_migrations_dir(params['migrations_dir'])
        target = resolve_target(params['database_url'], params['env_file'], base_dir=os.path.dirname(
            os.path.abspath(params['migrations_dir'].rstrip('/'))), variable=params['env_var'])
    except (DatabaseError, PrismaError) as exc:
        module.fail_json(msg=_message(exc), error_code=getattr(exc, 'code', None), **result)

    if target.password:
        module.no_log_values.add(target.password)
    result['database'] = target.as_dict()

    try:
        check_provider(migrations_dir, target.engine)
        conn, created = _open(module, target, state)
    except (DatabaseError, PrismaError) as exc:
        module.fail_json(msg=_message(exc), error_code=getattr(exc, 'code', None), **result)

    lock = None
    try:
        if state != 'status' and not module.check_mode:
            lock = MigrationLock(conn, target, params['lock_timeout']).acquire()
        table_exists = conn is not None and migrations_table_exists(conn, target)
        records = read_records(conn, target) if table_exists else None
        before = _status(migrations_dir, records)
        result['before'] = dict(summary=before['summary'], up_to_date=before['up_to_date'])
        actions, decisions, blocked = plan_state(state, migrations_dir, records, table_exists, migration, conn, target)
        if decisions is not None:
            result['sync'] = decisions
        if created:
            actions.insert(0, dict(action='create_database', migration=None, database=target.redacted()))
        result['actions'] = actions
        result['changed'] = bool(actions)

        if actions and not module.check_mode:
            if params['backup_path']:
                result['backup_file'] = backup_records(records, params['backup_path'], target)
            for action in actions:
                if action['action'] == 'create_database':
                    action['done'] = True
            try:
                execute_actions(conn, target, migrations_dir, [a for a in actions if a['action'] != 'create_database'])
            except MigrationApplyError as exc:
                after_records = read_records(conn, target)
                result.update(_status(migrations_dir, after_records))
                result['diff'] = dict(before=render_records(records), after=render_records(after_records))
                result['changed'] = True
                module.fail_json(msg=_message(exc), error_code=exc.code, **result)
            after_records = read_records(conn, target)
        else:
            after_records = simulate(records, actions) if actions else records
            if actions and records is None:
                after_records = simulate([], actions)
        result.update(_status(migrations_dir, after_records))
        if actions:
            result['diff'] = dict(before=render_records(records), after=render_records(after_records))
        if blocked:
            module.fail_json(msg=sync_blocked_message(blocked, actions), **result)
    except (DatabaseError, PrismaError) as exc:
        module.fail_json(msg=_message(exc), error_code=getattr(exc, 'code', None), **result)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg='Unexpected database error: %s. Check the actions in this result for what was done.'
                             % describe_error(target, exc), exception=target.scrub(traceback.format_exc()), **result)
    finally:
        if lock is not None:
            lock.release()
        try:
            if conn is not None:
                conn.close()
        except Exception:  # pylint: disable=broad-except
            pass

    module.exit_json(**result)


def _message(exc):
    message = getattr(exc, 'message', None) or to_native(exc)
    code = getattr(exc, 'code', None)
    return '%s: %s' % (code, message) if code else message


if __name__ == '__main__':
    main()
