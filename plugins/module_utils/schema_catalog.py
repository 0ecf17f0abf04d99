# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The live catalog of one schema, read into the subjects and components of :mod:`schema_model`.

One snapshot per call of :func:`read_catalog`: PostgreSQL from ``pg_catalog`` (``format_type``,
``pg_get_expr``, ``pg_index``, ``pg_constraint``, ``pg_enum``, ``pg_proc``, ``pg_trigger``,
``pg_depend``), MySQL/MariaDB from ``information_schema``, SQLite from ``sqlite_master`` and the
``pragma_*`` table functions. A component the catalog cannot show (a SQLite check constraint,
for instance) is left out, so a comparison on it says "unknown" instead of guessing.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.saferelease.core.plugins.module_utils.database import query_rows
from ansible_collections.saferelease.core.plugins.module_utils.ddl_parser import MigrationParser
from ansible_collections.saferelease.core.plugins.module_utils.schema_model import Expr, SchemaModel
from ansible_collections.saferelease.core.plugins.module_utils.sql_dialect import Dialect
from ansible_collections.saferelease.core.plugins.module_utils.sql_script import split_script

PG_FK_ACTIONS = {'a': 'NO ACTION', 'r': 'RESTRICT', 'c': 'CASCADE', 'n': 'SET NULL', 'd': 'SET DEFAULT'}


class Catalog(object):
    """Subjects of the live schema (``objects``: key -> components) and the dialect they were read with."""

    def __init__(self, dialect, objects, conn=None):
        self.dialect = dialect
        self.engine = dialect.engine
        self.objects = objects
        self._conn = conn
        self._compiled = {}

    def get(self, key):
        return self.objects.get(key)

    def compile_view(self, body):
        """PostgreSQL's own rendering of a view body (``pg_get_viewdef``), or None when it does not compile here.

        The body is compiled as a temporary view inside a transaction that is rolled back, so the
        database is left exactly as it was (check mode included).
        """
        if self.engine != 'postgresql' or self._conn is None or body is None:
            return None
        if body in self._compiled:
            return self._compiled[body]
        result = None
        conn = self._conn
        autocommit = conn.autocommit
        cur = conn.cursor()
        try:
            conn.autocommit = False
            cur.execute('CREATE TEMPORARY VIEW saferelease_probe_view AS ' + body)
            cur.execute("SELECT pg_get_viewdef('saferelease_probe_view'::regclass, true)")
            result = cur.fetchone()[0]
        except Exception:  # pylint: disable=broad-except
            result = None
        finally:
            try:
                conn.rollback()
            finally:
                conn.autocommit = autocommit
                cur.close()
        self._compiled[body] = result
        return result


def server_dialect(conn, target):
    """The :class:`Dialect` of the database behind ``conn`` (MySQL flavour and table-name case rule read from the server)."""
    if target.engine == 'mysql':
        version, lower = query_rows(conn, 'SELECT VERSION(), @@lower_case_table_names')[0]
        flavour = 'mariadb' if 'mariadb' in str(version).lower() else 'mysql'
        return Dialect('mysql', flavour=flavour, lower_case_table_names=lower, namespace=target.namespace)
    return Dialect(target.engine, namespace=target.namespace)


def read_catalog(conn, target, dialect=None):
    """One snapshot of the catalog of ``target``'s namespace as a :class:`Catalog`."""
    dialect = dialect or server_dialect(conn, target)
    reader = {'postgresql': _read_postgresql, 'mysql': _read_mysql, 'sqlite': _read_sqlite}[target.engine]
    objects = {}
    reader(conn, dialect, target.namespace, objects)
    return Catalog(dialect, objects, conn)


def _signature(dialect, types_text):
    """Argument types of a routine without modifiers (PostgreSQL ignores them in signatures)."""
    if not types_text:
        return ()
    return tuple(re.sub(r'\([^)]*\)', '', dialect.type_from_text(part.strip()))
                 for part in types_text.split(','))


# --- PostgreSQL ------------------------------------------------------------------------------

def _read_postgresql(conn, dialect, schema, objects):
    def k(kind, name):
        return dialect.key(name, kind)

    relations = query_rows(conn, "SELECT c.oid, c.relname, c.relkind, c.relrowsecurity, obj_description(c.oid, 'pg_class') "
                           "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')", (schema,))
    view_columns = {}
    for oid, name, relkind, rls, comment in relations:
        if relkind in ('r', 'p', 'f'):
            objects[('table', k('table', name))] = dict(rls=bool(rls), comment=comment)
        elif relkind in ('v', 'm'):
            objects[('view', k('view', name))] = dict(materialized=relkind == 'm')
            view_columns[name] = []
    for relname, attname, type_text, notnull, default, identity, generated, collation, comment, relkind in query_rows(
            conn,
            "SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, "
            "CASE WHEN a.attcollation <> t.typcollation THEN co.collname END, pg_catalog.col_description(c.oid, a.attnum), "
            "c.relkind FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation "
            "WHERE n.nspname = %s AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'v', 'm') "
            "ORDER BY c.relname, a.attnum", (schema,)):
        if relkind in ('v', 'm'):
            view_columns[relname].append(k('column', attname))
            continue
        is_generated = generated == 's'
        objects[('column', k('table', relname), k('column', attname))] = dict(
            type=dialect.type_from_text(type_text), nullable=not notnull,
            default=None if is_generated else dialect.default_from_text(default),
            identity=identity or None, generated=Expr(dialect.expression_from_text(default)) if is_generated else None,
            collation=collation.lower() if collation else None, comment=comment)
    for name, columns in view_columns.items():
        definition = query_rows(conn, "SELECT pg_catalog.pg_get_viewdef(c.oid, true) FROM pg_catalog.pg_class c "
                                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                                (schema, name))
        objects[('view', k('view', name))].update(columns=tuple(columns), _definition=definition[0][0] if definition else None)
    _read_pg_indexes(conn, dialect, schema, objects)
    _read_pg_constraints(conn, dialect, schema, objects)
    for name, typtype, labels in query_rows(
            conn, "SELECT t.typname, t.typtype, ARRAY(SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid "
                  "ORDER BY e.enumsortorder) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
                  "WHERE n.nspname = %s AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM "
                  "pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))", (schema,)):
        objects[('type', k('type', name))] = dict(kind=typtype, values=tuple(labels) if typtype == 'e' else None)
    for name, types_text, body, kind in query_rows(
            conn, "SELECT p.proname, pg_catalog.oidvectortypes(p.proargtypes), p.prosrc, p.prokind FROM pg_catalog.pg_proc p "
                  "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.prokind IN ('f', 'p')",
            (schema,)):
        objects[('function', k('function', name), _signature(dialect, types_text))] = dict(kind=kind, body=body)
    for name, table, tgtype, function, definition in query_rows(
            conn, "SELECT tg.tgname, c.relname, tg.tgtype, p.proname, pg_catalog.pg_get_triggerdef(tg.oid, true) "
                  "FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid "
                  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid "
                  "WHERE n.nspname = %s AND NOT tg.tgisinternal", (schema,)):
        objects[('trigger', k('table', table), k('trigger', name))] = _pg_trigger(dialect, k('table', table), tgtype, function,
                                                                                  definition)
    for name, table, column in query_rows(
            conn, "SELECT s.relname, t.relname, a.attname FROM pg_catalog.pg_class s "
                  "JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace LEFT JOIN pg_catalog.pg_depend d ON d.objid = s.oid "
                  "AND d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass "
                  "AND d.deptype IN ('a', 'i') LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid "
                  "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                  "WHERE n.nspname = %s AND s.relkind = 'S'", (schema,)):
        objects[('sequence', k('sequence', name))] = dict(
            owned_by=(k('table', table), k('column', column)) if table else None)
    for (name,) in query_rows(conn, 'SELECT extname FROM pg_catalog.pg_extension'):
        objects[('extension', k('extension', name))] = {}
    for (name,) in query_rows(conn, 'SELECT nspname FROM pg_catalog.pg_namespace'):
        objects[('schema', k('schema', name))] = {}
    for name, table in query_rows(conn, 'SELECT pol.polname, c.relname FROM pg_catalog.pg_policy pol '
                                  'JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid '
                                  'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s', (schema,)):
        objects[('policy', k('table', table), k('policy', name))] = {}


def _read_pg_indexes(conn, dialect, schema, objects):
    opclasses = dict((oid, (name, default)) for oid, name, default in
                     query_rows(conn, 'SELECT oid, opcname, opcdefault FROM pg_catalog.pg_opclass'))
    for oid, name, table, unique, am, attnames, options, predicate, classes, nkeys in query_rows(
            conn,
            "SELECT i.oid, i.relname, t.relname, ix.indisunique, am.amname, "
            "ARRAY(SELECT a.attname FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(num, pos) "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.num ORDER BY k.pos), "
            "ix.indoption::int2[], pg_catalog.pg_get_expr(ix.indpred, ix.indrelid), ix.indclass::oid[], ix.indnkeyatts "
            "FROM pg_catalog.pg_index ix JOIN pg_catalog.pg_class i ON i.oid = ix.indexrelid "
            "JOIN pg_catalog.pg_class t ON t.oid = ix.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace "
            "JOIN pg_catalog.pg_am am ON am.oid = i.relam WHERE n.nspname = %s", (schema,)):
        elements = []
        for position in range(nkeys):
            column = attnames[position] if position < len(attnames) else None
            descending = bool(options[position] & 1) if position < len(options) else False
            if column is None:
                text = query_rows(conn, 'SELECT pg_catalog.pg_get_indexdef(%s, %s, true)', (oid, position + 1))[0][0]
                elements.append((Expr(dialect.expression_from_text(text)), descending))
            else:
                elements.append((dialect.key(column, 'column'), descending))
        chosen = [opclasses.get(c, (None, True)) for c in list(classes)[:nkeys]]
        objects[('index', '', dialect.key(name, 'index'))] = dict(
            table=dialect.key(table, 'table'), unique=bool(unique), method=am, columns=tuple(elements),
            predicate=Expr(dialect.expression_from_text(predicate)) if predicate else None,
            opclasses=tuple(n if not default else None for n, default in chosen) if any(not d for _n, d in chosen) else None)


def _read_pg_constraints(conn, dialect, schema, objects):
    for name, table, kind, columns, ref_table, ref_columns, on_delete, on_update, definition in query_rows(
            conn,
            "SELECT con.conname, c.relname, con.contype, "
            "ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, pos) JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.pos), rc.relname, "
            "ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, pos) JOIN pg_catalog.pg_attribute a "
            "ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.pos), con.confdeltype, con.confupdtype, "
            "pg_catalog.pg_get_constraintdef(con.oid, true) FROM pg_catalog.pg_constraint con "
            "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace "
            "LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid "
            "WHERE n.nspname = %s AND con.contype IN ('p', 'u', 'f', 'c', 'x')", (schema,)):
        check = None
        if kind == 'c':
            check = Expr(dialect.expression_from_text(re.sub(r'^CHECK\s*', '', definition or '').replace(' NOT VALID', '')))
        objects[('constraint', dialect.key(table, 'table'), dialect.key(name, 'constraint'))] = dict(
            kind=kind, columns=tuple(dialect.key(c, 'column') for c in (columns if kind != 'c' else [])) if kind != 'c' else (),
            ref_table=dialect.key(ref_table, 'table') if kind == 'f' else None,
            ref_columns=tuple(dialect.key(c, 'column') for c in ref_columns) if kind == 'f' else (),
            on_delete=PG_FK_ACTIONS.get(on_delete) if kind == 'f' else None,
            on_update=PG_FK_ACTIONS.get(on_update) if kind == 'f' else None, check=check)


def _pg_trigger(dialect, table, tgtype, function, definition):
    if tgtype & 64:
        timing = 'INSTEAD OF'
    elif tgtype & 2:
        timing = 'BEFORE'
    else:
        timing = 'AFTER'
    events = frozenset(event for bit, event in ((4, 'INSERT'), (8, 'DELETE'), (16, 'UPDATE'), (32, 'TRUNCATE')) if tgtype & bit)
    when = None
    match = re.search(r'\bWHEN \((.*)\) EXECUTE ', definition or '')
    if match:
        when = Expr(dialect.expression_from_text(match.group(1)))
    return dict(table=table, timing=timing, events=events, level='ROW' if tgtype & 1 else 'STATEMENT',
                function=dialect.key(function, 'function'), when=when, body=None)


# --- MySQL / MariaDB ---------------------------------------------------------------------------

def _read_mysql(conn, dialect, _schema, objects):
    def k(kind, name):
        return dialect.key(name, kind)

    table_collation = {}
    for name, kind, comment, collation in query_rows(conn, 'SELECT TABLE_NAME, TABLE_TYPE, TABLE_COMMENT, TABLE_COLLATION '
                                                     'FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()'):
        if kind == 'VIEW':
            objects[('view', k('view', name))] = dict(materialized=False, columns=())
        else:
            objects[('table', k('table', name))] = dict(comment=comment or None)
            table_collation[name] = collation
    views = set(key[1] for key in objects if key[0] == 'view')
    for table, column, column_type, nullable, default, extra, comment, generation, collation in query_rows(
            conn, 'SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT, '
                  'GENERATION_EXPRESSION, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() '
                  'ORDER BY TABLE_NAME, ORDINAL_POSITION'):
        if k('view', table) in views:
            comps = objects[('view', k('view', table))]
            comps['columns'] = comps['columns'] + (k('column', column),)
            continue
        extra = (extra or '').lower()
        generated = 'generated' in extra or 'persistent' in extra
        comps = dict(type=dialect.type_from_text(column_type), nullable=nullable == 'YES',
                     default=None if generated else _mysql_default(dialect, default, extra),
                     identity=None, generated=Expr(dialect.expression_from_text(generation)) if generated else None,
                     collation=collation.lower() if collation and collation != table_collation.get(table) else None,
                     comment=comment or None)
        objects[('column', k('table', table), k('column', column))] = comps
    indexes = {}
    for table, name, non_unique, column, sub_part, collation, index_type in query_rows(
            conn, 'SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, COLLATION, INDEX_TYPE '
                  'FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX'):
        key = ('index', k('table', table), k('index', name))
        entry = indexes.setdefault(key, dict(table=k('table', table), unique=not int(non_unique),
                                             method='btree' if index_type == 'BTREE' else index_type.lower(), columns=[],
                                             predicate=None, opclasses=None))
        col = k('column', column) if column is not None else None
        entry['columns'].append(((col, int(sub_part)) if sub_part else col, collation == 'D'))
    for key, entry in indexes.items():
        entry['columns'] = tuple(entry['columns'])
        objects[key] = entry
    foreign = {}
    for name, table, column, ref_table, ref_column in query_rows(
            conn, 'SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME '
                  'FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() '
                  'AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION'):
        entry = foreign.setdefault((table, name), dict(columns=[], ref_table=ref_table, ref_columns=[]))
        entry['columns'].append(k('column', column))
        entry['ref_columns'].append(k('column', ref_column))
    rules = dict(((table, name), (delete, update)) for name, table, delete, update in query_rows(
        conn, 'SELECT CONSTRAINT_NAME, TABLE_NAME, DELETE_RULE, UPDATE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS '
              'WHERE CONSTRAINT_SCHEMA = DATABASE()'))
    for (table, name), entry in foreign.items():
        delete, update = rules.get((table, name), ('RESTRICT', 'RESTRICT'))
        objects[('constraint', k('table', table), k('constraint', name))] = dict(
            kind='f', columns=tuple(entry['columns']), ref_table=k('table', entry['ref_table']),
            ref_columns=tuple(entry['ref_columns']), on_delete=_mysql_rule(delete), on_update=_mysql_rule(update), check=None)
    for name, table, clause in _mysql_checks(conn, dialect):
        objects[('constraint', k('table', table), k('constraint', name))] = dict(
            kind='c', columns=(), ref_table=None, ref_columns=(), on_delete=None, on_update=None,
            check=Expr(dialect.expression_from_text(clause)))
    for name, body in query_rows(conn, 'SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()'):
        objects[('view', k('view', name))]['definition'] = Expr(dialect.expression_from_text(body))
    for name, kind, body in query_rows(conn, 'SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES '
                                       'WHERE ROUTINE_SCHEMA = DATABASE()'):
        routine = dict(kind='p' if kind == 'PROCEDURE' else 'f', body=Expr(dialect.expression_from_text(body)))
        objects[('function', k('function', name), ())] = routine
    for name, table, timing, event, statement in query_rows(
            conn, 'SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT '
                  'FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()'):
        trigger = dict(table=k('table', table), timing=timing, events=frozenset([event]), level='ROW', function=None, when=None,
                       body=Expr(dialect.expression_from_text(statement)))
        objects[('trigger', '', k('trigger', name))] = trigger
    for (name,) in query_rows(conn, 'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA'):
        objects[('schema', k('schema', name))] = {}


def _mysql_rule(rule):
    rule = (rule or 'RESTRICT').upper()
    return 'RESTRICT' if rule == 'NO ACTION' else rule


def _mysql_checks(conn, dialect):
    if dialect.flavour == 'mariadb':
        return query_rows(conn, 'SELECT CONSTRAINT_NAME, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS '
                          'WHERE CONSTRAINT_SCHEMA = DATABASE()')
    return query_rows(conn, "SELECT tc.CONSTRAINT_NAME, tc.TABLE_NAME, cc.CHECK_CLAUSE FROM information_schema.TABLE_CONSTRAINTS tc "
                      "JOIN information_schema.CHECK_CONSTRAINTS cc ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA "
                      "AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME WHERE tc.CONSTRAINT_SCHEMA = DATABASE() "
                      "AND tc.CONSTRAINT_TYPE = 'CHECK'")


def _mysql_default(dialect, default, extra):
    if 'auto_increment' in extra:
        return ('auto_increment', None)
    if default is None:
        return None
    if dialect.flavour == 'mariadb':
        # MariaDB quotes literals and writes NULL for "DEFAULT NULL"
        return dialect.default_from_text(default)
    if 'default_generated' in extra:
        return dialect.default_from_text(default)
    # MySQL 8 shows a literal default unquoted
    return dialect.default_from_text("'%s'" % default.replace("'", "''"))


# --- SQLite -------------------------------------------------------------------------------------

def _read_sqlite(conn, dialect, _schema, objects):
    def k(kind, name):
        return dialect.key(name, kind)

    master = query_rows(conn, "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
    parser = MigrationParser(dialect)
    for kind, name, _table, sql in master:
        if kind == 'table':
            _read_sqlite_table(conn, dialect, name, sql, objects)
        elif kind == 'view':
            objects[('view', k('view', name))] = _parsed_components(parser, dialect, sql, 'view') or dict(materialized=False)
            objects[('view', k('view', name))]['columns'] = tuple(
                k('column', r[0]) for r in query_rows(conn, 'SELECT name FROM pragma_table_info(?)', (name,)))
        elif kind == 'trigger':
            comps = _parsed_components(parser, dialect, sql, 'trigger')
            if comps is not None:
                objects[('trigger', '', k('trigger', name))] = comps
    for kind, name, table, sql in master:
        if kind != 'index' or sql is None:
            continue
        unique, partial = query_rows(conn, 'SELECT "unique", partial FROM pragma_index_list(?) WHERE name = ?', (table, name))[0]
        elements = []
        for cid, column, descending in query_rows(conn, 'SELECT cid, name, "desc" FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno',
                                                  (name,)):
            elements.append((k('column', column) if cid >= 0 else None, bool(descending)))
        comps = dict(table=k('table', table), unique=bool(unique), method='btree', columns=tuple(elements), predicate=None,
                     opclasses=None)
        parsed = _parsed_components(parser, dialect, sql, 'index')
        if parsed is not None:
            # expressions and WHERE clauses are only in the stored CREATE INDEX text
            comps['columns'] = tuple(p if e[0] is None else e for e, p in zip(elements, parsed['columns'])) \
                if len(parsed['columns']) == len(elements) else comps['columns']
            comps['predicate'] = parsed['predicate']
        elif partial or any(e[0] is None for e in elements):
            del comps['columns']
            del comps['predicate']
        objects[('index', '', k('index', name))] = comps


def _read_sqlite_table(conn, dialect, name, sql, objects):
    def k(kind, value):
        return dialect.key(value, kind)

    t = k('table', name)
    pk = []
    for _cid, column, type_text, notnull, default, pk_position, hidden in query_rows(
            conn, 'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid', (name,)):
        comps = dict(type=dialect.type_from_text(type_text) if type_text else None, nullable=not notnull,
                     default=dialect.default_from_text(default) if default is not None else None, identity=None,
                     collation=None, comment=None)
        if not hidden:
            comps['generated'] = None
        objects[('column', t, k('column', column))] = comps
        if pk_position:
            pk.append((pk_position, k('column', column)))
    uniques = set()
    for index_name, origin in query_rows(conn, 'SELECT name, origin FROM pragma_index_list(?)', (name,)):
        if origin == 'u':
            columns = query_rows(conn, 'SELECT name FROM pragma_index_info(?) ORDER BY seqno', (index_name,))
            uniques.add(tuple(k('column', r[0]) for r in columns))
    autoincrement = any(t.kind == 'word' and t.text.upper() == 'AUTOINCREMENT'
                        for statement in split_script(sql or '', 'sqlite') for t in statement.tokens)
    objects[('table', t)] = dict(rls=False, comment=None, pk=tuple(c for _p, c in sorted(pk)), uniques=frozenset(uniques),
                                 autoincrement=autoincrement)
    stored = _parsed_components(MigrationParser(dialect), dialect, sql, 'table')
    if stored is not None:
        # check constraints are only in the stored CREATE TABLE text (SQLite appends added columns to it)
        objects[('table', t)]['checks'] = stored['checks']
    foreign = {}
    for fk_id, _seq, ref_table, column, ref_column, on_update, on_delete in query_rows(
            conn, 'SELECT id, seq, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq',
            (name,)):
        entry = foreign.setdefault(fk_id, dict(columns=[], ref_table=k('table', ref_table), ref_columns=[],
                                               on_delete=(on_delete or 'NO ACTION').upper(),
                                               on_update=(on_update or 'NO ACTION').upper()))
        entry['columns'].append(k('column', column))
        if ref_column is not None:
            entry['ref_columns'].append(k('column', ref_column))
    for entry in foreign.values():
        columns = tuple(entry.pop('columns'))
        objects[('fk', t, columns)] = dict(entry, ref_columns=tuple(entry['ref_columns']))


def _parsed_components(parser, dialect, sql, kind):
    """Components of one stored CREATE statement (SQLite keeps them as written), via the migration parser."""
    if not sql:
        return None
    statements = split_script(sql, 'sqlite')
    if len(statements) != 1:
        return None
    parsed = parser.parse(statements[0])
    if parsed.category != 'ddl':
        return None
    model = SchemaModel(dialect)
    for one in parsed.ops:
        if one.method == 'create_index':
            model.objects[model.table_key(one.args[1])] = {}
            for element in one.args[2]:
                if element.column is not None:
                    model.objects[model.column_key(one.args[1], element.column)] = {}
        if one.method == 'create_trigger':
            model.objects[model.table_key(one.args[1])] = {}
        one.apply(model)
    found = [comps for key, comps in model.objects.items() if key[0] == kind]
    if len(found) != 1:
        return None
    return dict((name, value) for name, value in found[0].items() if not name.startswith('_'))
