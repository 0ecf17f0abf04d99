# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Decide, from the live catalog, whether a migration that has no row has run.

For a migration M the whole local history is replayed on a :class:`SchemaModel` twice: once with
every applied migration and M in their places (what the database looks like if M ran), once
without M. The objects M changes are compared with the live catalog on exactly the components
in which the two replays differ, so:

- an object a later applied migration dropped is expected to be absent either way (and the
  later migration's ``DROP`` is itself evidence: without M it would have failed);
- ``CREATE OR REPLACE`` is judged by the definition it sets (a view's body as PostgreSQL renders
  it, a function's body), never by the object's existence;
- names are compared with each engine's rules (63-byte truncation and case folding in
  PostgreSQL, MySQL's case rules, SQLite's case-insensitivity), and ``IF [NOT] EXISTS`` on an
  object that was already there is recognised as a no-op.

Each statement of M then counts as ``seen`` (its effect is in the catalog), ``absent`` (the
catalog is as it was before it), ``unchanged`` (it sets what was already so), ``differs`` or
``unknown``. Only a migration whose every effective statement was ``seen`` can be marked
applied; only one whose every effective statement is ``absent`` can be applied.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.saferelease.core.plugins.module_utils.ddl_parser import parse_migration
from ansible_collections.saferelease.core.plugins.module_utils.schema_model import SchemaModel, contains_expr
from ansible_collections.saferelease.core.plugins.module_utils.sql_script import SqlScriptError

# Outcomes of comparing one component.
EQUAL, DIFFERENT, UNKNOWN = 'equal', 'different', 'unknown'


def compare_values(live, expected):
    """EQUAL / DIFFERENT / UNKNOWN: unequal normalised expressions prove nothing."""
    if live == expected:
        return EQUAL
    if contains_expr(live) or contains_expr(expected):
        return UNKNOWN
    return DIFFERENT


def distinguishing(first, second):
    """Component names in which two subject states differ (``exists`` when one of them is absent)."""
    if (first is None) != (second is None):
        return ['exists']
    if first is None:
        return []
    names = set(n for n in first if not n.startswith('_')) | set(n for n in second if not n.startswith('_'))
    return sorted(n for n in names if first.get(n) != second.get(n))


class History(object):
    """The local migrations in folder order, each parsed once, and replays of any subset of them."""

    def __init__(self, dialect, migrations):
        self.dialect = dialect
        self.migrations = migrations  # LocalMigration objects, in order
        self.index = dict((m.name, i) for i, m in enumerate(migrations))
        self._parsed = {}

    def parsed(self, name):
        """The parsed statements of ``name``; raises :class:`SqlScriptError` when the script cannot be split."""
        if name not in self._parsed:
            local = self.migrations[self.index[name]]
            try:
                self._parsed[name] = parse_migration(local.read_script(), self.dialect)
            except SqlScriptError as exc:
                self._parsed[name] = exc
        result = self._parsed[name]
        if isinstance(result, SqlScriptError):
            raise result
        return result

    def apply(self, model, name, track=False):
        """Apply migration ``name`` to ``model``; with ``track``, the keys each statement changed, in order."""
        changes = []
        for position, statement in enumerate(self.parsed(name)):
            model.ref = (name, position)
            model.changed = set() if track else None
            for one in statement.ops:
                one.apply(model)
            if track:
                changes.append(model.changed)
        model.changed = None
        return changes

    def replay(self, names, model=None):
        model = model or SchemaModel(self.dialect)
        for local in self.migrations:
            if local.name in names:
                self.apply(model, local.name)
        return model

    def touched(self, name, model):
        """Keys migration ``name`` changes when applied on ``model`` (left unchanged)."""
        scratch = model.copy()
        return set().union(*self.apply(scratch, name, track=True) or [set()])


class StatementReport(object):
    """What one statement of the migration under test did, as far as the catalog shows."""

    def __init__(self, parsed, status, objects=None, reason=None):
        self.parsed = parsed
        # seen, consistent, absent, unchanged, differs, partial, unknown, noop, superseded, neutral, data, opaque
        self.status = status
        self.objects = objects or []
        self.reason = reason

    def as_dict(self):
        return dict(line=self.parsed.line, statement=self.parsed.summary, kind=self.parsed.category, status=self.status,
                    reason=self.reason, objects=self.objects)


class ProbeReport(object):
    """The verdict on one migration: ``state`` (present, absent, partial, unprobeable, empty) and why.

    ``expected`` is the schema the history gives with the migration in its place (what running it
    now must also give, for ``apply`` to be right).
    """

    def __init__(self, migration, state, statements, reason=None, stopped_by=None):
        self.migration = migration
        self.state = state
        self.statements = statements
        self.reason = reason
        self.stopped_by = stopped_by  # the StatementReport that makes the migration undecidable
        self.expected = None

    def _labels(self, status):
        return [o['object'] for s in self.statements for o in s.objects if o['status'] == status]

    @property
    def present(self):
        return self._labels('seen')

    @property
    def absent(self):
        return self._labels('absent')

    @property
    def unprobeable(self):
        return ['line %d: %s (%s)' % (s.parsed.line, s.parsed.summary, s.reason or s.status)
                for s in self.statements if s.status in ('unknown', 'data', 'opaque')]

    def as_dict(self):
        return dict(present=self.present, absent=self.absent, unprobeable=self.unprobeable, reason=self.reason,
                    statements=[s.as_dict() for s in self.statements if s.status not in ('neutral', 'noop')],
                    stopped_by=self.stopped_by.as_dict() if self.stopped_by is not None else None)


class Prober(object):
    """Probes pending migrations of one history against one live catalog."""

    def __init__(self, history, catalog):
        self.history = history
        self.catalog = catalog
        self.dialect = history.dialect

    def probe(self, name, applied, pending_after=()):
        """The :class:`ProbeReport` for migration ``name``.

        ``applied``: names of the migrations whose effects the database holds (recorded or decided);
        ``pending_after``: later migrations that may or may not have run (their objects prove nothing).
        """
        history = self.history
        try:
            parsed = history.parsed(name)
            for other in applied:
                history.parsed(other)
        except SqlScriptError as exc:
            return ProbeReport(name, 'unprobeable', [], reason='its SQL cannot be read: %s' % exc.message)
        position = history.index[name]
        earlier = set(n for n in applied if history.index.get(n, -1) < position)
        later = [n for n in applied if history.index.get(n, -1) > position]
        before = history.replay(earlier)
        after = before.copy()
        changes = history.apply(after, name, track=True)
        with_model = history.replay(set(later), after.copy())
        without_model = history.replay(set(later), before.copy())
        # a later migration that could not have run without this one is evidence that this one ran
        required = self._only_in(without_model, with_model, name)
        masked_pending = set()
        for other in pending_after:
            if other in history.index:
                try:
                    masked_pending |= history.touched(other, with_model)
                except SqlScriptError:
                    return ProbeReport(name, 'unprobeable', [], reason='later pending migration %s cannot be read' % other)
        taint = self._opaque_names(name, applied, pending_after)
        reports = []
        for index, statement in enumerate(parsed):
            final = changes[index] - set().union(*changes[index + 1:]) if index + 1 < len(changes) else changes[index]
            reports.append(self._statement(statement, changes[index], final, before, after, with_model, without_model,
                                           required, masked_pending, taint))
        report = self._verdict(name, reports)
        report.expected = with_model
        return report

    @staticmethod
    def _only_in(model, other, name):
        """Violations of later migrations that happen in ``model`` but not in ``other``."""
        others = set(v.identity() for v in other.violations)
        return [v for v in model.violations if v.ref[0] != name and v.identity() not in others]

    def _opaque_names(self, name, applied, pending_after):
        """Names that statements the model cannot follow (DO blocks, unknown DDL) in other migrations mention."""
        names = {}
        for other in list(applied) + list(pending_after):
            if other == name or other not in self.history.index:
                continue
            for statement in self.history.parsed(other):
                if statement.category == 'opaque' or (statement.category == 'data' and statement.names):
                    for key in statement.names:
                        names.setdefault(key, (other, statement))
        return names

    # --- one statement --------------------------------------------------------------------------

    def _statement(self, statement, changed, final, before, after, with_model, without_model, required, masked_pending,
                   taint):
        if statement.category in ('neutral', 'data', 'opaque'):
            return StatementReport(statement, statement.category, reason=statement.reason)
        if not changed:
            return StatementReport(statement, 'noop', reason='nothing to do (IF [NOT] EXISTS)')
        if not final:
            return StatementReport(statement, 'superseded', reason='a later statement of the migration changes the same objects')
        objects = []
        for key in sorted(final, key=repr):
            objects.append(self._object(key, before, after, with_model, without_model, required, masked_pending, taint))
        statuses = set(o['status'] for o in objects)
        reason = None
        if statuses <= {'seen', 'unchanged', 'consistent'}:
            status = next(s for s in ('seen', 'consistent', 'unchanged') if s in statuses)
        elif statuses <= {'absent', 'unchanged'}:
            status = 'absent'
        elif 'unknown' in statuses:
            status = 'unknown'
            reason = '; '.join(sorted(set(o['reason'] for o in objects if o['status'] == 'unknown' and o.get('reason'))))
        elif 'differs' in statuses:
            status = 'differs'
        elif statuses <= {'absent', 'unchanged', 'consistent'}:
            status = 'unknown'
            masked = ', '.join(o['object'] for o in objects if o['status'] == 'consistent')
            reason = ('its changes are not in the database, but later migrations changed %s since: running it now would '
                      'not give the schema its history gives' % masked)
        else:
            status = 'partial'
        return StatementReport(statement, status, objects, reason)

    def _object(self, key, before, after, with_model, without_model, required, masked_pending, taint):
        label = after.labels.get(key) or before.labels.get(key) or with_model.labels.get(key) or repr(key)
        entry = dict(object=label, status=None)
        if key in masked_pending:
            entry.update(status='unknown', reason='a later pending migration changes %s too' % label)
            return entry
        tainted = [taint[name] for name in _subject_names(key, after.get(key) or before.get(key)) if name in taint]
        if tainted:
            other, statement = tainted[0]
            reason = '%s line %d (%s) may change %s in ways that cannot be followed' % (other, statement.line, statement.summary,
                                                                                        label)
            entry.update(status='unknown', reason=reason)
            return entry
        if not distinguishing(before.get(key), after.get(key)):
            # it sets what was already so: the object only has to be as the whole history leaves it
            entry['status'] = 'unchanged' if self._matches(key, with_model.get(key)) != DIFFERENT else 'differs'
            return entry
        with_state, without_state = with_model.get(key), without_model.get(key)
        components = distinguishing(with_state, without_state)
        if not components:
            # later migrations left this object the same whether or not this one ran
            evidence = [v for v in required if _concerns(v.key, key)]
            if evidence:
                entry.update(status='seen', via='%s would have failed without it (%s)' % (evidence[0].ref[0], evidence[0].describe()))
                return entry
            match = self._matches(key, with_state)
            if match == EQUAL:
                entry.update(status='consistent', via='as later migrations left it')
            elif match == DIFFERENT:
                entry.update(status='differs', expected=_render(with_state, distinguishing(with_state, {})),
                             live=_render(self.catalog.get(key), distinguishing(with_state, {})))
            else:
                entry.update(status='unknown', reason='the catalog cannot show whether %s is as later migrations left it' % label)
            return entry
        live = self.catalog.get(key)
        with_match = self._compare(key, live, with_state, components)
        without_match = self._compare(key, live, without_state, components)
        entry['expected'] = _render(with_state, components)
        entry['live'] = _render(live, components)
        if with_match == EQUAL and without_match != EQUAL:
            entry['status'] = 'seen'
        elif without_match == EQUAL and with_match != EQUAL:
            entry['status'] = 'absent'
        elif UNKNOWN in (with_match, without_match):
            reason = 'the catalog cannot show whether %s is as the migration sets it (%s)' % (label, ', '.join(components))
            entry.update(status='unknown', reason=reason)
        else:
            entry['status'] = 'differs'
        return entry

    def _matches(self, key, state):
        live = self.catalog.get(key)
        if (live is None) != (state is None):
            return DIFFERENT
        if state is None:
            return EQUAL
        return self._compare(key, live, state, distinguishing(state, {}))

    def _compare(self, key, live, state, components):
        if 'exists' in components or state is None or live is None:
            return EQUAL if (live is None) == (state is None) else DIFFERENT
        results = []
        for name in components:
            if key[0] == 'view' and name == 'definition' and self.dialect.engine == 'postgresql':
                results.append(self._compare_pg_view(live, state))
            elif name not in live:
                results.append(UNKNOWN)
            else:
                results.append(compare_values(live[name], state.get(name)))
        if DIFFERENT in results:
            return DIFFERENT
        return UNKNOWN if UNKNOWN in results else EQUAL

    def _compare_pg_view(self, live, state):
        rendered = self.catalog.compile_view(state.get('_body'))
        if rendered is None or live.get('_definition') is None:
            return UNKNOWN
        return EQUAL if rendered.strip() == live['_definition'].strip() else DIFFERENT

    # --- the verdict ------------------------------------------------------------------------------

    def would_fail(self, name, report):
        """Why running migration ``name`` now would be wrong: it would fail, or leave objects other than its history does."""
        return check_runs(self.history, self.catalog, name, report.expected)

    def _verdict(self, name, reports):
        effective = [r for r in reports if r.status not in ('neutral', 'noop', 'superseded', 'data', 'opaque')]
        opaque = [r for r in reports if r.status == 'opaque']
        data = [r for r in reports if r.status == 'data']
        if opaque:
            return ProbeReport(name, 'unprobeable', reports, reason='line %d cannot be modelled: %s'
                               % (opaque[0].parsed.line, opaque[0].reason), stopped_by=opaque[0])
        statuses = set(r.status for r in effective)
        if not effective:
            if data:
                return ProbeReport(name, 'unprobeable', reports, reason='it only changes rows, which no catalog shows',
                                   stopped_by=data[0])
            return ProbeReport(name, 'empty', reports, reason='nothing in it changes the schema')
        if statuses == {'unchanged'}:
            guarded = all(r.parsed.guarded for r in reports if r.parsed.category == 'ddl')
            if guarded and not data:
                return ProbeReport(name, 'empty', reports,
                                   reason='everything it creates already exists and its statements are guarded '
                                          '(IF NOT EXISTS / OR REPLACE), so running it changes nothing')
            return ProbeReport(name, 'unprobeable', reports, stopped_by=effective[0],
                               reason='it leaves no trace in the catalog: what it sets was already so')
        unknown = [r for r in effective if r.status == 'unknown']
        if unknown:
            return ProbeReport(name, 'unprobeable', reports, reason='line %d: %s' % (unknown[0].parsed.line, unknown[0].reason),
                               stopped_by=unknown[0])
        if statuses <= {'seen', 'unchanged', 'consistent'}:
            if data:
                return ProbeReport(name, 'unprobeable', reports, stopped_by=data[0],
                                   reason='its schema changes are in place, but line %d changes rows, which no catalog '
                                          'shows' % data[0].parsed.line)
            if 'seen' not in statuses:
                return ProbeReport(name, 'present', reports, reason='everything it changed is as the later migrations left '
                                                                    'it, and running it again would undo or repeat them')
            return ProbeReport(name, 'present', reports, reason='every change it makes is in the database')
        if 'absent' in statuses and 'consistent' in statuses:
            masked = [r for r in effective if r.status == 'consistent']
            return ProbeReport(name, 'unprobeable', reports, stopped_by=masked[0],
                               reason='its changes are not in the database, but later migrations changed what it changes '
                                      '(line %d): running it now would not give the schema its history gives'
                               % masked[0].parsed.line)
        if statuses <= {'absent', 'unchanged'}:
            first_effect = min(r.parsed.line for r in effective)
            early_data = [r for r in data if r.parsed.line < first_effect]
            if early_data:
                return ProbeReport(name, 'unprobeable', reports, stopped_by=early_data[0],
                                   reason='none of its schema changes are in place, but line %d changes rows before '
                                          'them and may have run' % early_data[0].parsed.line)
            return ProbeReport(name, 'absent', reports, reason='none of its changes are in the database')
        return ProbeReport(name, 'partial', reports, reason='some of its changes are in the database and some are not')


def _concerns(violation_key, key):
    """Whether a failed requirement on ``violation_key`` is about ``key`` (the object itself or its table)."""
    if violation_key == key:
        return True
    return violation_key[0] == 'table' and key[0] != 'table' and len(key) > 1 and key[1] == violation_key[1]


def _subject_names(key, state):
    """The names that identify a subject's object: its table for columns and constraints, else its own name."""
    kind = key[0]
    if kind in ('column', 'constraint', 'fk', 'policy'):
        return [key[1]]
    if kind in ('index', 'trigger'):
        return [key[2]] + ([state['table']] if state and state.get('table') else [])
    return [key[1]]


def _render(state, components):
    if state is None:
        return None
    if 'exists' in components:
        return 'exists'
    return dict((c, _plain(state.get(c))) for c in components)


def _plain(value):
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_plain(v) for v in (sorted(value, key=repr) if isinstance(value, (frozenset, set)) else value)]
    return value


def check_runs(history, catalog, name, expected):
    """What running migration ``name`` now, on the live schema, would do wrong, as sentences (empty when nothing).

    It would fail (it creates what exists, changes what does not), or it would leave objects
    other than the history with it in place (``expected``) has them: a table rebuild written
    before later migrations changed that table would undo them.
    """
    model = SchemaModel(history.dialect)
    model.objects = dict((k, dict(v)) for k, v in catalog.objects.items())
    touched = set().union(*history.apply(model, name, track=True) or [set()])
    problems = ['%s (%s)' % (v.describe(), 'it would fail') for v in model.violations if v.ref[0] == name]
    for key in sorted(touched, key=repr):
        now, then = model.get(key), expected.get(key) if expected is not None else None
        label = model.labels.get(key) or expected.labels.get(key) or repr(key)
        if (now is None) != (then is None):
            problems.append('%s would %s, unlike in its history' % (label, 'be left out' if now is None else 'come back'))
        elif now is not None:
            changed = [c for c in distinguishing(now, then) if c in now and c in then
                       and compare_values(now[c], then[c]) == DIFFERENT]
            if changed:
                problems.append('%s would get another %s than its history gives' % (label, ', '.join(changed)))
    return problems
