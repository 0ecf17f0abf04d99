# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Read each statement of a migration as operations on a :class:`SchemaModel`.

Every statement is put in one category:

- ``ddl``: schema changes this module understands, as :class:`Op` objects (tables, columns with
  type/nullability/default, indexes, constraints, enums and their values, views, functions,
  triggers, sequences, extensions, schemas, row-level security, comments);
- ``neutral``: no lasting effect (comments, SET, PRAGMA, transaction control, ANALYZE, and
  anything done to a temporary table), plus the row copy of a table rebuild
  (``INSERT INTO "new_T" SELECT ... FROM "T"`` into a table the same migration created);
- ``data``: row changes (INSERT, UPDATE, DELETE, ...) whose effect no catalog shows;
- ``opaque``: anything else (DO blocks, GRANT, unknown DDL): its effect cannot be modelled.

What the statements of ``data`` and ``opaque`` may touch is kept as ``names`` (every identifier
in them, dollar-quoted bodies included) so that a probe can tell which objects they could have
changed.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from collections import namedtuple

from ansible_collections.saferelease.core.plugins.module_utils.schema_model import (
    ColumnDef,
    ConstraintDef,
    Expr,
    IndexColumn,
)
from ansible_collections.saferelease.core.plugins.module_utils.sql_dialect import PG_SERIAL_TYPES
from ansible_collections.saferelease.core.plugins.module_utils.sql_script import significant, split_script, tokenize


class Op(namedtuple('Op', ['method', 'args', 'kwargs'])):
    """One call on a :class:`SchemaModel`."""

    def apply(self, model):
        getattr(model, self.method)(*self.args, **self.kwargs)


def op(operation, *args, **kwargs):
    return Op(operation, args, kwargs)


class ParsedStatement(object):
    """One statement: ``category`` (ddl, neutral, data, opaque), its ops, a reason, the names it mentions."""

    def __init__(self, statement, category, ops=(), reason=None, names=None, guarded=False):
        self.statement = statement
        self.category = category
        self.ops = list(ops)
        self.reason = reason
        self.names = names or frozenset()
        self.guarded = guarded  # IF [NOT] EXISTS / OR REPLACE: re-running it cannot fail

    @property
    def line(self):
        return self.statement.line

    @property
    def summary(self):
        return self.statement.summary

    def __repr__(self):
        return 'ParsedStatement(%s, line %d, %s)' % (self.category, self.line, self.ops or self.reason)


class _Cursor(object):
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset=0):
        i = self.pos + offset
        return self.tokens[i] if 0 <= i < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def at_end(self):
        return self.pos >= len(self.tokens)

    def rest(self):
        return self.tokens[self.pos:]

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

    def accept_punct(self, text):
        if _punct(self.peek(), text):
            return self.take()
        return None

    def paren_body(self):
        """Tokens inside the next balanced ``( ... )``, cursor moved past it; None when no '(' is next."""
        if not _punct(self.peek(), '('):
            return None
        self.take()
        depth, body = 1, []
        while not self.at_end():
            tok = self.take()
            if _punct(tok, '('):
                depth += 1
            elif _punct(tok, ')'):
                depth -= 1
                if depth == 0:
                    return body
            body.append(tok)
        return body


def _is(tok, *words):
    return tok is not None and tok.kind == 'word' and tok.text.upper() in words


def _punct(tok, text):
    return tok is not None and tok.kind == 'punct' and tok.text == text


def split_top_level(tokens, separator=','):
    """Split tokens on ``separator`` at parenthesis depth 0."""
    parts, current, depth = [], [], 0
    for tok in tokens:
        if _punct(tok, '(') or _punct(tok, '['):
            depth += 1
        elif _punct(tok, ')') or _punct(tok, ']'):
            depth -= 1
        if _punct(tok, separator) and depth == 0:
            parts.append(current)
            current = []
            continue
        current.append(tok)
    if current:
        parts.append(current)
    return parts


class _Unsupported(Exception):
    """The statement (or one of its clauses) cannot be modelled."""


NEUTRAL_WORDS = ('BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'PRAGMA', 'USE', 'ANALYZE',
                 'ANALYSE', 'VACUUM', 'LOCK', 'UNLOCK', 'CHECKPOINT', 'DISCARD', 'NOTIFY', 'LISTEN', 'RESET', 'FLUSH')
DATA_WORDS = ('INSERT', 'UPDATE', 'DELETE', 'MERGE', 'TRUNCATE', 'COPY', 'REPLACE', 'LOAD', 'SELECT', 'WITH', 'VALUES',
              'REFRESH', 'CLUSTER', 'REINDEX')
_COLUMN_STOP = ('NOT', 'NULL', 'DEFAULT', 'PRIMARY', 'UNIQUE', 'REFERENCES', 'CHECK', 'COLLATE', 'GENERATED',
                'AUTO_INCREMENT', 'AUTOINCREMENT', 'COMMENT', 'CONSTRAINT', 'ON', 'CHARSET', 'AS', 'INVISIBLE', 'VISIBLE',
                'COLUMN_FORMAT', 'STORAGE', 'KEY', 'FIRST', 'AFTER', 'USING', 'IDENTITY', 'SRID', 'COMPRESSION')
_TABLE_ELEMENTS = ('CONSTRAINT', 'PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'EXCLUDE', 'LIKE', 'PERIOD')
# MySQL's index lines in CREATE TABLE; elsewhere these words may name a column
_MYSQL_TABLE_ELEMENTS = ('INDEX', 'KEY', 'FULLTEXT', 'SPATIAL')
_OPAQUE_REASONS = {
    'DO': 'a DO block runs procedural code whose effects cannot be followed',
    'CALL': 'a procedure call runs code whose effects cannot be followed',
    'EXECUTE': 'dynamic SQL cannot be followed',
    'GRANT': 'privileges are not compared',
    'REVOKE': 'privileges are not compared',
}
# MySQL routine bodies start with one of these
_ROUTINE_BODY_STARTS = ('BEGIN', 'RETURN', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'SET', 'CALL', 'IF')
# words that end an expression, so cannot be a column alias after it
_NOT_ALIASES = ('END', 'NULL', 'TRUE', 'FALSE', 'DISTINCT', 'ALL')


class MigrationParser(object):
    """Parses the statements of one migration (keeps what the migration itself created, for temp tables and copies)."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.engine = dialect.engine
        self.temp_tables = set()
        self.created_tables = set()

    # --- helpers --------------------------------------------------------------------------

    def name(self, tok):
        return self.dialect.name_of(tok)

    def qualified(self, cursor):
        """``[schema.]name`` → (schema or None, name); None when no identifier is next."""
        tok = cursor.peek()
        if tok is None or self.name(tok) is None or tok.kind == 'string' and self.engine != 'mysql':
            return None
        parts = [self.name(cursor.take())]
        while _punct(cursor.peek(), '.') and cursor.peek(1) is not None and self.name(cursor.peek(1)) is not None:
            cursor.take()
            parts.append(self.name(cursor.take()))
        if len(parts) == 1:
            return (None, parts[0])
        return (parts[-2], parts[-1])

    def object_name(self, cursor):
        """The name of an object in the migration's own schema; another schema cannot be modelled."""
        qualified = self.qualified(cursor)
        if qualified is None:
            raise _Unsupported('no object name')
        schema, name = qualified
        if schema is not None and not self._own_schema(schema):
            raise _Unsupported('object in another schema (%s)' % schema)
        return name

    def _own_schema(self, schema):
        namespace = self.dialect.namespace
        if self.engine == 'sqlite':
            return schema.lower() == 'main'
        if namespace is None:
            return self.engine == 'postgresql' and schema == 'public'
        return self.dialect.key(schema, 'schema') == self.dialect.key(namespace, 'schema')

    def expr(self, tokens):
        return Expr(self.dialect.canonical_expression(tokens))

    def names_in(self, tokens):
        """Keys of every identifier in ``tokens``, looking inside dollar-quoted and string bodies too."""
        found = set()
        for tok in tokens:
            if tok.kind in ('word', 'ident'):
                name = self.name(tok)
                if name:
                    found.add(self.dialect.key(name, 'column'))
                    found.add(self.dialect.key(name, 'table'))
            elif tok.kind == 'string' and len(tok.value) > 2:
                try:
                    inner = significant(tokenize(tok.value, self.engine))
                except Exception:  # pylint: disable=broad-except
                    continue
                found.update(self.names_in(inner))
        return found

    # --- entry ----------------------------------------------------------------------------

    def parse(self, statement):
        parsed = self._parse(statement)
        too_long = [name for name in _created_names(parsed.ops) if self.dialect.too_long(name)]
        if too_long:
            # MySQL refuses the statement outright (ER_TOO_LONG_IDENT): it never ran and never will
            return ParsedStatement(statement, 'opaque', reason='MySQL refuses it: the name %s is longer than 64 characters'
                                   % too_long[0])
        return parsed

    def _parse(self, statement):
        tokens = [t for t in significant(statement.tokens) if t.kind != 'exec_comment']
        if not tokens:
            return ParsedStatement(statement, 'neutral')
        cursor = _Cursor(tokens)
        first = tokens[0]
        try:
            if _is(first, 'SET'):
                return self._set_statement(statement, tokens)
            if _is(first, *NEUTRAL_WORDS):
                return ParsedStatement(statement, 'neutral')
            if _is(first, *DATA_WORDS):
                return self._data(statement, tokens)
            if cursor.accept('CREATE'):
                return self._create(statement, cursor)
            if cursor.accept('ALTER'):
                return self._alter(statement, cursor)
            if cursor.accept('DROP'):
                return self._drop(statement, cursor)
            if cursor.accept('RENAME') and self.engine == 'mysql':
                return self._rename_tables(statement, cursor)
            if cursor.accept('COMMENT') and self.engine == 'postgresql':
                return self._comment(statement, cursor)
        except _Unsupported as exc:
            return self._opaque(statement, tokens, str(exc))
        except (IndexError, AttributeError, TypeError) as exc:
            return self._opaque(statement, tokens, 'not understood (%s)' % exc)
        return self._opaque(statement, tokens, _OPAQUE_REASONS.get(first.text.upper() if first.kind == 'word' else '',
                                                                   'not a statement whose effect the catalog shows'))

    def _opaque(self, statement, tokens, reason):
        return ParsedStatement(statement, 'opaque', reason=reason, names=frozenset(self.names_in(tokens)))

    def _set_statement(self, statement, tokens):
        words = [t.text.upper() for t in tokens if t.kind == 'word']
        if 'SEARCH_PATH' in words or (len(words) > 1 and words[1] == 'SCHEMA'):
            return self._opaque(statement, tokens, 'changes where later names resolve (search_path)')
        return ParsedStatement(statement, 'neutral')

    def _data(self, statement, tokens):
        target = self._data_target(tokens)
        if target is not None and target in self.temp_tables:
            return ParsedStatement(statement, 'neutral', reason='only a temporary table')
        if target is not None and target in self.created_tables and _is(tokens[0], 'INSERT') \
                and any(_is(t, 'SELECT') for t in tokens):
            return ParsedStatement(statement, 'neutral', self._copy_requirements(tokens), reason='row copy of a table rebuild')
        return ParsedStatement(statement, 'data', reason='changes rows, which no catalog shows',
                               names=frozenset(self.names_in(tokens)) if _is(tokens[0], 'SELECT', 'WITH') else None)

    def _copy_requirements(self, tokens):
        """``INSERT INTO new (a, b) SELECT a, b FROM old``: both tables must have those columns for the copy to run."""
        cursor = _Cursor(tokens)
        cursor.accept('INSERT')
        cursor.accept('INTO')
        target = self.object_name(cursor)
        requirements = []
        if _punct(cursor.peek(), '('):
            requirements.append(op('require_columns', target, self._column_names(cursor.paren_body())))
        if not cursor.accept('SELECT'):
            return requirements
        items = split_top_level(self._until_from(cursor))
        source = self.object_name(cursor) if cursor.accept('FROM') else None
        columns = [self.name(item[-1]) for item in items if item and item[-1].kind in ('word', 'ident')
                   and (len(item) == 1 or _punct(item[-2], '.'))]
        if source is not None and columns:
            requirements.append(op('require_columns', source, columns))
        return requirements

    @staticmethod
    def _until_from(cursor):
        taken, depth = [], 0
        while not cursor.at_end():
            tok = cursor.peek()
            if depth == 0 and _is(tok, 'FROM'):
                break
            if _punct(tok, '('):
                depth += 1
            elif _punct(tok, ')'):
                depth -= 1
            taken.append(cursor.take())
        return taken

    def _data_target(self, tokens):
        cursor = _Cursor(tokens)
        if cursor.accept('INSERT', 'REPLACE'):
            cursor.accept('IGNORE', 'LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY')
            cursor.accept('OR')
            cursor.accept('REPLACE', 'IGNORE', 'ABORT', 'FAIL', 'ROLLBACK')
            cursor.accept('INTO')
        elif cursor.accept('UPDATE'):
            cursor.accept('ONLY')
        elif cursor.accept('DELETE'):
            cursor.accept('FROM')
        elif cursor.accept('TRUNCATE'):
            cursor.accept('TABLE')
        else:
            return None
        qualified = self.qualified(cursor)
        return self.dialect.key(qualified[1], 'table') if qualified else None

    # --- CREATE ---------------------------------------------------------------------------

    def _create(self, statement, cursor):
        or_replace = cursor.accept_seq('OR', 'REPLACE')
        self._skip_definer(cursor)
        temporary = bool(cursor.accept('TEMP', 'TEMPORARY'))
        if cursor.accept('GLOBAL', 'LOCAL'):
            temporary = bool(cursor.accept('TEMP', 'TEMPORARY')) or temporary
        cursor.accept('UNLOGGED')
        if cursor.accept('TABLE'):
            return self._create_table(statement, cursor, temporary)
        unique = cursor.accept('UNIQUE')
        fulltext = cursor.accept('FULLTEXT', 'SPATIAL')
        if cursor.accept('INDEX'):
            return self._create_index(statement, cursor, bool(unique), fulltext.text.lower() if fulltext else None)
        if unique or fulltext:
            raise _Unsupported('CREATE UNIQUE without INDEX')
        recursive = cursor.accept('RECURSIVE')
        materialized = bool(cursor.accept('MATERIALIZED'))
        self._skip_definer(cursor)
        if cursor.accept('VIEW'):
            if recursive:
                raise _Unsupported('recursive view')
            return self._create_view(statement, cursor, or_replace, materialized, temporary)
        if cursor.accept('TYPE'):
            return self._create_type(statement, cursor)
        if cursor.accept('DOMAIN'):
            name = self.object_name(cursor)
            return ParsedStatement(statement, 'ddl', [op('create_type', name, 'd')])
        if _is(cursor.peek(), 'FUNCTION', 'PROCEDURE'):
            return self._create_function(statement, cursor, or_replace)
        if cursor.accept('CONSTRAINT'):
            if not _is(cursor.peek(), 'TRIGGER'):
                raise _Unsupported('CREATE CONSTRAINT')
        if cursor.accept('TRIGGER'):
            return self._create_trigger(statement, cursor, or_replace, temporary)
        if cursor.accept('SEQUENCE'):
            return self._create_sequence(statement, cursor, temporary)
        if cursor.accept('EXTENSION'):
            guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
            qualified = self.qualified(cursor)
            if qualified is None:
                raise _Unsupported('extension name')
            return ParsedStatement(statement, 'ddl', [op('create_simple', 'extension', qualified[1], guarded)], guarded=guarded)
        if cursor.accept('SCHEMA', 'DATABASE'):
            guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
            qualified = self.qualified(cursor)
            if qualified is None:
                raise _Unsupported('schema name')
            return ParsedStatement(statement, 'ddl', [op('create_simple', 'schema', qualified[1], guarded)], guarded=guarded)
        if cursor.accept('POLICY'):
            name = self.name(cursor.take())
            if not cursor.accept('ON'):
                raise _Unsupported('policy without table')
            table = self.object_name(cursor)
            return ParsedStatement(statement, 'ddl', [op('create_policy', table, name)])
        raise _Unsupported('CREATE of a kind of object that is not modelled')

    def _skip_definer(self, cursor):
        """MySQL: CREATE [ALGORITHM=x] [DEFINER=user@host | CURRENT_USER] [SQL SECURITY x] VIEW/TRIGGER/ROUTINE."""
        while True:
            if _is(cursor.peek(), 'ALGORITHM') and _punct(cursor.peek(1), '='):
                cursor.pos += 3
            elif _is(cursor.peek(), 'DEFINER') and _punct(cursor.peek(1), '='):
                cursor.pos += 2
                if cursor.accept('CURRENT_USER'):
                    cursor.paren_body()
                    continue
                cursor.take()
                while _punct(cursor.peek(), '@'):
                    cursor.pos += 2
            elif cursor.accept_seq('SQL', 'SECURITY'):
                cursor.take()
            else:
                return

    def _create_table(self, statement, cursor, temporary):
        guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
        name = self.object_name(cursor)
        key = self.dialect.key(name, 'table')
        if temporary:
            self.temp_tables.add(key)
            return ParsedStatement(statement, 'neutral', reason='temporary table')
        if _is(cursor.peek(), 'AS', 'LIKE', 'PARTITION') or _is(cursor.peek(), 'OF'):
            raise _Unsupported('CREATE TABLE %s' % cursor.peek().text.upper())
        body = cursor.paren_body()
        if body is None:
            raise _Unsupported('CREATE TABLE without a column list')
        for tok in cursor.rest():
            if _is(tok, 'INHERITS', 'PARTITION', 'AS', 'SELECT'):
                raise _Unsupported('CREATE TABLE ... %s' % tok.text.upper())
        columns, constraints, extra = [], [], []
        for element in split_top_level(body):
            if not element:
                continue
            if _is(element[0], *_TABLE_ELEMENTS) or (self.engine == 'mysql' and _is(element[0], *_MYSQL_TABLE_ELEMENTS)):
                if _is(element[0], 'LIKE', 'PERIOD', 'EXCLUDE'):
                    raise _Unsupported('table element %s' % element[0].text.upper())
                parsed = self._table_element(name, element)
                if isinstance(parsed, ConstraintDef):
                    constraints.append(parsed)
                else:
                    extra.append(parsed)
                continue
            columns.append(self.column_def(element))
        self.created_tables.add(key)
        ops = [op('create_table', name, columns, constraints, if_not_exists=guarded)]
        ops.extend(extra)
        return ParsedStatement(statement, 'ddl', ops, guarded=guarded)

    def _table_element(self, table, element, name=None):
        """A constraint (ConstraintDef) or, for MySQL's INDEX/KEY lines, a create_index op."""
        sub = _Cursor(element)
        if sub.accept('CONSTRAINT'):
            if not _is(sub.peek(), 'PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'EXCLUDE'):
                name = self.name(sub.take())
        if sub.accept('PRIMARY'):
            sub.accept('KEY')
            method = self._index_using(sub)
            return ConstraintDef('p', name, self._column_names(sub.paren_body()), method=method)
        if sub.accept('UNIQUE'):
            sub.accept('INDEX', 'KEY')
            index_name = None
            if sub.peek() is not None and not _punct(sub.peek(), '(') and not _is(sub.peek(), 'USING', 'NULLS'):
                index_name = self.name(sub.take())
            method = self._index_using(sub)
            if self.engine == 'mysql':
                elements = self.index_elements(sub.paren_body())
                return op('create_index', index_name or name or self._first_column(elements), table, elements, unique=True,
                          method=method, constraint=True)
            return ConstraintDef('u', name or index_name, self._column_names(sub.paren_body()), method=method)
        if sub.accept('FOREIGN'):
            sub.accept('KEY')
            if sub.peek() is not None and not _punct(sub.peek(), '('):
                sub.take()  # MySQL's optional index name
            columns = self._column_names(sub.paren_body())
            return self._references(sub, name, columns)
        if sub.accept('CHECK'):
            return ConstraintDef('c', name, (), check=self.expr(sub.paren_body() or []))
        kind = sub.accept('FULLTEXT', 'SPATIAL')
        if sub.accept('INDEX', 'KEY') or kind:
            sub.accept('INDEX', 'KEY')
            index_name = None
            if sub.peek() is not None and not _punct(sub.peek(), '(') and not _is(sub.peek(), 'USING'):
                index_name = self.name(sub.take())
            method = self._index_using(sub)
            elements = self.index_elements(sub.paren_body())
            return op('create_index', index_name or self._first_column(elements), table, elements,
                      method=kind.text.lower() if kind else method)
        raise _Unsupported('table element')

    @staticmethod
    def _first_column(elements):
        return elements[0].column if elements and elements[0].column else 'idx'

    def _index_using(self, cursor):
        if cursor.accept('USING'):
            return cursor.take().text.lower()
        return None

    def _column_names(self, tokens):
        if tokens is None:
            raise _Unsupported('column list')
        names = []
        for part in split_top_level(tokens):
            if not part:
                continue
            name = self.name(part[0])
            if name is None:
                raise _Unsupported('column list')
            names.append(name)
        return names

    def _references(self, cursor, name, columns):
        if not cursor.accept('REFERENCES'):
            raise _Unsupported('foreign key without REFERENCES')
        ref_table = self.object_name(cursor)
        ref_columns = ()
        if _punct(cursor.peek(), '('):
            ref_columns = self._column_names(cursor.paren_body())
        on_delete = on_update = None
        while not cursor.at_end():
            if cursor.accept('ON'):
                which = cursor.take().text.upper()
                action = self._fk_action(cursor)
                if which == 'DELETE':
                    on_delete = action
                else:
                    on_update = action
            elif cursor.accept('MATCH'):
                cursor.take()
            elif _is(cursor.peek(), 'DEFERRABLE', 'NOT', 'INITIALLY', 'IMMEDIATE', 'DEFERRED', 'VALID', 'ENFORCED'):
                cursor.take()
            else:
                break
        return ConstraintDef('f', name, columns, ref_table, ref_columns, on_delete, on_update)

    def _fk_action(self, cursor):
        first = cursor.take().text.upper()
        if first in ('NO', 'SET'):
            return '%s %s' % (first, cursor.take().text.upper())
        return first

    def column_def(self, tokens):
        """A column definition (``name type constraints...``) as a :class:`ColumnDef`."""
        cursor = _Cursor(tokens)
        name = self.name(cursor.take())
        if name is None:
            raise _Unsupported('column name')
        type_tokens = []
        depth = 0
        while not cursor.at_end():
            tok = cursor.peek()
            if depth == 0 and _is(tok, *_COLUMN_STOP):
                break
            if _is(tok, 'CHARACTER') and _is(cursor.peek(1), 'SET'):
                break
            if _punct(tok, '('):
                depth += 1
            elif _punct(tok, ')'):
                depth -= 1
            type_tokens.append(cursor.take())
        column = ColumnDef(name)
        if type_tokens:
            upper = ' '.join(t.text.upper() for t in type_tokens if t.kind == 'word')
            if self.engine == 'postgresql' and upper in PG_SERIAL_TYPES:
                column.serial = True
            if self.engine == 'mysql' and upper == 'SERIAL':
                column.nullable, column.autoincrement, column.unique = False, True, True
            column.type = self.dialect.canonical_type(type_tokens)
        self._column_constraints(cursor, column)
        return column

    def _column_constraints(self, cursor, column):
        pending_name = None
        while not cursor.at_end():
            if cursor.accept('CONSTRAINT'):
                pending_name = self.name(cursor.take())
                continue
            if cursor.accept_seq('NOT', 'NULL'):
                column.nullable = False
            elif cursor.accept('NULL'):
                column.nullable = True
            elif cursor.accept('DEFAULT'):
                column.default = self.dialect.canonical_default(self._until_constraint(cursor, at_least_one=True))
            elif cursor.accept('PRIMARY'):
                cursor.accept('KEY')
                cursor.accept('ASC', 'DESC')
                column.primary = True
                self._name_constraint(column, 'p', pending_name)
                if self.engine != 'sqlite':
                    column.nullable = False
                if cursor.accept('AUTOINCREMENT'):
                    column.autoincrement = True
            elif cursor.accept('UNIQUE'):
                cursor.accept('KEY')
                column.unique = True
                self._name_constraint(column, 'u', pending_name)
            elif _is(cursor.peek(), 'REFERENCES'):
                column.references = self._references(cursor, None, [column.name])
                self._name_constraint(column, 'f', pending_name)
            elif cursor.accept('CHECK'):
                column.check = self.expr(cursor.paren_body() or [])
                self._name_constraint(column, 'c', pending_name)
            elif cursor.accept('COLLATE'):
                tok = cursor.take()
                column.collation = (tok.value if tok.kind in ('ident', 'string') else tok.text).lower()
            elif cursor.accept('GENERATED'):
                if cursor.accept('ALWAYS'):
                    kind = 'a'
                elif cursor.accept_seq('BY', 'DEFAULT'):
                    kind = 'd'
                else:
                    raise _Unsupported('GENERATED')
                cursor.accept('AS')
                if cursor.accept('IDENTITY'):
                    column.identity = kind
                    column.nullable = False
                    cursor.paren_body()
                else:
                    column.generated = self.expr(cursor.paren_body() or [])
                    cursor.accept('STORED', 'VIRTUAL', 'PERSISTENT')
            elif cursor.accept('AS') and self.engine == 'mysql':
                column.generated = self.expr(cursor.paren_body() or [])
                cursor.accept('STORED', 'VIRTUAL', 'PERSISTENT')
            elif cursor.accept('AUTO_INCREMENT', 'AUTOINCREMENT'):
                column.autoincrement = True
            elif cursor.accept('COMMENT'):
                tok = cursor.take()
                column.comment = tok.value if tok.kind == 'string' else tok.text
            elif cursor.accept_seq('ON', 'CONFLICT'):
                cursor.take()  # SQLite: what to do on a violation, not a property of the column
                continue
            elif cursor.accept_seq('ON', 'UPDATE'):
                raise _Unsupported('ON UPDATE clause of a column')
            elif cursor.accept('CHARACTER'):
                cursor.accept('SET')
                cursor.take()
            elif cursor.accept('CHARSET'):
                cursor.take()
            elif cursor.accept('FIRST'):
                continue
            elif cursor.accept('AFTER'):
                cursor.take()
            elif cursor.accept('INVISIBLE', 'VISIBLE'):
                raise _Unsupported('column visibility')
            else:
                raise _Unsupported('column clause %s' % cursor.peek().text)
            pending_name = None

    @staticmethod
    def _name_constraint(column, kind, name):
        if name:
            column.constraint_names[kind] = name

    def _until_constraint(self, cursor, at_least_one=False):
        taken = []
        depth = 0
        while not cursor.at_end():
            tok = cursor.peek()
            if depth == 0 and (taken or not at_least_one) and (_is(tok, *_COLUMN_STOP) or _punct(tok, ',')):
                if not (_is(tok, 'NULL') and taken and _is(taken[-1], 'IS', 'NOT')):
                    break
            if _punct(tok, '(') or _punct(tok, '['):
                depth += 1
            elif _punct(tok, ')') or _punct(tok, ']'):
                depth -= 1
            taken.append(cursor.take())
        return taken

    # --- indexes ----------------------------------------------------------------------------

    def index_elements(self, tokens):
        if tokens is None:
            raise _Unsupported('index column list')
        elements = []
        for part in split_top_level(tokens):
            if not part:
                continue
            descending = False
            while part and _is(part[-1], 'ASC', 'DESC', 'FIRST', 'LAST', 'NULLS'):
                if _is(part[-1], 'DESC'):
                    descending = True
                part = part[:-1]
                if part and _is(part[-1], 'NULLS'):
                    part = part[:-1]
            collate = [i for i, t in enumerate(part) if _is(t, 'COLLATE')]
            if collate:
                part = part[:collate[0]]
            name = self.name(part[0]) if part else None
            if name is not None and len(part) == 1 and part[0].kind in ('word', 'ident'):
                elements.append(IndexColumn(name, descending=descending))
            elif name is not None and self.engine == 'mysql' and len(part) == 4 and _punct(part[1], '(') \
                    and part[2].kind == 'number':
                elements.append(IndexColumn(name, descending=descending, length=int(part[2].text)))
            elif name is not None and self.engine == 'postgresql' and len(part) == 2 and part[1].kind == 'word':
                elements.append(IndexColumn(name, descending=descending, opclass=part[1].text.lower()))
            else:
                elements.append(IndexColumn(expression=self.expr(part), descending=descending))
        return elements

    def _create_index(self, statement, cursor, unique, kind):
        cursor.accept('CONCURRENTLY')
        guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
        name = None
        if not _is(cursor.peek(), 'ON', 'USING'):
            name = self.object_name(cursor)
        method = self._index_using(cursor)
        if not cursor.accept('ON'):
            raise _Unsupported('CREATE INDEX without ON')
        cursor.accept('ONLY')
        table = self.object_name(cursor)
        method = self._index_using(cursor) or method
        elements = self.index_elements(cursor.paren_body())
        predicate = None
        while not cursor.at_end():
            tok = cursor.take()
            if _is(tok, 'WHERE'):
                predicate = self.expr(cursor.rest())
                break
            if _is(tok, 'INCLUDE', 'WITH'):
                cursor.paren_body()
            elif _is(tok, 'USING'):
                method = cursor.take().text.lower()
            elif _is(tok, 'ALGORITHM', 'LOCK'):
                cursor.accept_punct('=')
                cursor.take()
            elif _is(tok, 'NULLS'):
                raise _Unsupported('NULLS [NOT] DISTINCT')
            elif _is(tok, 'TABLESPACE'):
                cursor.take()
        if table in self.temp_tables or self.dialect.key(table, 'table') in self.temp_tables:
            return ParsedStatement(statement, 'neutral', reason='index on a temporary table')
        if name is None:
            if self.engine == 'sqlite':
                raise _Unsupported('unnamed index')
            name = self._default_index_name(table, elements, unique)
        ops = [op('create_index', name, table, elements, unique=unique, method=kind or method, predicate=predicate,
                  if_not_exists=guarded)]
        return ParsedStatement(statement, 'ddl', ops, guarded=guarded)

    def _default_index_name(self, table, elements, unique):
        if self.engine == 'mysql':
            return _MySQLIndexName(table, elements[0].column if elements and elements[0].column else 'idx')
        parts = [e.column if e.column else 'expr' for e in elements]
        return _PgIndexName(table, '_'.join(parts), 'key' if unique else 'idx')

    # --- views, types, functions, triggers, sequences ----------------------------------------

    def _create_view(self, statement, cursor, or_replace, materialized, temporary):
        guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
        name = self.object_name(cursor)
        if temporary:
            self.temp_tables.add(self.dialect.key(name, 'table'))
            return ParsedStatement(statement, 'neutral', reason='temporary view')
        listed = None
        if _punct(cursor.peek(), '('):
            listed = self._column_names(cursor.paren_body())
        if cursor.accept('WITH'):
            cursor.paren_body()
        if not cursor.accept('AS'):
            raise _Unsupported('view without AS')
        body_tokens = cursor.rest()
        # WITH [NO] DATA / WITH CHECK OPTION follow the query; they are not part of it
        tail = [i for i, t in enumerate(body_tokens[:-1])
                if _is(t, 'WITH') and _is(body_tokens[i + 1], 'NO', 'DATA', 'CASCADED', 'LOCAL', 'CHECK')]
        if tail:
            body_tokens = body_tokens[:tail[-1]]
        columns = tuple(self.dialect.key(c, 'column') for c in listed) if listed else self._select_columns(body_tokens)
        body = _source_text(statement, body_tokens)
        ops = [op('create_view', name, self.expr(body_tokens), columns=columns, body=body, or_replace=bool(or_replace),
                  materialized=materialized, if_not_exists=guarded)]
        return ParsedStatement(statement, 'ddl', ops, guarded=bool(or_replace) or guarded)

    def _select_columns(self, tokens):
        """Output column names of ``SELECT a, t.b, x AS y ... FROM``; None when any is not a plain name or alias."""
        cursor = _Cursor(tokens)
        if not cursor.accept('SELECT'):
            return None
        cursor.accept('DISTINCT', 'ALL')
        items, depth, current = [], 0, []
        for tok in cursor.rest():
            if depth == 0 and _is(tok, 'FROM', 'WHERE', 'GROUP', 'ORDER', 'LIMIT', 'UNION', 'HAVING', 'WINDOW'):
                break
            if _punct(tok, '('):
                depth += 1
            elif _punct(tok, ')'):
                depth -= 1
            if depth == 0 and _punct(tok, ','):
                items.append(current)
                current = []
                continue
            current.append(tok)
        items.append(current)
        names = []
        for item in items:
            last = item[-1] if item else None
            if last is None or last.kind not in ('word', 'ident') or (last.kind == 'word' and last.text.upper() in _NOT_ALIASES):
                return None
            if len(item) > 1 and not (_is(item[-2], 'AS') or _punct(item[-2], '.') or item[-2].kind in ('word', 'ident')
                                      or _punct(item[-2], ')')):
                return None
            names.append(self.dialect.key(self.name(last), 'column'))
        return tuple(names)

    def _create_type(self, statement, cursor):
        name = self.object_name(cursor)
        if not cursor.accept('AS'):
            raise _Unsupported('base type')
        if cursor.accept('ENUM'):
            values = [t.value for t in (cursor.paren_body() or []) if t.kind == 'string']
            return ParsedStatement(statement, 'ddl', [op('create_type', name, 'e', values)])
        if _punct(cursor.peek(), '('):
            return ParsedStatement(statement, 'ddl', [op('create_type', name, 'c')])
        raise _Unsupported('CREATE TYPE AS %s' % (cursor.peek().text if cursor.peek() else ''))

    def _function_signature(self, tokens):
        """Argument types of a PostgreSQL routine signature, canonical, without names and defaults."""
        types = []
        for part in split_top_level(tokens or []):
            part = list(part)
            for index, tok in enumerate(part):
                if _is(tok, 'DEFAULT') or _punct(tok, '='):
                    part = part[:index]
                    break
            if part and _is(part[0], 'IN', 'OUT', 'INOUT', 'VARIADIC'):
                if _is(part[0], 'OUT'):
                    continue
                part = part[1:]
            if len(part) >= 2 and _starts_with_argument_name(part):
                part = part[1:]
            if part:
                types.append(self.dialect.canonical_type(part))
        return tuple(types)

    def _create_function(self, statement, cursor, or_replace):
        kind = 'p' if cursor.take().text.upper() == 'PROCEDURE' else 'f'
        cursor.accept_seq('IF', 'NOT', 'EXISTS')
        name = self.object_name(cursor)
        arguments = cursor.paren_body()
        if self.engine == 'postgresql':
            signature = self._function_signature(arguments)
            body = None
            for index, tok in enumerate(cursor.rest()):
                if _is(tok, 'AS'):
                    strings = [t for t in cursor.rest()[index + 1:] if t.kind == 'string']
                    body = strings[0].value if strings else None
                    break
                if _is(tok, 'BEGIN') and _is(cursor.rest()[index - 1] if index else None, 'ATOMIC'):
                    raise _Unsupported('BEGIN ATOMIC body')
            if body is None:
                raise _Unsupported('routine without a body')
            return ParsedStatement(statement, 'ddl', [op('create_function', name, signature, body, kind, bool(or_replace))],
                                   guarded=bool(or_replace))
        rest = cursor.rest()
        start = [i for i, t in enumerate(rest) if _is(t, *_ROUTINE_BODY_STARTS)]
        if not start:
            raise _Unsupported('routine without a body')
        return ParsedStatement(statement, 'ddl', [op('create_function', name, (), self.expr(rest[start[0]:]), kind,
                                                     bool(or_replace))], guarded=bool(or_replace))

    def _create_trigger(self, statement, cursor, or_replace, temporary):
        guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
        name = self.name(cursor.take())
        if temporary:
            return ParsedStatement(statement, 'neutral', reason='temporary trigger')
        timing = None
        if cursor.accept('BEFORE'):
            timing = 'BEFORE'
        elif cursor.accept('AFTER'):
            timing = 'AFTER'
        elif cursor.accept_seq('INSTEAD', 'OF'):
            timing = 'INSTEAD OF'
        events = set()
        while not cursor.at_end() and not _is(cursor.peek(), 'ON'):
            tok = cursor.take()
            if _is(tok, 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'):
                events.add(tok.text.upper())
            elif _is(tok, 'OF'):
                while not cursor.at_end() and not _is(cursor.peek(), 'ON', 'OR'):
                    cursor.take()
        if not cursor.accept('ON'):
            raise _Unsupported('trigger without ON')
        table = self.object_name(cursor)
        level = 'STATEMENT' if self.engine == 'postgresql' else 'ROW'
        function = None
        when = None
        body = None
        rest = cursor.rest()
        index = 0
        while index < len(rest):
            tok = rest[index]
            if _is(tok, 'ROW', 'STATEMENT') and index and _is(rest[index - 1], 'EACH', 'FOR'):
                level = tok.text.upper()
            elif _is(tok, 'WHEN') and self.engine == 'postgresql':
                sub = _Cursor(rest[index + 1:])
                when = self.expr(sub.paren_body() or [])
                index += 1 + sub.pos
                continue
            elif _is(tok, 'EXECUTE') and self.engine == 'postgresql':
                sub = _Cursor(rest[index + 2:])
                qualified = self.qualified(sub)
                function = self.dialect.key(qualified[1], 'function') if qualified else None
                break
            elif _is(tok, 'BEGIN', 'SET', 'UPDATE', 'INSERT', 'DELETE', 'CALL', 'IF') and self.engine != 'postgresql':
                body = self.expr(rest[index:])
                break
            elif _is(tok, 'WHEN') and self.engine == 'sqlite':
                body = self.expr(rest[index:])
                break
            index += 1
        components = dict(timing=timing, events=frozenset(events), level=level, function=function, when=when, body=body)
        return ParsedStatement(statement, 'ddl', [op('create_trigger', name, table, components, bool(or_replace))],
                               guarded=bool(or_replace) or guarded)

    def _create_sequence(self, statement, cursor, temporary):
        guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
        name = self.object_name(cursor)
        if temporary:
            return ParsedStatement(statement, 'neutral', reason='temporary sequence')
        ops = [op('create_sequence', name, guarded)]
        owner = self._owned_by(cursor.rest())
        if owner is not None:
            ops.append(op('sequence_owned_by', name, *owner))
        return ParsedStatement(statement, 'ddl', ops, guarded=guarded)

    def _owned_by(self, tokens):
        for index, tok in enumerate(tokens):
            if _is(tok, 'OWNED') and _is(tokens[index + 1] if index + 1 < len(tokens) else None, 'BY'):
                sub = _Cursor(tokens[index + 2:])
                if sub.accept('NONE'):
                    return (None, None)
                parts = [self.name(sub.take())]
                while sub.accept_punct('.'):
                    parts.append(self.name(sub.take()))
                if len(parts) < 2:
                    raise _Unsupported('OWNED BY')
                return (parts[-2], parts[-1])
        return None

    # --- ALTER ------------------------------------------------------------------------------

    def _alter(self, statement, cursor):
        cursor.accept('ONLINE', 'IGNORE')
        if cursor.accept('TABLE'):
            return self._alter_table(statement, cursor)
        if cursor.accept('INDEX'):
            guarded = cursor.accept_seq('IF', 'EXISTS')
            old = self.object_name(cursor)
            if cursor.accept_seq('RENAME', 'TO'):
                return ParsedStatement(statement, 'ddl', [op('rename_index', old, self.name(cursor.take()))], guarded=guarded)
            raise _Unsupported('ALTER INDEX other than RENAME')
        if cursor.accept('TYPE'):
            return self._alter_type(statement, cursor)
        materialized = cursor.accept('MATERIALIZED')
        if cursor.accept('VIEW'):
            cursor.accept_seq('IF', 'EXISTS')
            old = self.object_name(cursor)
            if cursor.accept_seq('RENAME', 'TO'):
                return ParsedStatement(statement, 'ddl', [op('rename_view', old, self.name(cursor.take()))])
            raise _Unsupported('ALTER %sVIEW other than RENAME' % ('MATERIALIZED ' if materialized else ''))
        if cursor.accept('SEQUENCE'):
            cursor.accept_seq('IF', 'EXISTS')
            name = self.object_name(cursor)
            if cursor.accept_seq('RENAME', 'TO'):
                return ParsedStatement(statement, 'ddl', [op('rename_sequence', name, self.name(cursor.take()))])
            rest = cursor.rest()
            owner = self._owned_by(rest)
            others = [t for t in rest if _is(t, 'RESTART', 'INCREMENT', 'MINVALUE', 'MAXVALUE', 'START', 'CACHE', 'CYCLE',
                                                'AS', 'NO')]
            if owner is not None and not others:
                return ParsedStatement(statement, 'ddl', [op('sequence_owned_by', name, *owner)])
            raise _Unsupported('ALTER SEQUENCE options')
        raise _Unsupported('ALTER of a kind of object that is not modelled')

    def _alter_type(self, statement, cursor):
        name = self.object_name(cursor)
        if cursor.accept_seq('ADD', 'VALUE'):
            guarded = cursor.accept_seq('IF', 'NOT', 'EXISTS')
            value = cursor.take()
            if value is None or value.kind != 'string':
                raise _Unsupported('enum value')
            before = after = None
            if cursor.accept('BEFORE'):
                before = cursor.take().value
            elif cursor.accept('AFTER'):
                after = cursor.take().value
            return ParsedStatement(statement, 'ddl', [op('add_enum_value', name, value.value, before, after, guarded)],
                                   guarded=guarded)
        if cursor.accept_seq('RENAME', 'VALUE'):
            old = cursor.take().value
            cursor.accept('TO')
            return ParsedStatement(statement, 'ddl', [op('rename_enum_value', name, old, cursor.take().value)])
        if cursor.accept_seq('RENAME', 'TO'):
            return ParsedStatement(statement, 'ddl', [op('rename_type', name, self.name(cursor.take()))])
        raise _Unsupported('ALTER TYPE other than ADD VALUE / RENAME')

    def _alter_table(self, statement, cursor):
        cursor.accept_seq('IF', 'EXISTS')
        cursor.accept('ONLY')
        table = self.object_name(cursor)
        key = self.dialect.key(table, 'table')
        if key in self.temp_tables:
            return ParsedStatement(statement, 'neutral', reason='temporary table')
        ops = []
        guarded = True
        actions = split_top_level(cursor.rest())
        renamed_to = None
        for action in actions:
            if not action:
                continue
            action_ops, action_guarded = self._alter_action(table, action)
            guarded = guarded and action_guarded
            ops.extend(action_ops)
            for one in action_ops:
                if one.method == 'rename_table':
                    renamed_to = one.args[1]
        if renamed_to is not None and key in self.created_tables:
            self.created_tables.add(self.dialect.key(renamed_to, 'table'))
        return ParsedStatement(statement, 'ddl', ops, guarded=guarded and bool(ops))

    def _alter_action(self, table, action):
        sub = _Cursor(action)
        engine = self.engine
        if _is(sub.peek(), 'ALGORITHM', 'LOCK') and _punct(sub.peek(1), '='):
            return [], True
        if sub.accept('ADD'):
            return self._alter_add(table, sub)
        if sub.accept('DROP'):
            return self._alter_drop(table, sub)
        if sub.accept('RENAME'):
            if sub.accept('TO', 'AS') or (engine == 'mysql' and not _is(sub.peek(), 'COLUMN', 'INDEX', 'KEY', 'CONSTRAINT')
                                          and not _is(sub.peek(1), 'TO')):
                return [op('rename_table', table, self.object_name(sub))], False
            if sub.accept('CONSTRAINT'):
                old = self.name(sub.take())
                sub.accept('TO')
                return [op('rename_constraint', table, old, self.name(sub.take()))], False
            if sub.accept('INDEX', 'KEY'):
                old = self.name(sub.take())
                sub.accept('TO')
                return [op('rename_index', old, self.name(sub.take()), table)], False
            sub.accept('COLUMN')
            old = self.name(sub.take())
            if not sub.accept('TO'):
                raise _Unsupported('RENAME')
            return [op('rename_column', table, old, self.name(sub.take()))], False
        if sub.accept('ALTER'):
            sub.accept('COLUMN')
            column = self.name(sub.take())
            return self._alter_column(table, column, sub), False
        if engine == 'mysql' and sub.accept('MODIFY'):
            sub.accept('COLUMN')
            guarded = sub.accept_seq('IF', 'EXISTS')
            definition = self.column_def(sub.rest())
            return [op('redefine_column', table, definition.name, definition)], guarded
        if engine == 'mysql' and sub.accept('CHANGE'):
            sub.accept('COLUMN')
            guarded = sub.accept_seq('IF', 'EXISTS')
            old = self.name(sub.take())
            definition = self.column_def(sub.rest())
            return [op('redefine_column', table, old, definition)], guarded
        if engine == 'postgresql' and (sub.accept('ENABLE') or sub.accept('DISABLE')):
            enabled = _is(action[0], 'ENABLE')
            if sub.accept_seq('ROW', 'LEVEL', 'SECURITY'):
                return [op('set_table', table, rls=enabled)], True
            raise _Unsupported('ENABLE/DISABLE %s' % (sub.peek().text if sub.peek() else ''))
        if engine == 'postgresql' and (sub.accept('FORCE') or sub.accept_seq('NO', 'FORCE')):
            if sub.accept_seq('ROW', 'LEVEL', 'SECURITY'):
                raise _Unsupported('FORCE ROW LEVEL SECURITY')
        raise _Unsupported('ALTER TABLE %s' % ' '.join(t.text for t in action[:3]))

    def _alter_add(self, table, sub):
        engine = self.engine
        name = None
        if sub.accept('CONSTRAINT'):
            if not _is(sub.peek(), 'PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'EXCLUDE'):
                name = self.name(sub.take())
        if _is(sub.peek(), 'PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'INDEX', 'KEY', 'FULLTEXT', 'SPATIAL', 'EXCLUDE'):
            if _is(sub.peek(), 'EXCLUDE'):
                raise _Unsupported('EXCLUDE constraint')
            if engine == 'mysql' and _is(sub.peek(), 'INDEX', 'KEY') and _is(sub.peek(1), 'IF'):
                sub.take()
                sub.accept_seq('IF', 'NOT', 'EXISTS')
                index_name = self.name(sub.take())
                method = self._index_using(sub)
                return [op('create_index', index_name, table, self.index_elements(sub.paren_body()), method=method,
                           if_not_exists=True)], True
            if any(_is(t, 'USING') for t in sub.rest()) and engine == 'postgresql' and \
                    any(_is(t, 'INDEX') for t in sub.rest()):
                raise _Unsupported('constraint USING INDEX')
            parsed = self._table_element(table, sub.rest(), name)
            if isinstance(parsed, ConstraintDef):
                return [op('add_constraint', table, parsed)], False
            return [parsed], False
        sub.accept('COLUMN')
        guarded = sub.accept_seq('IF', 'NOT', 'EXISTS')
        if _punct(sub.peek(), '(') and engine == 'mysql':
            return [op('add_column', table, self.column_def(part), guarded)
                    for part in split_top_level(sub.paren_body()) if part], guarded
        return [op('add_column', table, self.column_def(sub.rest()), guarded)], guarded

    def _alter_drop(self, table, sub):
        engine = self.engine
        if sub.accept('CONSTRAINT') or (engine == 'mysql' and sub.accept('CHECK')):
            guarded = sub.accept_seq('IF', 'EXISTS')
            return [op('drop_constraint', table, self.name(sub.take()), guarded)], guarded
        if engine == 'mysql' and sub.accept_seq('FOREIGN', 'KEY'):
            guarded = sub.accept_seq('IF', 'EXISTS')
            return [op('drop_constraint', table, self.name(sub.take()), guarded, 'f')], guarded
        if engine == 'mysql' and sub.accept_seq('PRIMARY', 'KEY'):
            return [op('drop_constraint', table, 'PRIMARY', False, 'p')], False
        if engine == 'mysql' and sub.accept('INDEX', 'KEY'):
            guarded = sub.accept_seq('IF', 'EXISTS')
            return [op('drop_index', self.name(sub.take()), table, guarded)], guarded
        sub.accept('COLUMN')
        guarded = sub.accept_seq('IF', 'EXISTS')
        return [op('drop_column', table, self.name(sub.take()), guarded)], guarded

    def _alter_column(self, table, column, sub):
        engine = self.engine
        if sub.accept_seq('SET', 'DATA', 'TYPE') or sub.accept('TYPE'):
            type_tokens = []
            collation = None
            while not sub.at_end() and not _is(sub.peek(), 'USING', 'COLLATE'):
                type_tokens.append(sub.take())
            if sub.accept('COLLATE'):
                tok = sub.take()
                collation = (tok.value if tok.kind == 'ident' else tok.text).lower()
            changes = dict(type=self.dialect.canonical_type(type_tokens))
            if collation is not None:
                changes['collation'] = collation
            return [op('alter_column', table, column, **changes)]
        if sub.accept_seq('SET', 'DEFAULT'):
            return [op('alter_column', table, column, default=self.dialect.canonical_default(sub.rest()))]
        if sub.accept_seq('DROP', 'DEFAULT'):
            return [op('alter_column', table, column, default=None)]
        if sub.accept_seq('SET', 'NOT', 'NULL'):
            return [op('alter_column', table, column, nullable=False)]
        if sub.accept_seq('DROP', 'NOT', 'NULL'):
            return [op('alter_column', table, column, nullable=True)]
        if engine == 'postgresql' and sub.accept('DROP') and sub.accept('IDENTITY'):
            return [op('alter_column', table, column, identity=None)]
        if engine == 'postgresql' and sub.accept('ADD') and sub.accept('GENERATED'):
            kind = 'a' if sub.accept('ALWAYS') else 'd'
            return [op('alter_column', table, column, identity=kind, nullable=False)]
        raise _Unsupported('ALTER COLUMN %s' % ' '.join(t.text for t in sub.rest()[:2]))

    # --- DROP, RENAME, COMMENT -------------------------------------------------------------------

    def _drop(self, statement, cursor):
        cursor.accept('MATERIALIZED')
        temporary = cursor.accept('TEMPORARY')
        kind_tok = cursor.take()
        kind = kind_tok.text.upper() if kind_tok is not None else ''
        if kind == 'INDEX':
            cursor.accept('CONCURRENTLY')
        guarded = cursor.accept_seq('IF', 'EXISTS')
        if kind in ('FUNCTION', 'PROCEDURE'):
            return self._drop_routines(statement, cursor, guarded)
        if kind == 'TRIGGER':
            name = self.name(cursor.take())
            table = self.object_name(cursor) if cursor.accept('ON') else None
            return ParsedStatement(statement, 'ddl', [op('drop_trigger', name, table, guarded)], guarded=guarded)
        if kind == 'POLICY':
            name = self.name(cursor.take())
            if not cursor.accept('ON'):
                raise _Unsupported('policy without table')
            return ParsedStatement(statement, 'ddl', [op('drop_policy', self.object_name(cursor), name, guarded)],
                                   guarded=guarded)
        names = []
        while True:
            names.append(self.object_name(cursor))
            if not cursor.accept_punct(','):
                break
        ops = []
        neutral = True
        for name in names:
            key = self.dialect.key(name, 'table')
            if kind == 'TABLE' and (key in self.temp_tables or temporary):
                continue
            neutral = False
            if kind == 'TABLE':
                ops.append(op('drop_table', name, guarded, any(_is(t, 'CASCADE') for t in cursor.rest())))
            elif kind == 'INDEX':
                table = None
                if cursor.accept('ON'):
                    table = self.object_name(cursor)
                ops.append(op('drop_index', name, table, guarded))
            elif kind == 'VIEW':
                ops.append(op('drop_view', name, guarded))
            elif kind in ('TYPE', 'DOMAIN'):
                ops.append(op('drop_type', name, guarded))
            elif kind == 'SEQUENCE':
                ops.append(op('drop_sequence', name, guarded))
            elif kind in ('EXTENSION', 'SCHEMA'):
                ops.append(op('drop_simple', kind.lower(), name, guarded))
            else:
                raise _Unsupported('DROP %s' % kind)
        if neutral:
            return ParsedStatement(statement, 'neutral', reason='temporary table')
        return ParsedStatement(statement, 'ddl', ops, guarded=guarded)

    def _drop_routines(self, statement, cursor, guarded):
        ops = []
        while True:
            name = self.object_name(cursor)
            signature = None
            if _punct(cursor.peek(), '(') and self.engine == 'postgresql':
                signature = self._function_signature(cursor.paren_body())
            ops.append(op('drop_function', name, signature, guarded))
            if not cursor.accept_punct(','):
                break
        return ParsedStatement(statement, 'ddl', ops, guarded=guarded)

    def _rename_tables(self, statement, cursor):
        if not cursor.accept('TABLE', 'TABLES'):
            raise _Unsupported('RENAME')
        ops = []
        for part in split_top_level(cursor.rest()):
            sub = _Cursor(part)
            old = self.object_name(sub)
            if not sub.accept('TO'):
                raise _Unsupported('RENAME TABLE')
            ops.append(op('rename_table', old, self.object_name(sub)))
        return ParsedStatement(statement, 'ddl', ops)

    def _comment(self, statement, cursor):
        if not cursor.accept('ON'):
            raise _Unsupported('COMMENT')
        what = cursor.take().text.upper()
        if what not in ('TABLE', 'COLUMN'):
            raise _Unsupported('COMMENT ON %s' % what)
        parts = [self.name(cursor.take())]
        while cursor.accept_punct('.'):
            parts.append(self.name(cursor.take()))
        if not cursor.accept('IS'):
            raise _Unsupported('COMMENT')
        tok = cursor.take()
        text = None if _is(tok, 'NULL') else tok.value
        if what == 'TABLE':
            return ParsedStatement(statement, 'ddl', [op('set_table', parts[-1], comment=text)])
        if len(parts) < 2:
            raise _Unsupported('COMMENT ON COLUMN')
        return ParsedStatement(statement, 'ddl', [op('alter_column', parts[-2], parts[-1], comment=text)])


class _PgIndexName(object):
    """The name PostgreSQL chooses for an unnamed index, decided against the schema it is created in."""

    def __init__(self, table, addition, label):
        self.table = table
        self.addition = addition
        self.label = label

    def resolve(self, model):
        return model.choose_relation_name(self.table, self.addition, self.label)


class _MySQLIndexName(object):
    """The name MySQL chooses for an unnamed index: its first column, numbered when taken."""

    def __init__(self, table, column):
        self.table = table
        self.column = column

    def resolve(self, model):
        return model.unused_mysql_index_name(model.k('table', self.table), self.column)


def _starts_with_argument_name(part):
    """``name type`` rather than a type of two words (``double precision``, ``character varying``, ``time with ...``)."""
    first, second = part[0], part[1]
    if first.kind == 'ident':
        return True
    return first.kind == 'word' and second.kind in ('word', 'ident') and not _is(second, 'PRECISION', 'VARYING', 'WITH', 'WITHOUT')


def _created_names(ops):
    """The names an engine must accept for these operations to run (new objects and new names)."""
    for one in ops:
        method, args = one.method, one.args
        if method in ('create_table', 'create_view', 'create_type', 'create_sequence', 'create_function', 'create_trigger',
                      'create_index') and isinstance(args[0], str):
            yield args[0]
        if method == 'create_table':
            for column in args[1]:
                yield column.name
            for constraint in args[2]:
                if constraint.name:
                    yield constraint.name
        elif method in ('add_column', 'redefine_column'):
            yield args[-1].name if method == 'redefine_column' else args[1].name
        elif method == 'add_constraint' and args[1].name:
            yield args[1].name
        elif method.startswith('rename_'):
            yield args[-1] if method != 'rename_index' else args[1]


def _source_text(statement, tokens):
    """The original text of ``tokens`` (a run of the statement's significant tokens)."""
    if not tokens:
        return ''
    first, last = tokens[0], tokens[-1]
    all_tokens = statement.tokens
    try:
        start = next(i for i, t in enumerate(all_tokens) if t is first)
        end = next(i for i in range(len(all_tokens) - 1, -1, -1) if all_tokens[i] is last)
    except StopIteration:
        return ' '.join(t.text for t in tokens)
    return ''.join(t.text for t in all_tokens[start:end + 1])


def parse_migration(sql, dialect):
    """Every statement of a migration script, parsed, in order."""
    parser = MigrationParser(dialect)
    return [parser.parse(statement) for statement in split_script(sql, dialect.engine)]
