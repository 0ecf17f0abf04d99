# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The on-disk backup store: layout, atomic publication, manifests, checksums, retention.

A backup is the directory ``<dest_dir>/<name>/`` holding the dump (``database.*``), copies of
``include_paths`` under ``files/<n>/``, ``manifest.json`` and ``manifest.json.sha256``. It is
built under a hidden temporary name (``.<name>.partial-<pid>-<random>``), every file and the
directory are fsynced, the manifest is written last, and only then is the directory renamed to
its final name, so a killed or failed run never leaves anything that looks complete.

Nothing here talks to a database; everything takes plain paths and dicts.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import uuid

from ansible_collections.saferelease.core.plugins.module_utils.dump_tools import hash_file

FORMAT = 'saferelease.db_backup/1'
MANIFEST = 'manifest.json'
MANIFEST_SUM = 'manifest.json.sha256'
FILES_DIR = 'files'
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$')
PARTIAL_RE = re.compile(r'^\.(?P<name>.+)\.partial-(?P<pid>\d+)-[0-9a-f]+$')
DELETING_RE = re.compile(r'^\..+\.deleting-[0-9a-f]+$')


class BackupStoreError(Exception):
    """A problem with the backup store; ``message`` says what to do next."""

    def __init__(self, message):
        super(BackupStoreError, self).__init__(message)
        self.message = message

    def __str__(self):
        return self.message


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts):
    return ts.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def default_name(now=None, prefix=''):
    """A sortable timestamp name such as ``20250821T015630Z``."""
    now = now or utc_now()
    return '%s%s' % (prefix, now.strftime('%Y%m%dT%H%M%SZ'))


def validate_name(name):
    if not name or not NAME_RE.match(name) or name in ('.', '..'):
        raise BackupStoreError(
            'Invalid backup name %r: use letters, digits, ".", "_" and "-" (at most 128, not starting with "." or "-").' % (name,))
    return name


def fsync_path(path):
    """fsync a file or a directory."""
    flags = os.O_RDONLY
    if os.path.isdir(path):
        flags |= getattr(os, 'O_DIRECTORY', 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def existing_ancestor(path):
    """``path`` or its nearest existing parent: where a directory not created yet would live."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def free_space(path):
    """(free bytes available to us, total bytes, free percent) of the filesystem holding ``path``.

    A ``path`` that does not exist yet is measured where it would be created, so check mode and
    preflights see the same figures as the run that creates it.
    """
    st = os.statvfs(existing_ancestor(path))
    free = st.f_bavail * st.f_frsize
    total = st.f_blocks * st.f_frsize
    percent = (100.0 * free / total) if total else 0.0
    return free, total, percent


def check_free_space(path, min_free_bytes=0, min_free_percent=0.0, need_bytes=0):
    """Raise :class:`BackupStoreError` unless ``path``'s filesystem has room; returns the figures."""
    free, total, percent = free_space(path)
    problems = []
    if min_free_bytes and free < min_free_bytes:
        problems.append('%d bytes free, min_free_bytes is %d' % (free, min_free_bytes))
    if min_free_percent and percent < min_free_percent:
        problems.append('%.1f%% free, min_free_percent is %s%%' % (percent, min_free_percent))
    if need_bytes and free < need_bytes:
        problems.append('%d bytes free, the backup needs about %d' % (free, need_bytes))
    if problems:
        raise BackupStoreError('Not enough free space in %s (%s). Free space there, lower the limits, or choose another '
                               'dest_dir; nothing was written.' % (path, '; '.join(problems)))
    return dict(free_bytes=free, total_bytes=total, free_percent=round(percent, 2))


def ensure_dest_dir(dest_dir):
    if not os.path.isabs(dest_dir):
        raise BackupStoreError('dest_dir must be an absolute path (got %r).' % dest_dir)
    if not os.path.isdir(dest_dir):
        try:
            os.makedirs(dest_dir, 0o700)
        except OSError as exc:
            raise BackupStoreError('Cannot create dest_dir %s (%s); create it or choose another path.' % (dest_dir, exc.strerror))
    if not os.access(dest_dir, os.W_OK | os.X_OK):
        raise BackupStoreError('dest_dir %s is not writable by this user; fix its permissions or choose another path.' % dest_dir)


def manifest_digest(data):
    return hashlib.sha256(data).hexdigest()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


class PartialBackup(object):
    """A backup under construction in a hidden temporary directory next to its final place."""

    def __init__(self, dest_dir, name):
        self.dest_dir = dest_dir
        self.name = validate_name(name)
        self.final_path = os.path.join(dest_dir, name)
        if os.path.lexists(self.final_path):
            raise BackupStoreError('A backup named %r already exists in %s; choose another name or remove it first.' % (name, dest_dir))
        self.path = os.path.join(dest_dir, '.%s.partial-%d-%s' % (name, os.getpid(), uuid.uuid4().hex[:12]))
        os.mkdir(self.path, 0o700)
        self.files = {}
        self.published = False

    def file_path(self, relpath):
        path = os.path.join(self.path, relpath)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
        return path

    def record(self, relpath, size, sha256):
        self.files[relpath] = dict(size=size, sha256=sha256)

    def record_existing(self, relpath):
        """Hash a file already written into the partial directory (directory-format dumps, copies)."""
        size, digest = hash_file(os.path.join(self.path, relpath))
        self.record(relpath, size, digest)

    def record_tree(self, relpath):
        """Hash every file under ``relpath``."""
        root = os.path.join(self.path, relpath)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for filename in sorted(filenames):
                full = os.path.join(dirpath, filename)
                self.record_existing(os.path.relpath(full, self.path))

    def copy_include_paths(self, include_paths):
        """Copy files/directories into ``files/<n>/<basename>``; returns the manifest entries."""
        entries = []
        for index, source in enumerate(include_paths or []):
            source = os.path.abspath(source)
            if not os.path.exists(source):
                raise BackupStoreError('include_paths entry %s does not exist; fix the path or remove it from include_paths.' % source)
            stored = os.path.join(FILES_DIR, str(index), os.path.basename(source.rstrip('/')) or 'root')
            target = self.file_path(stored)
            if os.path.isdir(source):
                shutil.copytree(source, target, symlinks=True)
                kind = 'directory'
                self.record_tree(stored)
            else:
                shutil.copy2(source, target)
                kind = 'file'
                self.record_existing(stored)
            entries.append(dict(source=source, stored=stored, type=kind))
        return entries

    def publish(self, manifest):
        """fsync everything, write the manifest last, rename into place. Returns the final path."""
        manifest = dict(manifest)
        manifest['format'] = FORMAT
        manifest['name'] = self.name
        manifest['files'] = dict(sorted(self.files.items()))
        manifest['size_bytes'] = sum(f['size'] for f in self.files.values())
        for dirpath, dirnames, filenames in os.walk(self.path):
            for filename in filenames:
                fsync_path(os.path.join(dirpath, filename))
            for dirname in dirnames:
                fsync_path(os.path.join(dirpath, dirname))
        data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode('utf-8') + b'\n'
        _write_synced(os.path.join(self.path, MANIFEST), data)
        _write_synced(os.path.join(self.path, MANIFEST_SUM), ('%s  %s\n' % (manifest_digest(data), MANIFEST)).encode('ascii'))
        fsync_path(self.path)
        if os.path.lexists(self.final_path):
            raise BackupStoreError('A backup named %r appeared in %s while this one was written; nothing was replaced.' % (
                self.name, self.dest_dir))
        os.rename(self.path, self.final_path)
        fsync_path(self.dest_dir)
        self.published = True
        return self.final_path, manifest

    def discard(self):
        if not self.published and os.path.isdir(self.path):
            shutil.rmtree(self.path, ignore_errors=True)


def _write_synced(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(path):
    """The manifest of the backup directory ``path``; raises :class:`BackupStoreError` if unusable."""
    mpath = os.path.join(path, MANIFEST)
    try:
        with open(mpath, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError):
        raise BackupStoreError('%s has no readable manifest.json: the backup is incomplete.' % path)
    try:
        with open(os.path.join(path, MANIFEST_SUM), 'r') as handle:
            expected = handle.read().split()[0]
    except (IOError, OSError, IndexError):
        raise BackupStoreError('%s has no manifest.json.sha256: the backup is incomplete.' % path)
    if manifest_digest(data) != expected:
        raise BackupStoreError('manifest.json in %s does not match its checksum: the backup is corrupt.' % path)
    try:
        manifest = json.loads(data.decode('utf-8'))
    except ValueError:
        raise BackupStoreError('manifest.json in %s is not valid JSON: the backup is corrupt.' % path)
    if manifest.get('format') != FORMAT:
        raise BackupStoreError('%s is not a db_backup backup (format %r).' % (path, manifest.get('format')))
    return manifest


def verify_files(path, manifest):
    """Problems found checking every file of the backup against the manifest (empty list = intact)."""
    problems = []
    listed = manifest.get('files') or {}
    for relpath, meta in sorted(listed.items()):
        full = os.path.join(path, relpath)
        if not os.path.isfile(full):
            problems.append('%s is missing' % relpath)
            continue
        if os.path.getsize(full) != meta.get('size'):
            problems.append('%s has %d bytes, the manifest says %s' % (relpath, os.path.getsize(full), meta.get('size')))
            continue
        if hash_file(full)[1] != meta.get('sha256'):
            problems.append('%s does not match its SHA-256 checksum' % relpath)
    for dirpath, dirnames, filenames in os.walk(path):
        for filename in filenames:
            rel = os.path.relpath(os.path.join(dirpath, filename), path)
            if rel not in listed and rel not in (MANIFEST, MANIFEST_SUM):
                problems.append('%s is not listed in the manifest' % rel)
    return problems


def inspect_backup(path, check_intact=True):
    """``{name, path, complete, intact, manifest, problems}`` for one directory in the store."""
    base = os.path.basename(path)
    partial = PARTIAL_RE.match(base)
    entry = dict(name=partial.group('name') if partial else base, path=path, complete=False, intact=False,
                 manifest=None, problems=[])
    if partial:
        alive = _pid_alive(int(partial.group('pid')))
        entry['problems'].append('incomplete: %s' % ('being written by process %s' % partial.group('pid') if alive
                                                     else 'left behind by a run that did not finish'))
        entry['in_progress'] = alive
        return entry
    try:
        manifest = read_manifest(path)
    except BackupStoreError as exc:
        entry['problems'].append(exc.message)
        return entry
    entry['manifest'] = manifest
    entry['complete'] = True
    if check_intact:
        entry['problems'] = verify_files(path, manifest)
        entry['intact'] = not entry['problems']
    else:
        entry['intact'] = None
    return entry


def list_backups(dest_dir, check_intact=True):
    """Every backup in ``dest_dir`` (complete or not), newest first."""
    if not os.path.isdir(dest_dir):
        return []
    entries = []
    for base in os.listdir(dest_dir):
        full = os.path.join(dest_dir, base)
        if not os.path.isdir(full) or os.path.islink(full) or DELETING_RE.match(base):
            continue
        if base.startswith('.') and not PARTIAL_RE.match(base):
            continue
        entry = inspect_backup(full, check_intact=check_intact)
        if not entry['complete'] and not PARTIAL_RE.match(base) and not os.path.exists(os.path.join(full, MANIFEST)):
            # an unrelated directory without manifest: still listed, as incomplete, so operators see it
            entry['problems'] = entry['problems'] or ['no manifest.json']
        entries.append(entry)
    entries.sort(key=_sort_key, reverse=True)
    return entries


def _sort_key(entry):
    manifest = entry.get('manifest') or {}
    started = manifest.get('started_at')
    if not started:
        try:
            started = iso(datetime.datetime.fromtimestamp(os.stat(entry['path']).st_mtime, datetime.timezone.utc))
        except OSError:
            started = ''
    return (started, entry['name'])


def select_backup(dest_dir, name=None, kinds=('backup',), check_intact=True):
    """The backup called ``name`` or the newest complete, intact one of ``kinds``.

    Raises :class:`BackupStoreError` when ``name`` is missing, incomplete or not intact.
    """
    if name:
        validate_name(name)
        path = os.path.join(dest_dir, name)
        if not os.path.isdir(path):
            partials = [e for e in list_backups(dest_dir, check_intact=False) if e['name'] == name and not e['complete']]
            if partials:
                raise BackupStoreError('Backup %r in %s is incomplete (%s); it cannot be used. Take a new backup.' % (
                    name, dest_dir, partials[0]['problems'][0]))
            raise BackupStoreError('No backup named %r in %s; run state=info to list the backups there.' % (name, dest_dir))
        entry = inspect_backup(path, check_intact=check_intact)
        if not entry['complete']:
            raise BackupStoreError('Backup %r is incomplete or corrupt (%s); nothing was changed. Choose another backup.' % (
                name, '; '.join(entry['problems'])))
        if check_intact and not entry['intact']:
            raise BackupStoreError('Backup %r failed its checksum verification (%s); nothing was changed. Choose another backup.' % (
                name, '; '.join(entry['problems'])))
        return entry
    for entry in list_backups(dest_dir, check_intact=check_intact):
        if entry['complete'] and (entry['intact'] or not check_intact) and entry['manifest'].get('kind', 'backup') in kinds:
            return entry
    raise BackupStoreError('No complete and intact backup in %s; take one with state=present (or name one explicitly).' % dest_dir)


def remove_backup(path):
    """Remove a backup: first renamed to a hidden name so a half-removed one never looks complete."""
    dest_dir, base = os.path.split(path.rstrip('/'))
    doomed = os.path.join(dest_dir, '.%s.deleting-%s' % (base.lstrip('.'), uuid.uuid4().hex[:12]))
    os.rename(path, doomed)
    shutil.rmtree(doomed)


def plan_retention(entries, keep):
    """Which complete backups to remove to keep the ``keep`` newest of each kind; plus dead partials."""
    doomed = []
    seen = {}
    for entry in entries:  # newest first
        if entry['complete']:
            kind = (entry['manifest'] or {}).get('kind', 'backup')
            seen[kind] = seen.get(kind, 0) + 1
            if seen[kind] > keep:
                doomed.append(entry)
        elif PARTIAL_RE.match(os.path.basename(entry['path'])) and not entry.get('in_progress'):
            doomed.append(entry)
    return doomed


def prune(dest_dir, keep, check_mode=False):
    """Apply retention; returns the list of removed (or, in check mode, to be removed) entries."""
    if keep is None or keep < 0:
        raise BackupStoreError('keep must be 0 or more.')
    doomed = plan_retention(list_backups(dest_dir, check_intact=False), keep)
    if not check_mode:
        for entry in doomed:
            remove_backup(entry['path'])
        for base in os.listdir(dest_dir):
            if DELETING_RE.match(base):
                shutil.rmtree(os.path.join(dest_dir, base), ignore_errors=True)
    return doomed


def restore_include_paths(backup_path, entries, check_mode=False):
    """Put copied files/directories back where they came from; returns what was (or would be) restored.

    Each path is rebuilt beside its destination and swapped in with a rename, so a reader sees
    either the old or the new content, never a mix.
    """
    restored = []
    for entry in entries or []:
        stored = os.path.join(backup_path, entry['stored'])
        target = entry['source']
        restored.append(dict(path=target, type=entry['type']))
        if check_mode:
            continue
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        tmp = os.path.join(parent, '.%s.restoring-%s' % (os.path.basename(target), uuid.uuid4().hex[:12]))
        if entry['type'] == 'directory':
            shutil.copytree(stored, tmp, symlinks=True)
        else:
            shutil.copy2(stored, tmp)
        old = None
        if os.path.lexists(target):
            if os.path.isdir(target) and not os.path.islink(target):
                old = os.path.join(parent, '.%s.replaced-%s' % (os.path.basename(target), uuid.uuid4().hex[:12]))
                os.rename(target, old)
            elif entry['type'] == 'directory':
                os.unlink(target)
        os.rename(tmp, target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        fsync_path(parent)
    return restored


def file_mode_ok(path):
    """True when a file is readable only by its owner (dumps hold data)."""
    return not (stat.S_IMODE(os.stat(path).st_mode) & 0o077)
