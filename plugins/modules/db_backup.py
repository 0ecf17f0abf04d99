#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: db_backup
short_description: Verified, atomic backups and restores for MySQL/MariaDB, PostgreSQL and SQLite
version_added: 1.0.0
description:
  - Takes a backup of one database into C(<dest_dir>/<name>/) - the dump streamed through compression with its
    SHA-256 computed in the same pass, optional copies of O(include_paths) and a C(manifest.json) (engine, server and
    tool versions, start/end, sizes, SHA-256 of every file, per-table row counts, the C(_prisma_migrations) snapshot).
  - The backup directory appears only when it is complete (temporary name, fsync, rename); a killed or failed run
    leaves nothing that O(state=info) reports as complete or O(state=restored) accepts.
  - MySQL/MariaDB use C(mariadb-dump)/C(mysqldump) in one consistent transaction with routines, triggers and events;
    PostgreSQL uses C(pg_dump) custom format (or directory format with parallel jobs) on the same snapshot the row
    counts are taken from; SQLite uses its online backup API.
  - Passwords reach the dump tools only through a 0600 option file or C(PGPASSFILE) in a private directory that is
    removed afterwards - never through a command line, the module's environment or the task output.
  - Instead of O(database_url)/O(env_file) the connection can be given with O(engine) and the C(login_*) options.
extends_documentation_fragment:
  - saferelease.core.database
options:
  engine:
    description:
      - Database engine when the connection is given with the C(login_*) options. C(mysql) covers MariaDB.
    type: str
    choices: [mysql, postgresql, sqlite]
  login_host:
    description: Database server host (with O(engine)).
    type: str
    default: 127.0.0.1
  login_port:
    description: Database server port (with O(engine)); defaults to 3306 or 5432.
    type: int
  login_user:
    description: Database user (with O(engine)).
    type: str
  login_password:
    description: Password of O(login_user) (with O(engine)). Never logged or passed on a command line.
    type: str
  login_db:
    description: Database name (with O(engine)); for SQLite the path of the database file.
    type: str
  schema_dir:
    description:
      - Folder holding C(schema.prisma); a relative SQLite C(file:) URL is resolved against it, as Prisma does.
      - Defaults to the C(prisma) folder next to O(env_file) when it exists, else the folder of O(env_file).
    type: path
  dest_dir:
    description: Directory holding the backups (created with mode 0700 when missing).
    type: path
    required: true
  name:
    description:
      - Name of the backup (its directory under O(dest_dir)).
      - For O(state=present) defaults to a UTC timestamp such as C(20250821T015630Z).
      - For O(state=verified) and O(state=restored) defaults to the newest complete and intact backup.
      - For O(state=absent) removes this one backup instead of applying O(keep).
    type: str
  state:
    description:
      - One of C(present), C(verified), C(restored), C(absent) or C(info).
      - C(present) takes a backup; C(verified) checks one (checksums, then a trial restore into a scratch database);
        C(restored) restores one into the database; C(absent) prunes old backups by O(keep); C(info) lists the backups.
      - The values are checked by the module rather than listed as choices, because Ansible's module guidelines reserve
        C(info) for separate C(_info) modules while this module's contract keeps listing beside the other states.
    type: str
    default: present
  compression:
    description: How the dump is compressed on the fly (C(zstd) runs multi-threaded).
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  compression_level:
    description: Compression level (zstd 1-22, default 3; gzip 1-9, default 6).
    type: int
  threads:
    description: Compression threads for zstd (C(0) = one per CPU core).
    type: int
    default: 0
  pg_format:
    description:
      - PostgreSQL dump format. C(custom) is one file streamed through O(compression); C(directory) dumps and
        restores with O(jobs) parallel workers (pg_dump's own gzip compression, checksums computed after the dump).
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description: Parallel workers for PostgreSQL directory-format dumps and restores.
    type: int
    default: 2
  include_paths:
    description:
      - Files or directories copied into the backup (for example C(prisma/migrations) and C(prisma/schema.prisma)).
      - O(state=restored) puts them back where they came from, replacing what is there.
    type: list
    elements: path
    default: []
  verify:
    description: With O(state=present), run a trial restore of the new backup into a scratch database and compare it.
    type: bool
    default: false
  keep:
    description:
      - Number of newest backups to keep. Applied after a successful O(state=present) and by O(state=absent).
      - Emergency snapshots taken by O(state=restored) are counted separately. Unfinished leftovers of killed runs are removed too.
    type: int
  confirm:
    description: Must be C(true) for O(state=restored), which replaces the database contents.
    type: bool
    default: false
  min_free_bytes:
    description: Refuse to start a backup when O(dest_dir) has fewer free bytes than this.
    type: int
    default: 0
  min_free_percent:
    description: Refuse to start a backup when O(dest_dir)'s filesystem has less free space than this percentage.
    type: float
    default: 0
  scratch_database:
    description:
      - Name of the scratch database for trial restores (created and dropped again; must not exist).
      - Defaults to C(<database>_verify_<random>). Needs the privilege to create databases. Not used for SQLite.
    type: str
notes:
  - Check mode writes nothing - no files, no scratch database, no restore - and reports what would be done.
  - MySQL/MariaDB row counts are taken in a consistent snapshot just before the dump's own snapshot; with writes
    during the dump a trial restore may report a row count difference. PostgreSQL shares one snapshot.
  - A restore drops every table, view, routine and event of the database (PostgreSQL - every user schema) before
    loading the dump; the emergency snapshot taken first holds the previous contents.
requirements:
  - mariadb-dump or mysqldump and the mariadb or mysql client for MySQL/MariaDB; pg_dump and pg_restore for PostgreSQL.
  - zstd (or gzip/pigz) for compression.
author:
  - saferelease.core contributors (@saferelease)
'''

EXAMPLES = r'''
- name: Back up the application database and prove it restores
  saferelease.core.db_backup:
    env_file: /srv/easy-erp/current/.env
    dest_dir: /var/backups/easy-erp
    include_paths:
      - /srv/easy-erp/current/prisma/migrations
      - /srv/easy-erp/current/prisma/schema.prisma
    verify: true
    keep: 10
  register: backup

- name: Check an existing backup
  saferelease.core.db_backup:
    env_file: /srv/easy-erp/current/.env
    dest_dir: /var/backups/easy-erp
    name: "{{ backup.backup.name }}"
    state: verified

- name: Restore it (Level 3 rollback)
  saferelease.core.db_backup:
    env_file: /srv/easy-erp/current/.env
    dest_dir: /var/backups/easy-erp
    name: "{{ backup.backup.name }}"
    state: restored
    confirm: true

- name: List backups
  saferelease.core.db_backup:
    engine: postgresql
    login_user: shop
    login_password: "{{ vault_shop_db_password }}"
    login_db: shop
    dest_dir: /var/backups/shop
    state: info
'''

RETURN = r'''
backup:
  description: The backup taken, verified or restored.
  returned: when a backup was selected or taken
  type: dict
  contains:
    name:
      description: Backup name.
      type: str
    path:
      description: Backup directory.
      type: str
    manifest:
      description: The manifest - files with sizes and SHA-256, row counts, versions, timings, the _prisma_migrations snapshot.
      type: dict
size_bytes:
  description: Total size of the backup's files.
  returned: when a backup was taken or selected
  type: int
duration_s:
  description: Seconds the main operation took (dump, verification or restore).
  returned: always
  type: float
throughput_mb_s:
  description: Database size (MB) divided by the dump or restore duration.
  returned: when a backup was taken or restored
  type: float
row_counts:
  description: Rows per table (from the manifest, or counted after a restore).
  returned: when a backup was taken, verified or restored
  type: dict
backups:
  description: For O(state=info) every backup, newest first, with C(name), C(path), C(complete), C(intact), C(manifest), C(problems).
  returned: state=info
  type: list
  elements: dict
emergency_backup:
  description: The snapshot of the database taken before O(state=restored) replaced it (C(name), C(path)).
  returned: state=restored
  type: dict
verification:
  description: Result of the checksum check and trial restore (C(checksums_ok), C(scratch), C(problems), C(duration_s)).
  returned: state=verified, or state=present with verify
  type: dict
removed:
  description: Backups removed (or, in check mode, that would be removed) by retention or O(state=absent).
  returned: when retention ran
  type: list
  elements: str
restored_paths:
  description: The O(include_paths) put back by O(state=restored).
  returned: state=restored
  type: list
  elements: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.saferelease.core.plugins.module_utils.database import (
    DatabaseError, DatabaseTarget, DEFAULT_PORTS, connect, database_argument_spec, resolve_target)
from ansible_collections.saferelease.core.plugins.module_utils import backup_store as store
from ansible_collections.saferelease.core.plugins.module_utils.dump_tools import ToolError
from ansible_collections.saferelease.core.plugins.module_utils.restore import (
    BackupError, compare_inventory, inspect_target, load_dump, take_backup, tool_problems, trial_restore)


def build_target(params):
    if params['database_url'] or params['env_file']:
        base_dir = params['schema_dir']
        if not base_dir and params['env_file']:
            env_dir = os.path.dirname(os.path.abspath(params['env_file']))
            base_dir = os.path.join(env_dir, 'prisma') if os.path.isdir(os.path.join(env_dir, 'prisma')) else env_dir
        return resolve_target(params['database_url'], params['env_file'], base_dir=base_dir, variable=params['env_var'])
    engine = params['engine']
    if engine == 'sqlite':
        return DatabaseTarget('sqlite', path=os.path.abspath(params['login_db']), database=os.path.basename(params['login_db']))
    return DatabaseTarget(engine, host=params['login_host'], port=params['login_port'] or DEFAULT_PORTS[engine],
                          user=params['login_user'], password=params['login_password'], database=params['login_db'],
                          schema='public' if engine == 'postgresql' else None)


def preflight(target, params, need_restore=True):
    """Tools present and database reachable; raises BackupError naming the fix."""
    missing = tool_problems(target.engine, params['compression'], params['pg_format'], need_restore=need_restore)
    if missing:
        raise BackupError('Missing tools on this host: %s. Install them (e.g. apt-get install mariadb-client postgresql-client zstd) '
                          'and run again; nothing was changed.' % ', '.join(missing))
    if target.engine == 'sqlite' and not os.path.exists(target.path):
        return
    conn = connect(target, params['connect_timeout'])
    conn.close()


def entry_result(entry):
    return dict(name=entry['name'], path=entry['path'], manifest=entry['manifest'])


def mb_per_s(nbytes, seconds):
    if not nbytes or not seconds:
        return None
    return round(nbytes / 1e6 / seconds, 2)


def state_present(module, target, result):
    params = module.params
    dest_dir = params['dest_dir']
    name = store.validate_name(params['name'] or store.default_name())
    path = os.path.join(dest_dir, name)
    if os.path.exists(path):
        raise BackupError('A backup named %r already exists in %s; choose another name.' % (name, dest_dir))
    preflight(target, params, need_restore=params['verify'])
    result['free_space'] = store.check_free_space(dest_dir, params['min_free_bytes'], params['min_free_percent'])
    result['changed'] = True
    result['diff'] = dict(before='', after='%s\n' % path)
    if module.check_mode:
        result['backup'] = dict(name=name, path=path, manifest=None)
        result['msg'] = 'Would take a backup of %s into %s.' % (target.redacted(), path)
        return
    path, manifest = take_backup(target, dest_dir, name, params['compression'], params['compression_level'], params['threads'],
                                 params['pg_format'], params['jobs'], params['include_paths'])
    result['backup'] = dict(name=name, path=path, manifest=manifest)
    result['size_bytes'] = manifest['size_bytes']
    result['duration_s'] = manifest['duration_s']
    result['throughput_mb_s'] = mb_per_s(manifest.get('database_size_bytes'), manifest['duration_s'])
    result['row_counts'] = manifest['row_counts']
    if params['verify']:
        result['verification'] = verify_backup(target, dict(path=path, manifest=manifest), params)
        if result['verification']['problems']:
            raise BackupError('The backup %s was written but its trial restore differs from the manifest: %s. Do not rely on it; '
                              'check the database and take a new backup.' % (path, '; '.join(result['verification']['problems'])))
    if params['keep'] is not None:
        result['removed'] = [e['name'] for e in store.prune(dest_dir, params['keep'])]


def verify_backup(target, entry, params):
    manifest = entry['manifest']
    if manifest['engine'] != target.engine:
        raise BackupError('Backup %s is a %s backup; the target database is %s.' % (entry['path'], manifest['engine'], target.engine))
    trial = trial_restore(target, entry['path'], manifest, scratch=params['scratch_database'], jobs=params['jobs'])
    trial['checksums_ok'] = True
    return trial


def state_verified(module, target, result):
    params = module.params
    t0 = time.time()
    entry = store.select_backup(params['dest_dir'], params['name'])
    result['backup'] = entry_result(entry)
    result['size_bytes'] = entry['manifest']['size_bytes']
    result['row_counts'] = entry['manifest']['row_counts']
    if module.check_mode:
        result['verification'] = dict(checksums_ok=True, scratch=None, problems=[], skipped='trial restore skipped in check mode')
    else:
        preflight(target, params)
        result['verification'] = verify_backup(target, entry, params)
    result['duration_s'] = round(time.time() - t0, 3)
    if result['verification']['problems']:
        module.fail_json(msg='Backup %s failed verification: %s. Do not restore it; take a new backup.' % (
            entry['path'], '; '.join(result['verification']['problems'])), **result)


def state_restored(module, target, result):
    params = module.params
    if not params['confirm']:
        raise BackupError('state=restored replaces the contents of %s; set confirm: true to go ahead. Nothing was changed.'
                          % target.redacted())
    entry = store.select_backup(params['dest_dir'], params['name'])
    manifest = entry['manifest']
    if manifest['engine'] != target.engine:
        raise BackupError('Backup %s is a %s backup but the target is %s; nothing was changed.' % (entry['path'], manifest['engine'], target.engine))
    result['backup'] = entry_result(entry)
    result['size_bytes'] = manifest['size_bytes']
    include = [e['source'] for e in manifest.get('include_paths') or []]
    result['changed'] = True
    result['diff'] = dict(before='%s\n' % target.redacted(), after='%s restored from %s\n' % (target.redacted(), entry['path']))
    preflight(target, params)
    if module.check_mode:
        result['msg'] = 'Would take an emergency snapshot, then restore %s into %s.' % (entry['path'], target.redacted())
        result['restored_paths'] = store.restore_include_paths(entry['path'], manifest.get('include_paths'), check_mode=True)
        return
    store.check_free_space(params['dest_dir'], params['min_free_bytes'], params['min_free_percent'])
    emergency_missing = target.engine == 'sqlite' and not os.path.exists(target.path)
    if emergency_missing:
        result['emergency_backup'] = None
        module.warn('The SQLite database %s does not exist, so there was nothing to snapshot before the restore.' % target.path)
    else:
        ename = store.default_name(prefix='emergency-')
        if os.path.exists(os.path.join(params['dest_dir'], ename)):
            ename += '-%d' % os.getpid()
        try:
            epath, emanifest = take_backup(target, params['dest_dir'], ename, 'zstd', None, params['threads'], 'custom', params['jobs'],
                                           [p for p in include if os.path.exists(p)], kind='emergency',
                                           extra_manifest=dict(before_restore_of=entry['name']))
        except BackupError as exc:
            raise BackupError('The emergency snapshot before the restore failed, so the restore was not started and the database '
                              'is unchanged: %s' % exc.message)
        result['emergency_backup'] = dict(name=ename, path=epath, size_bytes=emanifest['size_bytes'])
    t0 = time.time()
    try:
        load_dump(target, entry['path'], manifest, jobs=params['jobs'])
    except ToolError as exc:
        raise BackupError('Restoring %s failed: %s. The database may be partly restored; restore the emergency snapshot %s '
                          '(state=restored, name=%s).' % (entry['path'], target.scrub(exc.message),
                                                          (result.get('emergency_backup') or {}).get('path'),
                                                          (result.get('emergency_backup') or {}).get('name')))
    info = inspect_target(target)
    result['duration_s'] = round(time.time() - t0, 3)
    result['throughput_mb_s'] = mb_per_s(manifest.get('database_size_bytes'), result['duration_s'])
    result['row_counts'] = info['row_counts']
    problems = compare_inventory(manifest, info) + ['integrity_check: %s' % p for p in info.get('integrity') or []]
    if problems:
        raise BackupError('The restored database differs from the backup: %s. The emergency snapshot is %s.' % (
            '; '.join(problems), (result.get('emergency_backup') or {}).get('path')))
    result['restored_paths'] = store.restore_include_paths(entry['path'], manifest.get('include_paths'))


def state_absent(module, result):
    params = module.params
    dest_dir = params['dest_dir']
    if not os.path.isdir(dest_dir):
        result['removed'] = []
        return
    before = [e['name'] for e in store.list_backups(dest_dir, check_intact=False)]
    if params['name']:
        store.validate_name(params['name'])
        path = os.path.join(dest_dir, params['name'])
        removed = [params['name']] if os.path.isdir(path) else []
        if removed and not module.check_mode:
            store.remove_backup(path)
    elif params['keep'] is not None:
        removed = [e['name'] for e in store.prune(dest_dir, params['keep'], check_mode=module.check_mode)]
    else:
        raise BackupError('state=absent needs keep (how many backups to keep) or name (the backup to remove).')
    result['removed'] = removed
    result['changed'] = bool(removed)
    after = list(before)
    for name in removed:
        if name in after:
            after.remove(name)
    result['diff'] = dict(before='\n'.join(before) + '\n', after='\n'.join(after) + '\n')


STATES = ('present', 'verified', 'restored', 'absent', 'info')


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(
        engine=dict(type='str', choices=['mysql', 'postgresql', 'sqlite']),
        login_host=dict(type='str', default='127.0.0.1'),
        login_port=dict(type='int'),
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_db=dict(type='str'),
        schema_dir=dict(type='path'),
        dest_dir=dict(type='path', required=True),
        name=dict(type='str'),
        state=dict(type='str', default='present'),
        compression=dict(type='str', default='zstd', choices=['zstd', 'gzip', 'none']),
        compression_level=dict(type='int'),
        threads=dict(type='int', default=0),
        pg_format=dict(type='str', default='custom', choices=['custom', 'directory']),
        jobs=dict(type='int', default=2),
        include_paths=dict(type='list', elements='path', default=[]),
        verify=dict(type='bool', default=False),
        keep=dict(type='int'),
        confirm=dict(type='bool', default=False),
        min_free_bytes=dict(type='int', default=0),
        min_free_percent=dict(type='float', default=0),
        scratch_database=dict(type='str'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[('database_url', 'env_file'), ('database_url', 'engine'), ('env_file', 'engine')],
        required_by=dict(engine=('login_db',)),
    )
    params = module.params
    state = params['state']
    result = dict(changed=False, duration_s=0.0)
    if state not in STATES:
        module.fail_json(msg='state must be one of %s (got %r).' % (', '.join(STATES), state), **result)
    if params['keep'] is not None and params['keep'] < 0:
        module.fail_json(msg='keep must be 0 or more.', **result)
    if not os.path.isabs(params['dest_dir']):
        module.fail_json(msg='dest_dir must be an absolute path (got %r).' % params['dest_dir'], **result)
    t0 = time.time()
    try:
        if state == 'info':
            result['backups'] = store.list_backups(params['dest_dir'])
        elif state == 'absent':
            state_absent(module, result)
        else:
            if not (params['database_url'] or params['env_file'] or params['engine']):
                module.fail_json(msg='No database given: set database_url, env_file, or engine with login_db (and login_* options).',
                                 **result)
            target = build_target(params)
            result['database'] = target.as_dict()
            if state == 'present':
                state_present(module, target, result)
            elif state == 'verified':
                state_verified(module, target, result)
            else:
                state_restored(module, target, result)
    except (BackupError, store.BackupStoreError, DatabaseError, ToolError) as exc:
        module.fail_json(msg=exc.message, **result)
    if not result.get('duration_s'):
        result['duration_s'] = round(time.time() - t0, 3)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
