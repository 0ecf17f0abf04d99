# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A schema as a dictionary of subjects, changed by the operations a migration's statements perform.

A subject is one catalog object under a key: ``('table', t)``, ``('column', t, c)``,
``('index', scope, i)`` (scope: the table on MySQL, ``''`` where index names are schema-wide),
``('constraint', t, n)``, ``('fk', t, columns)`` (SQLite's unnamed foreign keys),
``('type', n)``, ``('view', n)``, ``('function', n, signature)``, ``('trigger', scope, n)``,
``('sequence', n)``, ``('extension', n)``, ``('schema', n)``, ``('policy', t, n)``. Names in keys
are the engine's comparison keys (see :mod:`sql_dialect`). Each present subject maps to a dict of
components (``type``, ``nullable``, ``default``, ``columns``, ...); components whose name starts
with ``_`` are bookkeeping and never compared.

Operations follow each engine's rules for what else changes (dropping a table drops its columns,
indexes and triggers; renaming a column renames it in indexes and foreign keys; MySQL creates an
index for a foreign key; a PostgreSQL primary key or unique constraint is also an index) and
record a :class:`Violation` when the statement would fail on this schema (creating what exists,
dropping or altering what does not).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class Expr(tuple):
    """A normalised expression: equal ones prove equality, unequal ones prove nothing."""


def contains_expr(value):
    if isinstance(value, Expr):
        return True
    if isinstance(value, (tuple, list, frozenset)):
        return any(contains_expr(v) for v in value)
    return False


class Violation(object):
    """A statement that would fail on the schema: ``need`` is ``present`` or ``absent`` for ``key``."""

    def __init__(self, ref, key, need, label):
        self.ref = ref
        self.key = key
        self.need = need
        self.label = label

    def identity(self):
        return (self.ref, self.key, self.need)

    def describe(self):
        return '%s %s' % (self.label, 'does not exist' if self.need == 'present' else 'already exists')

    def __repr__(self):
        return 'Violation(%r, %s)' % (self.ref, self.describe())


class ColumnDef(object):
    """A column as a statement defines it (display name plus components)."""

    def __init__(self, name, type=None, nullable=True, default=None, identity=None, generated=None, collation=None,
                 comment=None, serial=False, autoincrement=False, primary=False, unique=False, references=None,
                 check=None, constraint_names=None):
        self.name = name
        self.type = type
        self.nullable = nullable
        self.default = default
        self.identity = identity
        self.generated = generated
        self.collation = collation
        self.comment = comment
        self.serial = serial
        self.autoincrement = autoincrement
        self.primary = primary
        self.unique = unique
        self.references = references  # ConstraintDef of kind 'f' without columns, or None
        self.check = check
        self.constraint_names = constraint_names or {}  # kind -> explicit CONSTRAINT name

    def components(self):
        return dict(type=self.type, nullable=self.nullable, default=self.default, identity=self.identity,
                    generated=self.generated, collation=self.collation, comment=self.comment, _name=self.name)


class ConstraintDef(object):
    """A table constraint: ``kind`` p (primary key), u (unique), f (foreign key), c (check), x (exclusion)."""

    def __init__(self, kind, name=None, columns=(), ref_table=None, ref_columns=(), on_delete=None, on_update=None,
                 check=None, index_name=None, method=None):
        self.kind = kind
        self.name = name
        self.columns = tuple(columns)
        self.ref_table = ref_table
        self.ref_columns = tuple(ref_columns)
        self.on_delete = on_delete
        self.on_update = on_update
        self.check = check
        self.index_name = index_name
        self.method = method


class IndexColumn(object):
    """One element of an index: a column name or an expression, and its sort order."""

    def __init__(self, column=None, expression=None, descending=False, length=None, opclass=None):
        self.column = column
        self.expression = expression
        self.descending = descending
        self.length = length
        self.opclass = opclass


FK_DEFAULT_ACTION = {'postgresql': 'NO ACTION', 'mysql': 'RESTRICT', 'sqlite': 'NO ACTION'}


class SchemaModel(object):
    """The subjects of one schema and the operations that change them."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.engine = dialect.engine
        self.objects = {}
        self.labels = {}
        self.violations = []
        self.ref = None
        self.changed = None  # keys touched while ``track`` is on

    # --- bookkeeping ----------------------------------------------------------------------

    def copy(self):
        other = SchemaModel(self.dialect)
        other.objects = dict((k, dict(v)) for k, v in self.objects.items())
        other.labels = dict(self.labels)
        other.violations = list(self.violations)
        return other

    def k(self, kind, name):
        return self.dialect.key(name, kind)

    def get(self, key):
        return self.objects.get(key)

    def has(self, key):
        return key in self.objects

    def _set(self, key, components, label):
        self.objects[key] = components
        self.labels[key] = label
        self._touch(key)

    def _remove(self, key):
        if key in self.objects:
            del self.objects[key]
            self._touch(key)

    def _touch(self, key):
        if self.changed is not None:
            self.changed.add(key)

    def _violate(self, key, need, label):
        self.violations.append(Violation(self.ref, key, need, label))

    def _require(self, key, label):
        if key not in self.objects:
            self._violate(key, 'present', label)
            return False
        return True

    def _require_absent(self, key, label):
        if key in self.objects:
            self._violate(key, 'absent', label)
            return False
        return True

    def keys_of_table(self, table_key):
        """Every key that belongs to a table: its columns, indexes, constraints, foreign keys, triggers, policies."""
        found = []
        for key, comps in self.objects.items():
            kind = key[0]
            if kind in ('column', 'constraint', 'fk', 'policy') and key[1] == table_key:
                found.append(key)
            elif kind in ('index', 'trigger') and comps.get('table') == table_key:
                found.append(key)
        return found

    # --- labels -----------------------------------------------------------------------------

    @staticmethod
    def table_label(name):
        return 'table %s' % name

    @staticmethod
    def column_label(table, column):
        return 'column %s.%s' % (table, column)

    # --- tables -------------------------------------------------------------------------------

    def table_key(self, name):
        return ('table', self.k('table', name))

    def create_table(self, name, columns, constraints, if_not_exists=False, temporary=False):
        key = self.table_key(name)
        if temporary:
            return
        if key in self.objects:
            if not if_not_exists:
                self._violate(key, 'absent', self.table_label(name))
            return
        t = key[1]
        comps = dict(rls=False, comment=None, _name=name)
        if self.engine == 'sqlite':
            comps.update(pk=(), uniques=frozenset(), checks=frozenset(), autoincrement=False)
        self._set(key, comps, self.table_label(name))
        table_constraints = list(constraints)
        for column in columns:
            self._put_column(name, t, column)
            table_constraints.extend(self._column_constraints(column))
        for constraint in table_constraints:
            self._add_constraint(name, t, constraint, creating=True)
        if self.engine == 'sqlite' and any(c.autoincrement for c in columns):
            self.objects[key]['autoincrement'] = True
        for column in columns:
            if column.serial:
                self._create_serial_sequence(name, t, column.name)

    def _column_constraints(self, column):
        found = []
        names = column.constraint_names
        if column.primary:
            found.append(ConstraintDef('p', names.get('p'), [column.name]))
        if column.unique:
            found.append(ConstraintDef('u', names.get('u'), [column.name]))
        if column.references is not None:
            ref = column.references
            found.append(ConstraintDef('f', names.get('f'), [column.name], ref.ref_table, ref.ref_columns, ref.on_delete,
                                       ref.on_update))
        if column.check is not None:
            found.append(ConstraintDef('c', names.get('c'), [column.name], check=column.check))
        return found

    def _put_column(self, table, t, column):
        key = ('column', t, self.k('column', column.name))
        comps = column.components()
        if comps['nullable'] is None:
            comps['nullable'] = True
        if column.serial:
            comps['nullable'] = False
            comps['default'] = ('nextval', self._serial_sequence_name(table, column.name))
        if self.engine == 'mysql' and column.autoincrement:
            comps['default'] = ('auto_increment', None)
        self._set(key, comps, self.column_label(table, column.name))

    def drop_table(self, name, if_exists=False, cascade=False):
        key = self.table_key(name)
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', self.table_label(name))
            return
        t = key[1]
        for other in self.keys_of_table(t):
            self._remove(other)
        for seq_key, comps in list(self.objects.items()):
            if seq_key[0] == 'sequence' and comps.get('owned_by') and comps['owned_by'][0] == t:
                self._remove(seq_key)
        if self.engine != 'sqlite':
            # foreign keys of other tables that point here: PostgreSQL drops them with CASCADE, refuses otherwise
            for fk_key, comps in list(self.objects.items()):
                if fk_key[0] == 'constraint' and comps.get('kind') == 'f' and comps.get('ref_table') == t:
                    if not cascade and self.engine == 'postgresql':
                        self._violate(fk_key, 'absent', 'foreign key %s referencing %s' % (fk_key[2], name))
                    self._remove(fk_key)
        self._remove(key)

    def rename_table(self, old, new):
        old_key, new_key = self.table_key(old), self.table_key(new)
        if not self._require(old_key, self.table_label(old)) or not self._require_absent(new_key, self.table_label(new)):
            return
        if self.engine == 'sqlite':
            self._check_sqlite_views()
        o, n = old_key[1], new_key[1]
        comps = self.objects[old_key]
        comps['_name'] = new
        self._remove(old_key)
        self._set(new_key, comps, self.table_label(new))
        for key in self.keys_of_table(o):
            comps = self.objects[key]
            self._remove(key)
            if key[0] in ('column', 'constraint', 'fk', 'policy'):
                new_key_for = (key[0], n) + key[2:]
            elif key[0] == 'index' and self.engine == 'mysql':
                new_key_for = ('index', n, key[2])
            else:
                new_key_for = key
            if 'table' in comps:
                comps['table'] = n
            label = self.labels.get(key, '')
            for before, after in ((' %s.' % old, ' %s.' % new), (' on %s' % old, ' on %s' % new), (' %s(' % old, ' %s(' % new)):
                label = label.replace(before, after)
            self._set(new_key_for, comps, label)
        for key, comps in self.objects.items():
            if comps.get('ref_table') == o:
                comps['ref_table'] = n
                self._touch(key)
            if comps.get('owned_by') and comps['owned_by'][0] == o:
                comps['owned_by'] = (n, comps['owned_by'][1])
                self._touch(key)

    def require_columns(self, table, columns):
        """No change: the statement reads these columns (a table rebuild's row copy), so they must exist."""
        t = self.k('table', table)
        for column in columns:
            self._require(('column', t, self.k('column', column)), self.column_label(table, column))

    def _check_sqlite_views(self):
        """SQLite re-reads every view when a table is renamed and fails if one names a table that does not exist."""
        for key, comps in self.objects.items():
            if key[0] != 'view':
                continue
            for table in _referenced_tables(comps.get('definition')):
                if ('table', table) not in self.objects and ('view', table) not in self.objects:
                    self._violate(('table', table), 'present', 'table %s used by view %s' % (table, key[1]))

    def set_table(self, name, **changes):
        key = self.table_key(name)
        if self._require(key, self.table_label(name)):
            self.objects[key].update(changes)
            self._touch(key)

    # --- columns ------------------------------------------------------------------------------

    def column_key(self, table, column):
        return ('column', self.k('table', table), self.k('column', column))

    def add_column(self, table, column, if_not_exists=False):
        t_key = self.table_key(table)
        if not self._require(t_key, self.table_label(table)):
            self._set(t_key, dict(rls=False, comment=None, _name=table), self.table_label(table))
        key = self.column_key(table, column.name)
        if key in self.objects:
            if not if_not_exists:
                self._violate(key, 'absent', self.column_label(table, column.name))
            return
        self._put_column(table, t_key[1], column)
        for constraint in self._column_constraints(column):
            self._add_constraint(table, t_key[1], constraint)
        if column.serial:
            self._create_serial_sequence(table, t_key[1], column.name)

    def drop_column(self, table, column, if_exists=False):
        key = self.column_key(table, column)
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', self.column_label(table, column))
            return
        t, c = key[1], key[2]
        for other, comps in list(self.objects.items()):
            if other[0] == 'index' and comps.get('table') == t and any(col == c for col, _d in comps['columns']):
                if self.engine == 'mysql':
                    remaining = tuple((col, d) for col, d in comps['columns'] if col != c)
                    if remaining:
                        comps['columns'] = remaining
                        self._touch(other)
                        continue
                self._remove(other)
            elif other[0] == 'constraint' and other[1] == t and c in comps.get('columns', ()):
                self._remove(other)
            elif other[0] == 'fk' and other[1] == t and c in other[2]:
                self._remove(other)
            elif other[0] == 'sequence' and comps.get('owned_by') == (t, c):
                self._remove(other)
        if self.engine == 'sqlite':
            table_comps = self.objects.get(('table', t))
            if table_comps is not None and c in table_comps.get('pk', ()):
                self._violate(key, 'absent', 'primary key column ' + self.column_label(table, column))
        self._remove(key)

    def rename_column(self, table, old, new):
        old_key, new_key = self.column_key(table, old), self.column_key(table, new)
        if not self._require(old_key, self.column_label(table, old)) or \
                not self._require_absent(new_key, self.column_label(table, new)):
            return
        t, o, n = old_key[1], old_key[2], new_key[2]
        comps = self.objects[old_key]
        comps['_name'] = new
        self._remove(old_key)
        self._set(new_key, comps, self.column_label(table, new))
        for key, other in self.objects.items():
            touched = False
            if key[0] == 'index' and other.get('table') == t:
                other['columns'] = tuple((n if col == o else col, d) for col, d in other['columns'])
                touched = True
            if key[0] == 'constraint' and key[1] == t and o in other.get('columns', ()):
                other['columns'] = tuple(n if col == o else col for col in other['columns'])
                touched = True
            if other.get('ref_table') == t and o in other.get('ref_columns', ()):
                other['ref_columns'] = tuple(n if col == o else col for col in other['ref_columns'])
                touched = True
            if other.get('owned_by') == (t, o):
                other['owned_by'] = (t, n)
                touched = True
            if key[0] == 'table' and key[1] == t and self.engine == 'sqlite':
                other['pk'] = tuple(n if col == o else col for col in other.get('pk', ()))
                other['uniques'] = frozenset(tuple(n if col == o else col for col in u) for u in other.get('uniques', ()))
                touched = True
            if touched:
                self._touch(key)
        for key in [k for k in self.objects if k[0] == 'fk' and k[1] == t and o in k[2]]:
            comps = self.objects[key]
            self._remove(key)
            self._set(('fk', t, tuple(n if col == o else col for col in key[2])), comps, self.labels.get(key, ''))

    def alter_column(self, table, column, **changes):
        """Change components of a column (type, nullable, default, identity, generated, collation, comment)."""
        key = self.column_key(table, column)
        if not self._require(key, self.column_label(table, column)):
            return
        self.objects[key].update(changes)
        self._touch(key)

    def redefine_column(self, table, old, column):
        """MySQL MODIFY / CHANGE: the column gets the new definition (and name) entirely."""
        old_key = self.column_key(table, old)
        if not self._require(old_key, self.column_label(table, old)):
            return
        if self.k('column', old) != self.k('column', column.name):
            self.rename_column(table, old, column.name)
        key = self.column_key(table, column.name)
        t = key[1]
        comps = column.components()
        if comps['nullable'] is None:
            comps['nullable'] = True
        if column.autoincrement:
            comps['default'] = ('auto_increment', None)
        if self._is_primary_column(t, key[2]):
            comps['nullable'] = False
        self.objects[key] = comps
        self._touch(key)
        for constraint in self._column_constraints(column):
            self._add_constraint(table, t, constraint)

    def _is_primary_column(self, t, c):
        for key, comps in self.objects.items():
            if key[0] == 'index' and comps.get('table') == t and comps.get('_primary') \
                    and any(col == c for col, _d in comps['columns']):
                return True
        return False

    # --- indexes -------------------------------------------------------------------------------

    def index_key(self, name, table=None):
        scope = self.k('table', table) if self.engine == 'mysql' and table is not None else ''
        return ('index', scope, self.k('index', name))

    def find_index(self, name, table=None):
        """The key of index ``name`` (MySQL needs the table; PostgreSQL and SQLite do not)."""
        key = self.index_key(name, table)
        if key in self.objects or self.engine != 'mysql' or table is not None:
            return key
        matches = [k for k in self.objects if k[0] == 'index' and k[2] == key[2]]
        return matches[0] if len(matches) == 1 else key

    def create_index(self, name, table, columns, unique=False, method=None, predicate=None, if_not_exists=False,
                     primary=False, constraint=False, auto=False, label=None):
        if not isinstance(name, str):
            name = name.resolve(self)  # the name the engine picks for an unnamed index
        t_key = self.table_key(table)
        t = t_key[1]
        self._require(t_key, self.table_label(table))
        key = self.index_key(name, table)
        if key in self.objects:
            if not if_not_exists:
                self._violate(key, 'absent', 'index %s' % name)
            return
        elements = []
        for element in columns:
            if element.column is not None:
                col = self.k('column', element.column)
                self._require(('column', t, col), self.column_label(table, element.column))
                elements.append((col, bool(element.descending)) if element.length is None
                                else ((col, element.length), bool(element.descending)))
            else:
                elements.append((element.expression, bool(element.descending)))
        if self.engine == 'mysql':
            self._drop_covered_auto_indexes(t, [e[0] for e in elements])
        opclasses = tuple(e.opclass for e in columns) if any(e.opclass for e in columns) else None
        comps = dict(table=t, unique=bool(unique or primary), method=(method or 'btree').lower(), columns=tuple(elements),
                     predicate=predicate, opclasses=opclasses, _name=name, _primary=primary, _constraint=constraint,
                     _auto=auto)
        self._set(key, comps, label or 'index %s on %s' % (name, table))

    def _drop_covered_auto_indexes(self, t, new_columns):
        for key, comps in list(self.objects.items()):
            if key[0] == 'index' and comps.get('_auto') and comps['table'] == t:
                cols = [c for c, _d in comps['columns']]
                if cols == new_columns[:len(cols)]:
                    self._remove(key)

    def drop_index(self, name, table=None, if_exists=False):
        key = self.find_index(name, table)
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', 'index %s' % name)
            return
        comps = self.objects[key]
        if comps.get('_constraint') and self.engine == 'postgresql':
            # PostgreSQL refuses: the index belongs to a constraint
            self._violate(key, 'absent', 'index %s of a constraint' % name)
        self._remove(key)

    def rename_index(self, old, new, table=None):
        old_key = self.find_index(old, table)
        new_key = self.index_key(new, table) if self.engine == 'mysql' else self.index_key(new)
        if self.engine == 'mysql' and table is None:
            new_key = ('index', old_key[1], new_key[2])
        if not self._require(old_key, 'index %s' % old) or not self._require_absent(new_key, 'index %s' % new):
            return
        comps = self.objects[old_key]
        comps['_name'] = new
        self._remove(old_key)
        self._set(new_key, comps, (self.labels.get(old_key) or '').replace('index %s' % old, 'index %s' % new, 1))
        if self.engine == 'postgresql' and comps.get('_constraint'):
            # ALTER INDEX renames the constraint that owns the index too
            con_key = ('constraint', comps['table'], old_key[2])
            if con_key in self.objects:
                con = self.objects[con_key]
                self._remove(con_key)
                self._set(('constraint', comps['table'], new_key[2]), con, 'constraint %s' % new)

    # --- constraints ---------------------------------------------------------------------------

    def constraint_key(self, table, name):
        return ('constraint', self.k('table', table), self.k('constraint', name))

    def add_constraint(self, table, constraint):
        t_key = self.table_key(table)
        self._require(t_key, self.table_label(table))
        self._add_constraint(table, t_key[1], constraint)

    def _action(self, action):
        return (action or FK_DEFAULT_ACTION[self.engine]).upper() if not (self.engine == 'mysql' and action and
                                                                          action.upper() == 'NO ACTION') else 'RESTRICT'

    def _add_constraint(self, table, t, constraint, creating=False):
        kind = constraint.kind
        columns = tuple(self.k('column', c) for c in constraint.columns)
        for display, col in zip(constraint.columns, columns):
            self._require(('column', t, col), self.column_label(table, display))
        if self.engine == 'sqlite':
            self._add_sqlite_constraint(table, t, constraint, columns)
            return
        name = constraint.name or self._default_constraint_name(table, t, constraint)
        if kind in ('p', 'u') and self.engine == 'mysql':
            index_name = 'PRIMARY' if kind == 'p' else (constraint.index_name or name)
            self.create_index(index_name, table, [IndexColumn(c) for c in constraint.columns], unique=True,
                              primary=kind == 'p', constraint=True, method=constraint.method)
            if kind == 'p':
                for col in columns:
                    if ('column', t, col) in self.objects:
                        self.objects[('column', t, col)]['nullable'] = False
            return
        key = ('constraint', t, self.k('constraint', name))
        if not self._require_absent(key, 'constraint %s on %s' % (name, table)):
            return
        comps = dict(kind=kind, columns=columns, ref_table=None, ref_columns=(), on_delete=None, on_update=None, check=None,
                     _name=name)
        if kind == 'f':
            ref_t = self.k('table', constraint.ref_table)
            comps.update(ref_table=ref_t, ref_columns=tuple(self.k('column', c) for c in constraint.ref_columns),
                         on_delete=self._action(constraint.on_delete), on_update=self._action(constraint.on_update))
            if ref_t != t or not creating:
                self._require(('table', ref_t), self.table_label(constraint.ref_table))
        elif kind == 'c':
            comps['check'] = constraint.check
        self._set(key, comps, 'constraint %s on %s' % (name, table))
        if kind in ('p', 'u', 'x'):
            # a PostgreSQL primary key or unique constraint is an index of the same name
            self.create_index(name, table, [IndexColumn(c) for c in constraint.columns], unique=kind != 'x',
                              primary=kind == 'p', constraint=True, method=constraint.method)
            if kind == 'p':
                for col in columns:
                    if ('column', t, col) in self.objects:
                        self.objects[('column', t, col)]['nullable'] = False
        if kind == 'f' and self.engine == 'mysql' and not self._has_covering_index(t, columns):
            # InnoDB creates an index for a foreign key that has none, named after the constraint
            self.create_index(name, table, [IndexColumn(c) for c in constraint.columns], auto=True)

    def _has_covering_index(self, t, columns):
        for key, comps in self.objects.items():
            if key[0] == 'index' and comps.get('table') == t:
                cols = tuple(c for c, _d in comps['columns'])
                if cols[:len(columns)] == tuple(columns):
                    return True
        return False

    def _add_sqlite_constraint(self, table, t, constraint, columns):
        t_comps = self.objects.get(('table', t))
        if t_comps is None:
            return
        if constraint.kind == 'p':
            t_comps['pk'] = columns
        elif constraint.kind == 'u':
            t_comps['uniques'] = frozenset(set(t_comps.get('uniques', ())) | {columns})
        elif constraint.kind == 'c':
            t_comps['checks'] = frozenset(set(t_comps.get('checks', ())) | {constraint.check})
        elif constraint.kind == 'f':
            key = ('fk', t, columns)
            self._set(key, dict(ref_table=self.k('table', constraint.ref_table),
                                ref_columns=tuple(self.k('column', c) for c in constraint.ref_columns),
                                on_delete=self._action(constraint.on_delete), on_update=self._action(constraint.on_update)),
                      'foreign key %s(%s)' % (table, ', '.join(constraint.columns)))
        self._touch(('table', t))

    def _default_constraint_name(self, table, t, constraint):
        if self.engine == 'postgresql':
            label = {'p': 'pkey', 'u': 'key', 'f': 'fkey', 'c': 'check', 'x': 'excl'}[constraint.kind]
            addition = None if constraint.kind == 'p' else '_'.join(constraint.columns) or None
            return self.choose_relation_name(table, addition, label, constraint.kind in ('p', 'u', 'x'))
        if constraint.kind == 'f':
            number = 1 + len([k for k in self.objects if k[0] == 'constraint' and k[1] == t
                              and self.objects[k].get('kind') == 'f' and k[2].startswith(self.k('constraint', table + '_ibfk_'))])
            return '%s_ibfk_%d' % (table, number)
        if constraint.kind == 'c':
            return constraint.columns[0] if constraint.columns else 'CONSTRAINT_1'
        return self.unused_mysql_index_name(t, constraint.columns[0] if constraint.columns else 'idx')

    def unused_mysql_index_name(self, t, base):
        name, number = base, 2
        while ('index', t, self.k('index', name)) in self.objects:
            name = '%s_%d' % (base, number)
            number += 1
        return name

    def choose_relation_name(self, name1, name2, label, relation=True):
        """PostgreSQL's ChooseRelationName/makeObjectName: ``name1_name2_label`` cut to fit 63 bytes, numbered if taken."""
        number = 0
        while True:
            candidate = _make_object_name(name1, name2, label + (str(number) if number else ''))
            key = self.k('index', candidate)
            taken = any(k[0] in ('table', 'view', 'sequence', 'index') and k[-1] == key for k in self.objects) \
                if relation else False
            if not taken:
                return candidate
            number += 1

    def drop_constraint(self, table, name, if_exists=False, kind=None):
        """DROP CONSTRAINT / MySQL DROP FOREIGN KEY, DROP CHECK, DROP PRIMARY KEY (``kind`` p)."""
        if self.engine == 'mysql' and kind == 'p':
            return self.drop_index('PRIMARY', table, if_exists)
        key = self.constraint_key(table, name)
        if key not in self.objects:
            if self.engine == 'mysql' and kind is None and self.index_key(name, table) in self.objects:
                # MySQL 8 / MariaDB: DROP CONSTRAINT also drops a unique key
                return self.drop_index(name, table, if_exists)
            if not if_exists:
                self._violate(key, 'present', 'constraint %s on %s' % (name, table))
            return
        comps = self.objects[key]
        self._remove(key)
        if comps.get('kind') in ('p', 'u', 'x') and self.engine == 'postgresql':
            self._remove(self.index_key(name))

    def rename_constraint(self, table, old, new):
        old_key, new_key = self.constraint_key(table, old), self.constraint_key(table, new)
        if not self._require(old_key, 'constraint %s on %s' % (old, table)) or \
                not self._require_absent(new_key, 'constraint %s on %s' % (new, table)):
            return
        comps = self.objects[old_key]
        comps['_name'] = new
        self._remove(old_key)
        self._set(new_key, comps, 'constraint %s on %s' % (new, table))
        if comps.get('kind') in ('p', 'u', 'x') and self.engine == 'postgresql':
            index_key = self.index_key(old)
            if index_key in self.objects:
                index = self.objects[index_key]
                self._remove(index_key)
                self._set(self.index_key(new), index, 'index %s on %s' % (new, table))

    # --- types ----------------------------------------------------------------------------------

    def type_key(self, name):
        return ('type', self.k('type', name))

    def create_type(self, name, kind, values=(), if_not_exists=False):
        key = self.type_key(name)
        if key in self.objects:
            if not if_not_exists:
                self._violate(key, 'absent', 'type %s' % name)
            return
        self._set(key, dict(kind=kind, values=tuple(values) if kind == 'e' else None, _name=name), 'type %s' % name)

    def add_enum_value(self, name, value, before=None, after=None, if_not_exists=False):
        key = self.type_key(name)
        if not self._require(key, 'type %s' % name):
            return
        comps = self.objects[key]
        values = list(comps.get('values') or ())
        if value in values:
            if not if_not_exists:
                self._violate(key + (value,), 'absent', "value '%s' of enum %s" % (value, name))
            return
        if before is not None and before in values:
            values.insert(values.index(before), value)
        elif after is not None and after in values:
            values.insert(values.index(after) + 1, value)
        else:
            values.append(value)
        comps['values'] = tuple(values)
        self._touch(key)

    def rename_enum_value(self, name, old, new):
        key = self.type_key(name)
        if not self._require(key, 'type %s' % name):
            return
        comps = self.objects[key]
        values = list(comps.get('values') or ())
        if old not in values:
            self._violate(key + (old,), 'present', "value '%s' of enum %s" % (old, name))
            return
        values[values.index(old)] = new
        comps['values'] = tuple(values)
        self._touch(key)

    def rename_type(self, old, new):
        old_key, new_key = self.type_key(old), self.type_key(new)
        if not self._require(old_key, 'type %s' % old) or not self._require_absent(new_key, 'type %s' % new):
            return
        comps = self.objects[old_key]
        comps['_name'] = new
        self._remove(old_key)
        self._set(new_key, comps, 'type %s' % new)
        old_type, new_type = '"%s"' % old_key[1], '"%s"' % new_key[1]
        for key, other in self.objects.items():
            if key[0] == 'column' and other.get('type') in (old_type, old_type + '[]'):
                other['type'] = other['type'].replace(old_type, new_type, 1)
                self._touch(key)

    def drop_type(self, name, if_exists=False):
        key = self.type_key(name)
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', 'type %s' % name)
            return
        self._remove(key)

    # --- views, functions, triggers, sequences, extensions, schemas, policies ----------------------

    def create_view(self, name, definition, columns=None, body=None, or_replace=False, materialized=False,
                    if_not_exists=False):
        key = ('view', self.k('view', name))
        if key in self.objects and not or_replace:
            if not if_not_exists:
                self._violate(key, 'absent', 'view %s' % name)
            return
        self._set(key, dict(materialized=materialized, definition=definition, columns=columns, _body=body, _name=name),
                  '%sview %s' % ('materialized ' if materialized else '', name))

    def drop_view(self, name, if_exists=False):
        key = ('view', self.k('view', name))
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', 'view %s' % name)
            return
        self._remove(key)

    def rename_view(self, old, new):
        old_key, new_key = ('view', self.k('view', old)), ('view', self.k('view', new))
        if self._require(old_key, 'view %s' % old) and self._require_absent(new_key, 'view %s' % new):
            comps = self.objects[old_key]
            self._remove(old_key)
            self._set(new_key, comps, 'view %s' % new)

    def function_key(self, name, signature):
        return ('function', self.k('function', name), signature)

    def create_function(self, name, signature, body, kind='f', or_replace=False):
        key = self.function_key(name, signature)
        if key in self.objects and not or_replace:
            self._violate(key, 'absent', 'function %s' % name)
            return
        self._set(key, dict(kind=kind, body=body, _name=name), '%s %s' % ('procedure' if kind == 'p' else 'function', name))

    def drop_function(self, name, signature=None, if_exists=False):
        base = self.k('function', name)
        keys = [k for k in self.objects if k[0] == 'function' and k[1] == base and (signature is None or k[2] == signature)]
        if not keys:
            if not if_exists:
                self._violate(('function', base, signature), 'present', 'function %s' % name)
            return
        for key in keys:
            self._remove(key)

    def trigger_key(self, name, table):
        scope = self.k('table', table) if self.engine == 'postgresql' else ''
        return ('trigger', scope, self.k('trigger', name))

    def create_trigger(self, name, table, components, or_replace=False):
        key = self.trigger_key(name, table)
        t = self.k('table', table)
        self._require(('table', t), self.table_label(table))
        if key in self.objects and not or_replace:
            self._violate(key, 'absent', 'trigger %s' % name)
            return
        comps = dict(components, table=t, _name=name)
        self._set(key, comps, 'trigger %s on %s' % (name, table))

    def drop_trigger(self, name, table=None, if_exists=False):
        key = self.trigger_key(name, table) if table is not None or self.engine != 'postgresql' else None
        if key is None or key not in self.objects:
            matches = [k for k in self.objects if k[0] == 'trigger' and k[2] == self.k('trigger', name)]
            key = matches[0] if matches else key
        if key is None or key not in self.objects:
            if not if_exists:
                self._violate(key or ('trigger', '', self.k('trigger', name)), 'present', 'trigger %s' % name)
            return
        self._remove(key)

    def sequence_key(self, name):
        return ('sequence', self.k('sequence', name))

    def _serial_sequence_name(self, table, column):
        return self.choose_relation_name(table, column, 'seq')

    def _create_serial_sequence(self, table, t, column):
        name = self.objects[('column', t, self.k('column', column))]['default'][1]
        self._set(self.sequence_key(name), dict(owned_by=(t, self.k('column', column)), _name=name), 'sequence %s' % name)

    def create_sequence(self, name, if_not_exists=False):
        key = self.sequence_key(name)
        if key in self.objects:
            if not if_not_exists:
                self._violate(key, 'absent', 'sequence %s' % name)
            return
        self._set(key, dict(owned_by=None, _name=name), 'sequence %s' % name)

    def drop_sequence(self, name, if_exists=False):
        key = self.sequence_key(name)
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', 'sequence %s' % name)
            return
        self._remove(key)

    def rename_sequence(self, old, new):
        old_key, new_key = self.sequence_key(old), self.sequence_key(new)
        if self._require(old_key, 'sequence %s' % old) and self._require_absent(new_key, 'sequence %s' % new):
            comps = self.objects[old_key]
            self._remove(old_key)
            self._set(new_key, comps, 'sequence %s' % new)
            for key, other in self.objects.items():
                if key[0] == 'column' and other.get('default') == ('nextval', old_key[1]):
                    other['default'] = ('nextval', new_key[1])
                    self._touch(key)

    def sequence_owned_by(self, name, table=None, column=None):
        key = self.sequence_key(name)
        if not self._require(key, 'sequence %s' % name):
            return
        owner = None
        if table is not None:
            owner = (self.k('table', table), self.k('column', column))
            self._require(('column',) + owner, self.column_label(table, column))
        self.objects[key]['owned_by'] = owner
        self._touch(key)

    def create_simple(self, kind, name, if_not_exists=False):
        """Extensions and schemas: they exist or not."""
        key = (kind, self.k(kind, name))
        if key in self.objects:
            if not if_not_exists:
                self._violate(key, 'absent', '%s %s' % (kind, name))
            return
        self._set(key, dict(_name=name), '%s %s' % (kind, name))

    def drop_simple(self, kind, name, if_exists=False):
        key = (kind, self.k(kind, name))
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', '%s %s' % (kind, name))
            return
        self._remove(key)

    def create_policy(self, table, name):
        key = ('policy', self.k('table', table), self.k('policy', name))
        self._require(('table', key[1]), self.table_label(table))
        if self._require_absent(key, 'policy %s on %s' % (name, table)):
            self._set(key, dict(_name=name), 'policy %s on %s' % (name, table))

    def drop_policy(self, table, name, if_exists=False):
        key = ('policy', self.k('table', table), self.k('policy', name))
        if key not in self.objects:
            if not if_exists:
                self._violate(key, 'present', 'policy %s on %s' % (name, table))
            return
        self._remove(key)


def _referenced_tables(definition):
    """Names that follow FROM or JOIN in a normalised view body."""
    found = []
    tokens = list(definition or ())
    for index, token in enumerate(tokens[:-1]):
        if token in ('FROM', 'JOIN') and tokens[index + 1].startswith('"'):
            found.append(tokens[index + 1][1:])
    return found


def _make_object_name(name1, name2, label):
    """PostgreSQL's makeObjectName: shorten the longer of name1/name2 until ``name1_name2_label`` fits 63 bytes."""
    raw1 = name1.encode('utf-8')
    raw2 = name2.encode('utf-8') if name2 else b''
    overhead = (len(label.encode('utf-8')) + 1 if label else 0) + (1 if name2 else 0)
    available = 63 - overhead
    len1, len2 = len(raw1), len(raw2)
    while len1 + len2 > available:
        if len1 > len2:
            len1 -= 1
        else:
            len2 -= 1
    part1 = raw1[:len1].decode('utf-8', 'ignore')
    part2 = raw2[:len2].decode('utf-8', 'ignore') if name2 else None
    result = part1
    if part2:
        result += '_' + part2
    if label:
        result += '_' + label
    return result
