# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tokenising and splitting multi-statement SQL scripts (migration.sql files).

Understands ``--`` and ``/* */`` comments (nested in PostgreSQL), ``#`` comments in MySQL,
single-quoted strings (backslash escapes in MySQL and PostgreSQL ``E''``), quoted identifiers
(``"..."``, MySQL/SQLite backticks, SQLite ``[...]``), PostgreSQL dollar quoting, and
``BEGIN ... END`` bodies of triggers and stored routines, so semicolons inside any of those
never split a statement.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from collections import namedtuple

DIALECTS = ('mysql', 'postgresql', 'sqlite')

# kind: ws, comment, exec_comment (MySQL /*! */), string, ident (quoted identifier), word, number, punct, param
Token = namedtuple('Token', ['kind', 'text', 'value'])


class SqlScriptError(Exception):
    """The script cannot be tokenised (an unterminated string, comment or quote)."""

    def __init__(self, message):
        super(SqlScriptError, self).__init__(message)
        self.message = message


def _line_of(sql, pos):
    return sql.count('\n', 0, pos) + 1


def _is_word_start(ch):
    return ch.isalpha() or ch == '_' or ord(ch) > 127


def _is_word_char(ch, dialect):
    return ch.isalnum() or ch == '_' or ord(ch) > 127 or (ch == '$' and dialect in ('mysql', 'postgresql'))


def _scan_quoted(sql, pos, quote, backslash):
    """Return the end index (exclusive) of a quoted run starting at ``pos`` (the opening quote)."""
    i = pos + 1
    n = len(sql)
    while i < n:
        ch = sql[i]
        if backslash and ch == '\\':
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    raise SqlScriptError('Unterminated %s starting on line %d.' % (
        'string' if quote == "'" else 'quoted identifier', _line_of(sql, pos)))


def _unquote(text, quote, backslash):
    body = text[1:-1]
    if backslash:
        out = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == '\\' and i + 1 < len(body):
                nxt = body[i + 1]
                out.append({'n': '\n', 't': '\t', 'r': '\r', '0': '\x00'}.get(nxt, nxt))
                i += 2
                continue
            if ch == quote and i + 1 < len(body) and body[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            out.append(ch)
            i += 1
        return ''.join(out)
    return body.replace(quote * 2, quote)


def tokenize(sql, dialect):
    """Yield :class:`Token` for the whole script; concatenating ``text`` gives ``sql`` back."""
    if dialect not in DIALECTS:
        raise ValueError('unknown SQL dialect %r' % dialect)
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ''
        if ch.isspace():
            j = i + 1
            while j < n and sql[j].isspace():
                j += 1
            yield Token('ws', sql[i:j], None)
            i = j
        elif ch == '-' and nxt == '-' and (dialect != 'mysql' or i + 2 >= n or sql[i + 2].isspace() or ord(sql[i + 2]) < 32):
            j = sql.find('\n', i)
            j = n if j < 0 else j
            yield Token('comment', sql[i:j], None)
            i = j
        elif ch == '#' and dialect == 'mysql':
            j = sql.find('\n', i)
            j = n if j < 0 else j
            yield Token('comment', sql[i:j], None)
            i = j
        elif ch == '/' and nxt == '*':
            depth = 1
            j = i + 2
            while j < n and depth:
                if sql.startswith('*/', j):
                    depth -= 1
                    j += 2
                elif dialect == 'postgresql' and sql.startswith('/*', j):
                    depth += 1
                    j += 2
                else:
                    j += 1
            if depth:
                raise SqlScriptError('Unterminated /* comment starting on line %d.' % _line_of(sql, i))
            # MySQL runs /*! ... */ and /*+ ... */ contents: they count as code
            kind = 'exec_comment' if dialect == 'mysql' and sql[i + 2:i + 3] in ('!', '+') else 'comment'
            yield Token(kind, sql[i:j], None)
            i = j
        elif ch == "'" or (ch in 'eE' and nxt == "'" and dialect == 'postgresql') or (ch in 'nN' and nxt == "'"):
            start = i
            backslash = dialect == 'mysql'
            if ch != "'":
                backslash = backslash or ch in 'eE'
                i += 1
            j = _scan_quoted(sql, i, "'", backslash)
            yield Token('string', sql[start:j], _unquote(sql[i:j], "'", backslash))
            i = j
        elif ch == '"':
            # MySQL (without ANSI_QUOTES) reads "..." as a string
            backslash = dialect == 'mysql'
            j = _scan_quoted(sql, i, '"', backslash)
            kind = 'string' if dialect == 'mysql' else 'ident'
            yield Token(kind, sql[i:j], _unquote(sql[i:j], '"', backslash))
            i = j
        elif ch == '`' and dialect in ('mysql', 'sqlite'):
            j = _scan_quoted(sql, i, '`', False)
            yield Token('ident', sql[i:j], _unquote(sql[i:j], '`', False))
            i = j
        elif ch == '[' and dialect == 'sqlite':
            j = sql.find(']', i)
            if j < 0:
                raise SqlScriptError('Unterminated [identifier] starting on line %d.' % _line_of(sql, i))
            yield Token('ident', sql[i:j + 1], sql[i + 1:j])
            i = j + 1
        elif ch == '$' and dialect == 'postgresql':
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == '_'):
                j += 1
            tag = sql[i:j + 1] if j < n and sql[j] == '$' else None
            if tag is not None and not sql[i + 1:i + 2].isdigit():
                end = sql.find(tag, j + 1)
                if end < 0:
                    raise SqlScriptError('Unterminated dollar-quoted string %s starting on line %d.' % (tag, _line_of(sql, i)))
                yield Token('string', sql[i:end + len(tag)], sql[j + 1:end])
                i = end + len(tag)
            else:
                k = i + 1
                while k < n and sql[k].isdigit():
                    k += 1
                yield Token('param', sql[i:k], None)
                i = k
        elif _is_word_start(ch):
            j = i + 1
            while j < n and _is_word_char(sql[j], dialect):
                j += 1
            yield Token('word', sql[i:j], sql[i:j])
            i = j
        elif ch.isdigit() or (ch == '.' and nxt.isdigit()):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == '.'):
                j += 1
            yield Token('number', sql[i:j], sql[i:j])
            i = j
        else:
            yield Token('punct', ch, ch)
            i += 1


def significant(tokens):
    """The tokens that carry meaning (no whitespace, no comments)."""
    return [t for t in tokens if t.kind not in ('ws', 'comment')]


_ROUTINE_KINDS = ('TRIGGER', 'PROCEDURE', 'FUNCTION', 'EVENT')
_END_COMPANIONS = ('IF', 'LOOP', 'WHILE', 'REPEAT')


_ROUTINE_MODIFIERS = ('OR', 'REPLACE', 'TEMP', 'TEMPORARY', 'DEFINER', 'CONSTRAINT', 'AGGREGATE', 'CURRENT_USER')


def _is_routine(words):
    """True when the statement so far is CREATE [modifiers] TRIGGER/PROCEDURE/FUNCTION/EVENT."""
    if not words or words[0] != 'CREATE':
        return False
    for word in words[1:8]:
        if word in _ROUTINE_KINDS:
            return True
        if word not in _ROUTINE_MODIFIERS:
            return False
    return False


class Statement(object):
    """One statement of a script: its text (no trailing ``;``), tokens and starting line."""

    def __init__(self, text, tokens, line):
        self.text = text
        self.tokens = tokens
        self.line = line

    @property
    def summary(self):
        """The statement on one line without comments, shortened for messages."""
        text = ' '.join(t.text for t in significant(self.tokens))
        text = ' '.join(text.split())
        return text if len(text) <= 120 else text[:117] + '...'

    @property
    def words(self):
        return [t.text.upper() for t in significant(self.tokens) if t.kind == 'word']

    def __repr__(self):
        return 'Statement(line=%d, %r)' % (self.line, self.text[:60])


def split_script(sql, dialect):
    """Split ``sql`` into :class:`Statement` objects; comment-only pieces are dropped."""
    statements = []
    current = []
    start_line = 1
    line = 1
    depth = 0
    words = []
    pending_end = False

    def flush():
        sig = significant(current)
        if sig:
            # leading comments belong to no statement; the text starts at its first keyword
            first = current.index(sig[0])
            lead = ''.join(t.text for t in current[:first])
            text = ''.join(t.text for t in current[first:]).strip()
            statements.append(Statement(text, list(current[first:]), start_line + lead.count('\n')))

    for tok in tokenize(sql, dialect):
        if tok.kind == 'punct' and tok.text == ';' and depth <= 0:
            flush()
            current = []
            words = []
            depth = 0
            pending_end = False
            line += tok.text.count('\n')
            start_line = line
            continue
        current.append(tok)
        line += tok.text.count('\n')
        if tok.kind != 'word':
            if tok.kind not in ('ws', 'comment'):
                pending_end = False
            continue
        word = tok.text.upper()
        if len(words) < 8:
            words.append(word)
        if not _is_routine(words):
            continue
        if pending_end:
            pending_end = False
            if word in _END_COMPANIONS:
                # END IF / END LOOP / ...: closes a block that never opened a level
                depth += 1
                continue
            if word == 'CASE':
                # END CASE closes the CASE statement counted on the way in
                continue
        if word in ('BEGIN', 'CASE'):
            depth += 1
        elif word == 'END':
            depth -= 1
            pending_end = True
    flush()
    return statements


def split_statements(sql, dialect):
    """Split ``sql`` into statement strings (no trailing ``;``), dropping comment-only pieces."""
    return [s.text for s in split_script(sql, dialect)]
