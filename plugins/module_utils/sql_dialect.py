# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How each engine spells names, types, defaults and expressions, so that SQL text and catalog
values can be compared.

Identifier rules: PostgreSQL folds unquoted names to lower case and truncates every name to
63 bytes (NAMEDATALEN - 1), so ``CREATE INDEX "<64 characters>"`` creates the 63-byte name and
``DROP INDEX "<64 characters>"`` finds it again. MySQL refuses names longer than 64 characters,
compares column, index and constraint names without case and table names as
``lower_case_table_names`` says. SQLite compares every name without (ASCII) case.

Types and defaults are reduced to a canonical form that the SQL of a migration and the
catalog's own rendering (``format_type``, ``COLUMN_TYPE``, ``pg_get_expr``, ...) share.
Expressions (view bodies, check constraints, index expressions) are reduced to token tuples;
equal tuples prove equality, unequal ones prove nothing (each engine rewrites expressions).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import decimal

from ansible_collections.saferelease.core.plugins.module_utils.sql_script import significant, tokenize

PG_MAX_IDENTIFIER_BYTES = 63
MYSQL_MAX_IDENTIFIER_CHARS = 64

# Kinds whose names follow MySQL's table-name rule (lower_case_table_names); all others ignore case.
_MYSQL_TABLE_KINDS = ('table', 'view')


def _ascii_lower(text):
    return ''.join(ch.lower() if 'A' <= ch <= 'Z' else ch for ch in text)


def truncate_pg_identifier(name):
    """``name`` cut to 63 bytes on a character boundary, as PostgreSQL's truncate_identifier does."""
    raw = name.encode('utf-8')
    if len(raw) <= PG_MAX_IDENTIFIER_BYTES:
        return name
    return raw[:PG_MAX_IDENTIFIER_BYTES].decode('utf-8', 'ignore')


class Dialect(object):
    """One engine's rules; ``flavour`` is ``mariadb`` or ``mysql`` for the mysql engine."""

    def __init__(self, engine, flavour=None, lower_case_table_names=0, namespace=None):
        self.engine = engine
        self.flavour = flavour or ('mariadb' if engine == 'mysql' else None)
        self.lower_case_table_names = int(lower_case_table_names or 0)
        self.namespace = namespace

    # --- identifiers ------------------------------------------------------------------

    def name_of(self, tok):
        """The identifier a token names (folded and truncated as the engine would), or None."""
        if tok is None:
            return None
        if tok.kind == 'ident':
            value = tok.value
        elif tok.kind == 'word':
            value = tok.text.lower() if self.engine == 'postgresql' else tok.text
        elif tok.kind == 'string' and self.engine == 'mysql':
            value = tok.value
        else:
            return None
        if self.engine == 'postgresql':
            value = truncate_pg_identifier(value)
        return value

    def key(self, name, kind='column'):
        """The comparison key of a name of ``kind`` (table, view, column, index, ...)."""
        if name is None:
            return None
        if self.engine == 'postgresql':
            return name
        if self.engine == 'sqlite':
            return _ascii_lower(name)
        if kind in _MYSQL_TABLE_KINDS and self.lower_case_table_names == 0:
            return name
        return name.lower()

    def too_long(self, name):
        """True when the engine refuses the name outright (MySQL: more than 64 characters)."""
        return self.engine == 'mysql' and name is not None and len(name) > MYSQL_MAX_IDENTIFIER_CHARS

    def tokens(self, text):
        return significant(tokenize(text, self.engine))

    # --- types ------------------------------------------------------------------------

    def canonical_type(self, tokens):
        """The canonical spelling of a type given as tokens (SQL or catalog rendering)."""
        tokens = [t for t in tokens if t.kind != 'exec_comment']
        if not tokens:
            return None
        if self.engine == 'postgresql':
            return _pg_type(tokens, self)
        if self.engine == 'mysql':
            return _mysql_type(tokens, self)
        return _sqlite_type(tokens)

    def type_from_text(self, text):
        return self.canonical_type(self.tokens(text)) if text else None

    # --- defaults and expressions -------------------------------------------------------

    def canonical_default(self, tokens):
        """A default expression as ``('lit', text)``, ``('nextval', sequence)`` or ``('expr', tokens)``; None for none/NULL."""
        return _default(list(tokens), self)

    def default_from_text(self, text):
        return self.canonical_default(self.tokens(text)) if text is not None else None

    def canonical_expression(self, tokens):
        """An expression as a tuple of normalised tokens (names keyed, casts and parentheses dropped)."""
        return _expression(list(tokens), self)

    def expression_from_text(self, text):
        return self.canonical_expression(self.tokens(text)) if text is not None else None


# --- types ----------------------------------------------------------------------------

def _words(tokens):
    return [t.text.upper() if t.kind == 'word' else t.text for t in tokens]


def _split_type(tokens):
    """(words, modifier numbers, array suffix, rest) of a type's tokens."""
    words, mods, array = [], [], False
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.kind == 'punct' and tok.text == '(':
            depth, j = 1, i + 1
            inner = []
            while j < n and depth:
                if tokens[j].kind == 'punct' and tokens[j].text == '(':
                    depth += 1
                elif tokens[j].kind == 'punct' and tokens[j].text == ')':
                    depth -= 1
                    if depth == 0:
                        break
                inner.append(tokens[j])
                j += 1
            mods.append(inner)
            i = j + 1
            continue
        if tok.kind == 'punct' and tok.text == '[':
            # int[], int[3][3]: PostgreSQL keeps one array type whatever the dimensions
            array = True
            while i < n and not (tokens[i].kind == 'punct' and tokens[i].text == ']'):
                i += 1
            i += 1
            continue
        words.append(tok)
        i += 1
    return words, mods, array


def _mod_text(inner):
    return ','.join(t.text for t in inner if not (t.kind == 'punct' and t.text == ','))


_PG_ALIASES = {
    'INT': 'integer', 'INTEGER': 'integer', 'INT4': 'integer', 'SERIAL': 'integer', 'SERIAL4': 'integer',
    'SMALLINT': 'smallint', 'INT2': 'smallint', 'SMALLSERIAL': 'smallint', 'SERIAL2': 'smallint',
    'BIGINT': 'bigint', 'INT8': 'bigint', 'BIGSERIAL': 'bigint', 'SERIAL8': 'bigint',
    'REAL': 'real', 'FLOAT4': 'real', 'FLOAT8': 'double precision', 'DOUBLE PRECISION': 'double precision',
    'BOOLEAN': 'boolean', 'BOOL': 'boolean', 'TEXT': 'text', 'DATE': 'date', 'INTERVAL': 'interval',
    'JSON': 'json', 'JSONB': 'jsonb', 'UUID': 'uuid', 'BYTEA': 'bytea', 'XML': 'xml', 'INET': 'inet', 'CIDR': 'cidr',
    'MACADDR': 'macaddr', 'MONEY': 'money', 'OID': 'oid', 'TSVECTOR': 'tsvector', 'TSQUERY': 'tsquery',
    'CITEXT': 'citext', 'NAME': 'name',
}
PG_SERIAL_TYPES = ('SERIAL', 'SERIAL4', 'BIGSERIAL', 'SERIAL8', 'SMALLSERIAL', 'SERIAL2')


def _pg_type(tokens, dialect):
    words, mods, array = _split_type(tokens)
    suffix = '[]' if array or any(_is_word(t, 'ARRAY') for t in words) else ''
    words = [t for t in words if not _is_word(t, 'ARRAY')]
    if any(t.kind == 'ident' or _is_punct(t, '.') for t in words):
        return _pg_user_type(words, mods, suffix, dialect)
    upper = ' '.join(_words(words))
    zone = ''
    for phrase, replacement in ((' WITHOUT TIME ZONE', ''), (' WITH TIME ZONE', ' tz')):
        if upper.endswith(phrase):
            upper = upper[:-len(phrase)]
            zone = replacement
    mod = _mod_text(mods[0]) if mods else None
    if upper in ('TIMESTAMP', 'TIMESTAMPTZ', 'TIME', 'TIMETZ'):
        with_zone = upper.endswith('TZ') or zone == ' tz'
        base = 'timestamp' if upper.startswith('TIMESTAMP') else 'time'
        precision = '(%s)' % mod if mod else ''
        return '%s%s %s time zone%s' % (base, precision, 'with' if with_zone else 'without', suffix)
    if upper in ('VARCHAR', 'CHARACTER VARYING', 'CHAR VARYING'):
        return 'character varying' + ('(%s)' % mod if mod else '') + suffix
    if upper in ('CHAR', 'CHARACTER', 'BPCHAR'):
        if upper == 'BPCHAR' and not mod:
            return 'bpchar' + suffix
        return 'character(%s)' % (mod or '1') + suffix
    if upper in ('DECIMAL', 'NUMERIC', 'DEC'):
        return 'numeric' + ('(%s)' % mod if mod else '') + suffix
    if upper == 'FLOAT':
        precision = int(mod) if mod and mod.isdigit() else 53
        return ('real' if precision <= 24 else 'double precision') + suffix
    if upper in ('BIT VARYING', 'VARBIT'):
        return 'bit varying' + ('(%s)' % mod if mod else '') + suffix
    if upper == 'BIT':
        return 'bit(%s)' % (mod or '1') + suffix
    if upper in _PG_ALIASES:
        return _PG_ALIASES[upper] + suffix
    # an unquoted user or extension type (vector(1536), geometry(Point,4326), a lower-case enum)
    return _pg_user_type(words, mods, suffix, dialect)


def _pg_user_type(words, mods, suffix, dialect):
    """A user or extension type by its unqualified name, however it was quoted or qualified."""
    names = [dialect.name_of(t) for t in words if t.kind in ('ident', 'word')]
    base = '"%s"' % (names[-1] if names else '?')
    return base + ('(%s)' % _mod_text(mods[0]) if mods else '') + suffix


_MYSQL_INTEGERS = ('TINYINT', 'SMALLINT', 'MEDIUMINT', 'INT', 'INTEGER', 'BIGINT')
_MYSQL_ALIASES = {'INTEGER': 'int', 'BOOL': 'tinyint(1)', 'BOOLEAN': 'tinyint(1)', 'DOUBLE PRECISION': 'double',
                  'REAL': 'double', 'NUMERIC': 'decimal', 'DEC': 'decimal', 'FIXED': 'decimal', 'CHARACTER': 'char',
                  'CHARACTER VARYING': 'varchar', 'NATIONAL VARCHAR': 'varchar', 'NVARCHAR': 'varchar',
                  'NCHAR': 'char', 'LONG VARCHAR': 'mediumtext', 'LONG': 'mediumtext'}


def _mysql_type(tokens, dialect):
    words, mods, _array = _split_type(tokens)
    flags = []
    names = []
    for tok in words:
        word = tok.text.upper() if tok.kind == 'word' else tok.text
        if word in ('UNSIGNED', 'ZEROFILL', 'SIGNED'):
            if word != 'SIGNED':
                flags.append(word.lower())
            continue
        names.append(word)
    upper = ' '.join(names)
    if upper in ('ENUM', 'SET'):
        values = [t.value for t in (mods[0] if mods else []) if t.kind == 'string']
        return '%s(%s)' % (upper.lower(), ','.join("'%s'" % v.replace("'", "''") for v in values))
    base = _MYSQL_ALIASES.get(upper, upper.lower())
    mod = _mod_text(mods[0]) if mods else None
    if base in ('bool', 'tinyint(1)'):
        return 'tinyint(1)'
    if upper in _MYSQL_INTEGERS:
        # display widths (int(11)) mean nothing, except tinyint(1), which is how booleans are kept
        if base == 'tinyint' and mod == '1' and 'zerofill' not in flags:
            return 'tinyint(1)'
        mod = None
        if 'zerofill' in flags and 'unsigned' not in flags:
            flags.insert(0, 'unsigned')
    if base == 'json' and dialect.flavour == 'mariadb':
        base = 'longtext'
    if base == 'decimal':
        parts = (mod or '10').split(',')
        mod = '%s,%s' % (parts[0], parts[1] if len(parts) > 1 else '0')
    if base == 'float' and mod and ',' not in mod and mod.isdigit():
        base, mod = ('float' if int(mod) <= 24 else 'double'), None
    if base in ('char', 'binary', 'bit') and not mod:
        mod = '1'
    if base in ('datetime', 'timestamp', 'time') and mod == '0':
        mod = None
    if base == 'serial':
        return 'bigint unsigned'
    text = base + ('(%s)' % mod if mod else '')
    return ' '.join([text] + sorted(set(flags), key=flags.index))


def _sqlite_type(tokens):
    text = ''
    for tok in tokens:
        piece = tok.text.upper() if tok.kind == 'word' else tok.text
        if text and tok.kind in ('word', 'ident', 'number') and text[-1] not in '(,':
            text += ' '
        text += piece
    return text


# --- defaults and expressions -------------------------------------------------------------

def _is_word(tok, *words):
    return tok is not None and tok.kind == 'word' and tok.text.upper() in words


def _is_punct(tok, text):
    return tok is not None and tok.kind == 'punct' and tok.text == text


# words that end a cast's type name
_AFTER_CAST = ('AND', 'OR', 'NOT', 'IS', 'IN', 'AS', 'FROM', 'WHERE', 'THEN', 'ELSE', 'END', 'WHEN')


def strip_casts(tokens):
    """Tokens without PostgreSQL ``::type`` casts (``'x'::text``, ``ARRAY[]::text[]``)."""
    out = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if _is_punct(tok, ':') and i + 1 < n and _is_punct(tokens[i + 1], ':'):
            i += 2
            # the type: words/idents joined by '.', optional (...) and [] groups, multi-word names
            while i < n:
                cur = tokens[i]
                if cur.kind in ('word', 'ident'):
                    if out and cur.kind == 'word' and cur.text.upper() in _AFTER_CAST:
                        break
                    i += 1
                elif _is_punct(cur, '.'):
                    i += 1
                elif _is_punct(cur, '(') and i > 0 and tokens[i - 1].kind in ('word', 'ident'):
                    depth = 0
                    while i < n:
                        if _is_punct(tokens[i], '('):
                            depth += 1
                        elif _is_punct(tokens[i], ')'):
                            depth -= 1
                            if depth == 0:
                                i += 1
                                break
                        i += 1
                elif _is_punct(cur, '['):
                    i += 1
                    while i < n and not _is_punct(tokens[i], ']'):
                        i += 1
                    i += 1
                else:
                    break
                if i < n and tokens[i].kind in ('word', 'ident') and tokens[i - 1].kind in ('word', 'ident') \
                        and tokens[i].text.upper() not in ('PRECISION', 'VARYING', 'WITH', 'WITHOUT', 'TIME', 'ZONE'):
                    break
            continue
        out.append(tok)
        i += 1
    return out


def _strip_outer_parens(tokens):
    while len(tokens) >= 2 and _is_punct(tokens[0], '(') and _is_punct(tokens[-1], ')'):
        depth = 0
        closes_at_end = True
        for index, tok in enumerate(tokens):
            if _is_punct(tok, '('):
                depth += 1
            elif _is_punct(tok, ')'):
                depth -= 1
                if depth == 0 and index != len(tokens) - 1:
                    closes_at_end = False
                    break
        if not closes_at_end:
            break
        tokens = tokens[1:-1]
    return tokens


def _number(text):
    try:
        value = decimal.Decimal(text.strip())
    except (decimal.InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    normalized = value.normalize()
    # normalize() writes 100 as 1E+2
    return format(normalized, 'f') if normalized == normalized.to_integral() else str(normalized)


_NOW_WORDS = ('CURRENT_TIMESTAMP', 'NOW', 'LOCALTIMESTAMP', 'TRANSACTION_TIMESTAMP')


def _default(tokens, dialect):
    tokens = [t for t in tokens if t.kind != 'exec_comment']
    if dialect.engine == 'postgresql':
        tokens = strip_casts(tokens)
    tokens = _strip_outer_parens(tokens)
    if not tokens or (len(tokens) == 1 and _is_word(tokens[0], 'NULL')):
        return None
    literal = _literal(tokens, dialect)
    if literal is not None:
        return ('lit', literal)
    first = tokens[0]
    if _is_word(first, *_NOW_WORDS):
        rest = [t.text for t in tokens[1:] if t.kind == 'number']
        # now() and CURRENT_TIMESTAMP are the same function; MySQL keeps the precision
        return ('now', rest[0] if rest and dialect.engine == 'mysql' and rest[0] != '0' else None)
    if _is_word(first, 'NEXTVAL') and len(tokens) >= 3:
        sequence = [t for t in tokens if t.kind == 'string']
        name = sequence[0].value if sequence else None
        if name is not None:
            parts = [p for p in name.replace('"', '').split('.') if p]
            name = truncate_pg_identifier(parts[-1]) if parts else None
        return ('nextval', name)
    return ('expr', _expression(tokens, dialect))


def _literal(tokens, dialect):
    """Text of a single literal (string, number, boolean); None for anything else."""
    sign = ''
    if len(tokens) == 2 and _is_punct(tokens[0], '-') and tokens[1].kind == 'number':
        sign, tokens = '-', tokens[1:]
    if len(tokens) == 2 and _is_punct(tokens[0], '+') and tokens[1].kind == 'number':
        tokens = tokens[1:]
    if len(tokens) != 1:
        return None
    tok = tokens[0]
    if tok.kind == 'number':
        return _number(sign + tok.text)
    if tok.kind == 'string':
        number = _number(tok.value) if tok.value.strip() and tok.value.strip()[0] in '+-.0123456789' else None
        return number if number is not None else tok.value
    if _is_word(tok, 'TRUE', 'FALSE'):
        truth = tok.text.upper() == 'TRUE'
        if dialect.engine == 'mysql':
            return '1' if truth else '0'
        return 'true' if truth else 'false'
    return None


def _expression(tokens, dialect):
    tokens = [t for t in tokens if t.kind != 'exec_comment']
    if dialect.engine == 'postgresql':
        tokens = strip_casts(tokens)
    out = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.kind in ('word', 'ident') and _is_punct(nxt, '.') and i + 2 < len(tokens) \
                and tokens[i + 2].kind in ('word', 'ident', 'punct'):
            # qualifiers (schema.table.column) are spelled differently by every catalog
            i += 2
            continue
        if tok.kind == 'punct' and tok.text in '()':
            i += 1
            continue
        if tok.kind == 'string':
            out.append("'" + tok.value)
        elif tok.kind == 'number':
            out.append(_number(tok.text) or tok.text)
        elif tok.kind == 'ident':
            out.append('"' + dialect.key(dialect.name_of(tok)))
        elif tok.kind == 'word':
            upper = tok.text.upper()
            if upper == 'AS' and nxt is not None and nxt.kind in ('word', 'ident') and out \
                    and out[-1].lstrip('"') == dialect.key(dialect.name_of(nxt)):
                # "x AS x": MySQL writes an alias for every column of a view
                i += 2
                continue
            out.append(upper if upper in _SQL_KEYWORDS else '"' + dialect.key(dialect.name_of(tok)))
        else:
            out.append(tok.text)
        i += 1
    return tuple(out)


_SQL_KEYWORDS = frozenset((
    'SELECT', 'FROM', 'WHERE', 'AND', 'OR', 'NOT', 'NULL', 'IS', 'IN', 'AS', 'ON', 'JOIN', 'LEFT', 'RIGHT', 'INNER',
    'OUTER', 'FULL', 'CROSS', 'GROUP', 'BY', 'ORDER', 'HAVING', 'LIMIT', 'OFFSET', 'UNION', 'ALL', 'DISTINCT', 'CASE',
    'WHEN', 'THEN', 'ELSE', 'END', 'BETWEEN', 'LIKE', 'ILIKE', 'EXISTS', 'TRUE', 'FALSE', 'ASC', 'DESC', 'WITH',
    'COALESCE', 'COUNT', 'SUM', 'MIN', 'MAX', 'AVG', 'LOWER', 'UPPER', 'CAST', 'USING', 'NULLS', 'FIRST', 'LAST',
    'INTERVAL', 'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'NOW', 'ANY', 'SOME', 'ARRAY', 'VALUES', 'NEW', 'OLD', 'BEGIN',
    'RETURN', 'RETURNS', 'DECLARE', 'IF', 'ELSIF', 'SET', 'UPDATE', 'INSERT', 'DELETE', 'INTO', 'FOR', 'EACH', 'ROW',
    'LOOP', 'WHILE', 'PERFORM', 'RAISE', 'EXCEPTION', 'NOTICE', 'TRIGGER', 'FUNCTION', 'LANGUAGE', 'TO_TSVECTOR',
    'SETWEIGHT', 'ESCAPE', 'DEFAULT', 'OVER', 'PARTITION', 'WINDOW', 'FILTER', 'LATERAL', 'RECURSIVE',
))
