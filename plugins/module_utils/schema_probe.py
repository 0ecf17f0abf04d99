# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Find the objects a migration's SQL creates and look for them in the database catalog.

``extract_objects`` reads the SQL (no database needed); ``read_catalog`` takes one snapshot of
the catalog (information_schema / pg_catalog / sqlite_master + pragma); ``probe`` compares the
two. Statements whose effect cannot be checked that way (UPDATE, DROP, RENAME, ...) are
reported as unprobeable; session statements (SET, PRAGMA, BEGIN/COMMIT) are neutral.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.saferelease.core.plugins.module_utils.sql_script import significant, split_script

NEUTRAL_FIRST_WORDS = ('SET', 'PRAGMA', 'BEGIN', 'COMMIT', 'START', 'END', 'SELECT', 'COMMENT', 'ANALYZE', 'USE')
_TABLE_ELEMENT_KEYWORDS = ('CONSTRAINT', 'PRIMARY', 'UNIQUE', 'INDEX', 'KEY', 'FOREIGN', 'CHECK', 'FULLTEXT', 'SPATIAL',
                           'EXCLUDE', 'LIKE', 'PERIOD')


class DbObject(object):
    """An object a statement creates: kind (table, column, index, constraint, view, type, sequence, schema, extension)."""

    def __init__(self, kind, name, table=None, line=None):
        self.kind = kind
        self.name = name
        self.table = table
        self.line = line

    @property
    def label(self):
        if self.kind == 'column':
            return 'column %s.%s' % (self.table, self.name)
        if self.kind in ('index', 'constraint') and self.table:
            return '%s %s on %s' % (self.kind, self.name, self.table)
        return '%s %s' % (self.kind, self.name)

    def key(self):
        return (self.kind, self.table, self.name)

    def __repr__(self):
        return 'DbObject(%s)' % self.label


class Extraction(object):
    """What a script creates (``objects``) and the statements that cannot be probed."""

    def __init__(self, objects, unprobeable, neutral):
        self.objects = objects
        self.unprobeable = unprobeable
        self.neutral = neutral


def _ident(tok, engine):
    """Identifier value of a word or quoted identifier; PostgreSQL folds unquoted names to lower case."""
    if tok.kind == 'ident':
        return tok.value
    if tok.kind == 'word':
        return tok.text.lower() if engine == 'postgresql' else tok.text
    if tok.kind == 'string' and engine == 'mysql':
        return tok.value
    return None


def _is(tok, *words):
    return tok is not None and tok.kind == 'word' and tok.text.upper() in words


class _Cursor(object):
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset=0):
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def accept(self, *words):
        if _is(self.peek(), *words):
            return self.take()
        return None

    def accept_seq(self, *words):
        for offset, word in enumerate(words):
            if not _is(self.peek(offset), word):
                return False
        self.pos += len(words)
        return True

    def qualified_name(self, engine):
        """``[schema.]name`` → (schema, name); None when no identifier is next."""
        tok = self.peek()
        if tok is None or _ident(tok, engine) is None:
            return None
        parts = [_ident(self.take(), engine)]
        while self.peek() is not None and self.peek().kind == 'punct' and self.peek().text == '.' and self.peek(1) is not None:
            self.take()
            parts.append(_ident(self.take(), engine))
        if len(parts) == 1:
            return (None, parts[0])
        return (parts[-2], parts[-1])


def _split_top_level(tokens):
    """Split tokens on commas at parenthesis depth 0."""
    parts, current, depth = [], [], 0
    for tok in tokens:
        if tok.kind == 'punct' and tok.text == '(':
            depth += 1
        elif tok.kind == 'punct' and tok.text == ')':
            depth -= 1
        if tok.kind == 'punct' and tok.text == ',' and depth == 0:
            parts.append(current)
            current = []
            continue
        current.append(tok)
    if current:
        parts.append(current)
    return parts


def _paren_body(cursor):
    """Tokens inside the next balanced ``( ... )``, cursor moved past it; None when no '(' is next."""
    tok = cursor.peek()
    if tok is None or tok.kind != 'punct' or tok.text != '(':
        return None
    cursor.take()
    depth, body = 1, []
    while cursor.peek() is not None:
        tok = cursor.take()
        if tok.kind == 'punct' and tok.text == '(':
            depth += 1
        elif tok.kind == 'punct' and tok.text == ')':
            depth -= 1
            if depth == 0:
                return body
        body.append(tok)
    return body


def _create_table(cursor, engine, line):
    cursor.accept_seq('IF', 'NOT', 'EXISTS')
    qualified = cursor.qualified_name(engine)
    if qualified is None:
        return None
    _schema, table = qualified
    objects = [DbObject('table', table, line=line)]
    body = _paren_body(cursor)
    if body is None:
        return objects
    for element in _split_top_level(body):
        if not element:
            continue
        first = element[0]
        if first.kind == 'word' and first.text.upper() in _TABLE_ELEMENT_KEYWORDS:
            sub = _Cursor(element)
            if sub.accept('CONSTRAINT'):
                named = sub.qualified_name(engine)
                if named and engine != 'sqlite':
                    objects.append(DbObject('constraint', named[1], table, line))
                continue
            if engine == 'mysql':
                sub.accept('UNIQUE', 'FULLTEXT', 'SPATIAL')
                if sub.accept('INDEX', 'KEY'):
                    named = sub.qualified_name(engine)
                    if named:
                        objects.append(DbObject('index', named[1], table, line))
            continue
        name = _ident(first, engine)
        if name is not None:
            objects.append(DbObject('column', name, table, line))
    return objects


def _alter_table(cursor, engine, line):
    """Objects added by ALTER TABLE; None when any action cannot be probed."""
    cursor.accept_seq('IF', 'EXISTS')
    cursor.accept('ONLY')
    qualified = cursor.qualified_name(engine)
    if qualified is None:
        return None
    table = qualified[1]
    objects = []
    rest = cursor.tokens[cursor.pos:]
    for action in _split_top_level(rest):
        sub = _Cursor(action)
        if not sub.accept('ADD'):
            return None
        if sub.accept('CONSTRAINT'):
            named = sub.qualified_name(engine)
            if not named:
                return None
            objects.append(DbObject('constraint', named[1], table, line))
            continue
        if engine == 'mysql' and (_is(sub.peek(), 'INDEX', 'KEY', 'FULLTEXT', 'SPATIAL')
                                  or (_is(sub.peek(), 'UNIQUE') and _is(sub.peek(1), 'INDEX', 'KEY'))):
            sub.accept('UNIQUE', 'FULLTEXT', 'SPATIAL')
            sub.accept('INDEX', 'KEY')
            named = sub.qualified_name(engine)
            if not named or (sub.peek() is None):
                return None
            objects.append(DbObject('index', named[1], table, line))
            continue
        if _is(sub.peek(), 'PRIMARY', 'FOREIGN', 'UNIQUE', 'CHECK', 'INDEX', 'KEY', 'EXCLUDE', 'PARTITION'):
            return None
        sub.accept('COLUMN')
        sub.accept_seq('IF', 'NOT', 'EXISTS')
        tok = sub.peek()
        name = _ident(tok, engine) if tok is not None else None
        if name is None:
            return None
        objects.append(DbObject('column', name, table, line))
    return objects or None


def _create_index(cursor, engine, line):
    cursor.accept('CONCURRENTLY')
    cursor.accept_seq('IF', 'NOT', 'EXISTS')
    if _is(cursor.peek(), 'ON'):
        return None  # unnamed PostgreSQL index: no name to look for
    named = cursor.qualified_name(engine)
    if named is None:
        return None
    if not cursor.accept('ON'):
        return None
    cursor.accept('ONLY')
    table = cursor.qualified_name(engine)
    return [DbObject('index', named[1], table[1] if table else None, line)]


def _extract_statement(statement, engine):
    """Objects a statement creates; [] for neutral statements; None when it cannot be probed."""
    tokens = [t for t in significant(statement.tokens) if t.kind != 'exec_comment']
    if not tokens:
        return []
    cursor = _Cursor(tokens)
    first = cursor.peek()
    if _is(first, *NEUTRAL_FIRST_WORDS):
        if _is(first, 'BEGIN', 'START', 'COMMIT', 'END', 'SET', 'PRAGMA', 'USE', 'ANALYZE', 'COMMENT'):
            return []
        if _is(first, 'SELECT') and not any(_is(t, 'INTO') for t in tokens):
            return []
        return None
    line = statement.line
    if cursor.accept('CREATE'):
        cursor.accept_seq('OR', 'REPLACE')
        cursor.accept('GLOBAL', 'LOCAL')
        cursor.accept('TEMP', 'TEMPORARY', 'UNLOGGED')
        if cursor.accept('TABLE'):
            return _create_table(cursor, engine, line)
        unique = cursor.accept('UNIQUE', 'FULLTEXT', 'SPATIAL')
        if cursor.accept('INDEX'):
            return _create_index(cursor, engine, line)
        if unique:
            return None
        cursor.accept('MATERIALIZED')
        if cursor.accept('VIEW'):
            cursor.accept_seq('IF', 'NOT', 'EXISTS')
            named = cursor.qualified_name(engine)
            return [DbObject('view', named[1], line=line)] if named else None
        for keyword, kind in (('TYPE', 'type'), ('DOMAIN', 'type'), ('SEQUENCE', 'sequence'), ('SCHEMA', 'schema'),
                              ('EXTENSION', 'extension')):
            if cursor.accept(keyword):
                cursor.accept_seq('IF', 'NOT', 'EXISTS')
                named = cursor.qualified_name(engine)
                if named is None:
                    return None
                return [DbObject(kind, named[1], line=line)]
        return None
    if cursor.accept('ALTER'):
        cursor.accept('ONLINE', 'IGNORE')
        if cursor.accept('TABLE'):
            return _alter_table(cursor, engine, line)
        return None
    return None


def extract_objects(sql, engine):
    """Parse ``sql`` and return an :class:`Extraction` (objects created, unprobeable and neutral statements)."""
    objects, unprobeable, neutral = [], [], []
    seen = set()
    for statement in split_script(sql, engine):
        found = _extract_statement(statement, engine)
        if found is None:
            unprobeable.append(statement)
        elif not found:
            neutral.append(statement)
        else:
            for obj in found:
                if obj.key() not in seen:
                    seen.add(obj.key())
                    objects.append(obj)
    return Extraction(objects, unprobeable, neutral)


# --- catalog -------------------------------------------------------------------------------

class Catalog(object):
    """A snapshot of the names in one schema; comparisons follow the engine's case rules."""

    def __init__(self, engine, tables=(), views=(), columns=(), indexes=(), constraints=(), types=(), sequences=(),
                 schemas=(), extensions=()):
        self.engine = engine
        norm = self.norm
        self.tables = set(norm(t) for t in tables)
        self.views = set(norm(v) for v in views)
        self.columns = set((norm(t), norm(c)) for t, c in columns)
        self.indexes = set((norm(t), norm(i)) for t, i in indexes)
        self.index_names = set(i for _t, i in self.indexes)
        self.constraints = set((norm(t), norm(c)) for t, c in constraints)
        self.constraint_names = set(c for _t, c in self.constraints)
        self.types = set(norm(t) for t in types)
        self.sequences = set(norm(s) for s in sequences)
        self.schemas = set(norm(s) for s in schemas)
        self.extensions = set(norm(e) for e in extensions)

    def norm(self, name):
        if name is None:
            return None
        return name if self.engine == 'postgresql' else name.lower()

    def has(self, obj):
        n, t = self.norm(obj.name), self.norm(obj.table)
        if obj.kind == 'table':
            return n in self.tables
        if obj.kind == 'view':
            return n in self.views
        if obj.kind == 'column':
            return (t, n) in self.columns
        if obj.kind == 'index':
            return (t, n) in self.indexes if t is not None else n in self.index_names
        if obj.kind == 'constraint':
            # MySQL keeps a unique constraint as an index of the same name, too
            return (t, n) in self.constraints or (self.engine == 'mysql' and (t, n) in self.indexes)
        if obj.kind == 'type':
            return n in self.types
        if obj.kind == 'sequence':
            return n in self.sequences
        if obj.kind == 'schema':
            return n in self.schemas
        if obj.kind == 'extension':
            return n in self.extensions
        return False


def _rows(conn, sql, params=None):
    cur = conn.cursor()
    try:
        if params is None:
            cur.execute(sql)
        else:
            cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


def read_catalog(conn, target):
    """One snapshot of the catalog of ``target``'s namespace."""
    engine = target.engine
    if engine == 'sqlite':
        master = _rows(conn, 'SELECT type, name, tbl_name FROM sqlite_master')
        tables = [r[1] for r in master if r[0] == 'table']
        columns = []
        for table in tables:
            columns.extend((table, r[0]) for r in _rows(conn, 'SELECT name FROM pragma_table_info(?)', (table,)))
        return Catalog(engine, tables=tables, views=[r[1] for r in master if r[0] == 'view'], columns=columns,
                       indexes=[(r[2], r[1]) for r in master if r[0] == 'index'])
    if engine == 'mysql':
        rel = _rows(conn, 'SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()')
        return Catalog(
            engine,
            tables=[r[0] for r in rel if r[1] == 'BASE TABLE'],
            views=[r[0] for r in rel if r[1] == 'VIEW'],
            columns=_rows(conn, 'SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()'),
            indexes=_rows(conn, 'SELECT DISTINCT TABLE_NAME, INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()'),
            constraints=_rows(conn, 'SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS '
                                    'WHERE CONSTRAINT_SCHEMA = DATABASE()'),
            schemas=[r[0] for r in _rows(conn, 'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA')],
        )
    schema = target.namespace
    rel = _rows(conn, 'SELECT c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
                      'WHERE n.nspname = %s', (schema,))
    return Catalog(
        engine,
        tables=[r[0] for r in rel if r[1] in ('r', 'p', 'f')],
        views=[r[0] for r in rel if r[1] in ('v', 'm')],
        sequences=[r[0] for r in rel if r[1] == 'S'],
        columns=_rows(conn, 'SELECT c.relname, a.attname FROM pg_catalog.pg_attribute a '
                            'JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
                            "WHERE n.nspname = %s AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'v', 'm')",
                      (schema,)),
        indexes=_rows(conn, 'SELECT tablename, indexname FROM pg_catalog.pg_indexes WHERE schemaname = %s', (schema,)),
        constraints=_rows(conn, 'SELECT c.relname, con.conname FROM pg_catalog.pg_constraint con '
                                'JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace '
                                'WHERE n.nspname = %s', (schema,)),
        types=[r[0] for r in _rows(conn, 'SELECT t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace '
                                         "WHERE n.nspname = %s AND t.typtype IN ('e', 'd')", (schema,))],
        schemas=[r[0] for r in _rows(conn, 'SELECT nspname FROM pg_catalog.pg_namespace')],
        extensions=[r[0] for r in _rows(conn, 'SELECT extname FROM pg_catalog.pg_extension')],
    )


class ProbeReport(object):
    """Per-object presence for one migration, and the overall ``state``.

    ``state``: ``present`` (every object exists), ``absent`` (none does), ``partial``,
    ``unprobeable`` (some statement's effect cannot be checked) or ``empty`` (nothing to check).
    """

    def __init__(self, migration, results, unprobeable):
        self.migration = migration
        self.results = results  # list of (DbObject, bool)
        self.unprobeable = unprobeable

    @property
    def present(self):
        return [o.label for o, found in self.results if found]

    @property
    def absent(self):
        return [o.label for o, found in self.results if not found]

    @property
    def state(self):
        if self.unprobeable:
            return 'unprobeable'
        if not self.results:
            return 'empty'
        if not self.absent:
            return 'present'
        if not self.present:
            return 'absent'
        return 'partial'

    def as_dict(self):
        return dict(objects=[dict(kind=o.kind, name=o.name, table=o.table, line=o.line, present=found) for o, found in self.results],
                    present=self.present, absent=self.absent,
                    unprobeable=['line %d: %s' % (s.line, s.summary) for s in self.unprobeable])


def probe(extraction, catalog, migration=None):
    """Compare an :class:`Extraction` with a :class:`Catalog`."""
    return ProbeReport(migration, [(obj, catalog.has(obj)) for obj in extraction.objects], extraction.unprobeable)


def probe_migration(conn, target, sql, migration=None, catalog=None):
    """Extract and probe in one call (reads the catalog unless one is given)."""
    extraction = extract_objects(sql, target.engine)
    if catalog is None:
        catalog = read_catalog(conn, target)
    return probe(extraction, catalog, migration)
