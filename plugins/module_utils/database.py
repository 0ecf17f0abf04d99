# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Database targets described the way Prisma describes them, and connections to them.

Everything here takes plain values (URLs, paths, strings) and raises exceptions of the
types below; modules turn those into ``fail_json``. No message ever contains a password.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import os
import re

from urllib.parse import urlsplit, unquote, parse_qsl, quote


ENGINES = ('mysql', 'postgresql', 'sqlite')
DEFAULT_PORTS = {'mysql': 3306, 'postgresql': 5432}
REDACTED = '********'


class DatabaseError(Exception):
    """Base error: ``message`` says what failed and what to do next."""

    def __init__(self, message, hint=None):
        super(DatabaseError, self).__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return self.message


class DatabaseUrlError(DatabaseError):
    """The connection URL is missing or malformed."""


class EnvFileError(DatabaseError):
    """The .env file is missing, unreadable, or lacks the variable."""


class DriverMissingError(DatabaseError):
    """The Python driver for the engine is not installed on the target."""


class DatabaseConnectError(DatabaseError):
    """The database server could not be reached (network, socket, timeout)."""


class DatabaseAuthError(DatabaseError):
    """The server refused the credentials."""


class DatabaseMissingError(DatabaseError):
    """The server is reachable but the database (or SQLite file) does not exist."""


class DatabaseTarget(object):
    """One database as Prisma sees it: engine plus connection details.

    ``engine`` is the Prisma provider name: ``mysql`` (MySQL and MariaDB), ``postgresql``
    or ``sqlite``. ``schema`` is the PostgreSQL schema (``?schema=``, default ``public``);
    ``path`` is the absolute SQLite file path.
    """

    def __init__(self, engine, host=None, port=None, user=None, password=None, database=None,
                 schema=None, path=None, params=None, socket=None):
        if engine not in ENGINES:
            raise DatabaseUrlError('Unsupported database engine %r; use one of %s.' % (engine, ', '.join(ENGINES)))
        self.engine = engine
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.schema = schema
        self.path = path
        self.params = dict(params or {})
        self.socket = socket

    @property
    def provider(self):
        """The provider name written in migration_lock.toml for this target."""
        return self.engine

    @property
    def namespace(self):
        """Where Prisma's tables live: the MySQL database, the PostgreSQL schema, SQLite's ``main``."""
        if self.engine == 'mysql':
            return self.database
        if self.engine == 'postgresql':
            return self.schema or 'public'
        return 'main'

    def redacted(self):
        """The target as a URL with the password replaced by ``********``."""
        if self.engine == 'sqlite':
            return 'file:%s' % self.path
        scheme = 'mysql' if self.engine == 'mysql' else 'postgresql'
        auth = ''
        if self.user:
            auth = quote(self.user, safe='')
            if self.password:
                auth += ':' + REDACTED
            auth += '@'
        host = self.host or ''
        if ':' in host and not host.startswith('['):
            host = '[%s]' % host
        port = ':%s' % self.port if self.port else ''
        query = dict(self.params)
        if self.engine == 'postgresql' and self.schema and self.schema != 'public':
            query['schema'] = self.schema
        qs = '&'.join('%s=%s' % (k, quote(str(v), safe='/')) for k, v in sorted(query.items()))
        return '%s://%s%s%s/%s%s' % (scheme, auth, host, port, quote(self.database or '', safe=''), '?' + qs if qs else '')

    def as_dict(self):
        """Connection details without the password, for results."""
        return dict(engine=self.engine, host=self.host, port=self.port, user=self.user, database=self.database,
                    schema=self.namespace if self.engine == 'postgresql' else None, path=self.path,
                    url=self.redacted())

    def scrub(self, text):
        """Remove the password (raw and URL-encoded) from any text."""
        if text is None:
            return text
        text = str(text)
        if self.password:
            for variant in set([self.password, quote(self.password, safe='')]):
                if variant:
                    text = text.replace(variant, REDACTED)
        return text

    def __repr__(self):
        return 'DatabaseTarget(%s)' % self.redacted()


def _split_netloc(netloc):
    """Split ``user:pass@host:port`` keeping the raw (still percent-encoded) parts."""
    userinfo, _sep, hostport = netloc.rpartition('@')
    user = password = None
    if _sep:
        user, colon, password = userinfo.partition(':')
        if not colon:
            password = None
    host, port = hostport, None
    if hostport.startswith('['):
        end = hostport.find(']')
        if end < 0:
            raise DatabaseUrlError('The host in the database URL has an unclosed "[" (IPv6 address).')
        host = hostport[1:end]
        rest = hostport[end + 1:]
        if rest.startswith(':'):
            port = rest[1:]
        elif rest:
            raise DatabaseUrlError('Unexpected text after the IPv6 host in the database URL.')
    elif ':' in hostport:
        host, port = hostport.rsplit(':', 1)
    return user, password, host, port


def _parse_server_url(url, engine):
    # urlsplit refuses nothing; do the checks Prisma's URL parser does ourselves.
    parts = urlsplit(url)
    if not parts.netloc:
        raise DatabaseUrlError(
            'The database URL has no host. Write it as %s://USER:PASSWORD@HOST:PORT/DATABASE.' % (
                'mysql' if engine == 'mysql' else 'postgresql'))
    user, password, host, port = _split_netloc(parts.netloc)
    if port is not None and port != '':
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise DatabaseUrlError('The port in the database URL is not a number between 1 and 65535.')
        port = int(port)
    else:
        port = None
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    database = unquote(parts.path.lstrip('/')) if parts.path else ''
    socket = None
    if engine == 'mysql':
        socket = params.pop('socket', None)
    else:
        # libpq-style ?host=/run/postgresql selects a Unix socket directory
        if params.get('host', '').startswith('/'):
            socket = params.pop('host')
    if not host and not socket:
        raise DatabaseUrlError('The database URL has no host name.')
    if '/' in database:
        raise DatabaseUrlError('The database name in the URL contains "/"; percent-encode it as %2F.')
    if engine == 'mysql' and not database:
        raise DatabaseUrlError('The MySQL database URL names no database: add it as the path, e.g. mysql://USER:PASSWORD@HOST:3306/mydb.')
    if engine == 'postgresql' and not database:
        database = 'postgres'
    schema = None
    if engine == 'postgresql':
        schema = params.pop('schema', None) or 'public'
    return DatabaseTarget(
        engine,
        host=unquote(host) if host else None,
        port=port or (DEFAULT_PORTS[engine] if not socket else port),
        user=unquote(user) if user else None,
        password=unquote(password) if password is not None else None,
        database=database,
        schema=schema,
        params=params,
        socket=socket,
    )


def parse_database_url(url, base_dir=None):
    """Parse a Prisma ``DATABASE_URL`` into a :class:`DatabaseTarget`.

    ``mysql://`` (MySQL and MariaDB), ``postgresql://`` / ``postgres://`` (``?schema=``,
    ``?host=/socket/dir``, ``?sslmode=``...), and ``file:`` / ``sqlite:`` for SQLite. A relative
    SQLite path is resolved against ``base_dir`` (the folder holding ``schema.prisma``), as Prisma does.
    """
    if url is None or not str(url).strip():
        raise DatabaseUrlError('No database URL given: set database_url, or env_file pointing at a .env holding DATABASE_URL.')
    url = str(url).strip()
    if any(ch in url for ch in '\r\n\t'):
        raise DatabaseUrlError('The database URL contains a line break or tab; check the quoting in your .env file.')
    scheme, sep, _rest = url.partition(':')
    scheme = scheme.lower()
    if not sep:
        raise DatabaseUrlError(
            'The database URL has no scheme. Start it with mysql://, postgresql:// or file: (SQLite), as in schema.prisma.')
    if scheme == 'mysql':
        return _parse_server_url(url, 'mysql')
    if scheme in ('postgresql', 'postgres'):
        return _parse_server_url(url, 'postgresql')
    if scheme in ('file', 'sqlite'):
        return _parse_sqlite_url(url, base_dir)
    if scheme == 'mariadb':
        raise DatabaseUrlError('Prisma does not accept mariadb:// URLs; write mysql://... (the mysql provider serves MariaDB too).')
    if scheme in ('prisma', 'prisma+postgres'):
        raise DatabaseUrlError('Prisma Accelerate / Data Proxy URLs cannot be used for migrations; give the direct database URL.')
    raise DatabaseUrlError('Unsupported database URL scheme %r; use mysql://, postgresql:// or file: (SQLite).' % scheme)


def _parse_sqlite_url(url, base_dir):
    # quaint: strip "file:" or "sqlite:", then everything before "?" is the path, verbatim.
    if url.lower().startswith('file:'):
        rest = url[5:]
    else:
        rest = url[7:]
    path, _q, query = rest.partition('?')
    if path.startswith('//'):
        # file:///abs/path.db (a URL form some tools write); keep one leading slash
        path = '/' + path.lstrip('/')
    if not path:
        raise DatabaseUrlError('The SQLite URL names no file; write it as file:./dev.db (relative to the prisma folder).')
    if not os.path.isabs(path):
        path = os.path.join(base_dir or os.getcwd(), path)
    path = os.path.normpath(path)
    if os.path.isdir(path):
        raise DatabaseUrlError('The SQLite URL points at a directory (%s); point it at the database file.' % path)
    return DatabaseTarget('sqlite', path=path, database=os.path.basename(path),
                          params=dict(parse_qsl(query, keep_blank_values=True)))


# --- .env files, parsed the way Prisma's dotenv + its dotenv-expand variant do -------------

_DOTENV_LINE = re.compile(
    r"^\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)"
    r"(\s*'(?:\\'|[^'])*'|\s*\"(?:\\\"|[^\"])*\"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?"
    r"\s*(?:#.*)?$",
    re.MULTILINE | re.ASCII)
_EXPAND = re.compile(r'(\\?)\$\{([\w]*)(?::-([^}]*))?\}', re.ASCII)


def parse_env_text(text):
    """Parse .env text like dotenv 16: ``export``, comments, '', "", `` quotes, multi-line quoted values."""
    values = {}
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    for match in _DOTENV_LINE.finditer(text):
        key = match.group(1)
        value = (match.group(2) or '').strip()
        quote_char = value[:1]
        if len(value) >= 2 and quote_char in '\'"`' and value.endswith(quote_char):
            value = value[1:-1]
            if quote_char == '"':
                value = value.replace('\\n', '\n').replace('\\r', '\r')
        values[key] = value
    return values


def expand_env(values, environ=None):
    """Expand ``${VAR}`` (and ``${VAR:-default}``) like Prisma: braces only, ``\\${`` escapes.

    Process environment wins over the file, as in dotenv-expand.
    """
    environ = os.environ if environ is None else environ
    result = {}

    def lookup(name, default, depth):
        if name in environ:
            raw = environ[name]
        elif name in values:
            raw = values[name]
        else:
            raw = default or ''
        return expand(raw, depth + 1) if depth < 10 else raw

    def expand(value, depth=0):
        def repl(m):
            if m.group(1):
                return m.group(0)[1:]
            return lookup(m.group(2), m.group(3), depth)
        return _EXPAND.sub(repl, value)

    for key, value in values.items():
        result[key] = expand(value)
    return result


def read_env_file(path, environ=None):
    """Read a .env file into a dict (values expanded). Raises :class:`EnvFileError`."""
    if not path:
        raise EnvFileError('No env_file given.')
    if not os.path.exists(path):
        raise EnvFileError('The env file %s does not exist. Create it with DATABASE_URL=..., or pass database_url instead.' % path)
    if os.path.isdir(path):
        raise EnvFileError('env_file %s is a directory; point it at the .env file itself.' % path)
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        raise EnvFileError('Cannot read the env file %s (%s); check its permissions.' % (path, exc.strerror or exc))
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError:
        raise EnvFileError('The env file %s is not UTF-8 text.' % path)
    return expand_env(parse_env_text(text), environ=environ)


def database_url_from_env_file(path, variable='DATABASE_URL', environ=None):
    """The value of ``variable`` in the .env file ``path``."""
    values = read_env_file(path, environ=environ)
    value = values.get(variable)
    if not value:
        raise EnvFileError('The env file %s has no %s line (or it is empty). Add %s="..." as in your app\'s .env.' % (path, variable, variable))
    return value


def resolve_target(database_url=None, env_file=None, base_dir=None, variable='DATABASE_URL', environ=None):
    """The target from ``database_url`` or from ``variable`` in ``env_file`` (in that order)."""
    if database_url:
        return parse_database_url(database_url, base_dir=base_dir)
    if env_file:
        return parse_database_url(database_url_from_env_file(env_file, variable, environ=environ), base_dir=base_dir)
    raise DatabaseUrlError('No database given: set database_url, or env_file pointing at a .env file holding %s.' % variable)


# --- identifiers ---------------------------------------------------------------------------

def quote_identifier(engine, name):
    """Quote one identifier for ``engine`` (backticks for MySQL, double quotes otherwise)."""
    if name is None or name == '' or '\x00' in name:
        raise ValueError('invalid identifier')
    if engine == 'mysql':
        return '`%s`' % name.replace('`', '``')
    return '"%s"' % name.replace('"', '""')


def placeholder(engine):
    """The DB-API parameter placeholder of the engine's driver."""
    return '?' if engine == 'sqlite' else '%s'


# --- connections ---------------------------------------------------------------------------

_PG_SSL_PARAMS = {'sslmode': 'sslmode', 'sslcert': 'sslrootcert', 'sslidentity': None, 'sslpassword': None,
                  'application_name': 'application_name', 'options': 'options'}


def _scrubbed(target, exc):
    return target.scrub(str(exc).strip()).replace('\n', ' ')


def _connect_mysql(target, connect_timeout):
    try:
        import pymysql
    except ImportError:
        raise DriverMissingError('PyMySQL is not installed on the target host; install it (pip install PyMySQL or the python3-pymysql package).')
    kwargs = dict(user=target.user or '', password=target.password or '', database=target.database,
                  connect_timeout=connect_timeout, autocommit=True, charset='utf8mb4')
    if target.socket:
        kwargs['unix_socket'] = target.socket
    else:
        kwargs['host'] = target.host
        kwargs['port'] = target.port or 3306
    ssl_accept = target.params.get('sslaccept')
    if target.params.get('sslcert') or ssl_accept:
        ssl = {}
        if target.params.get('sslcert'):
            ssl['ca'] = target.params['sslcert']
        if ssl_accept == 'accept_invalid_certs':
            ssl['check_hostname'] = False
            kwargs['ssl_verify_cert'] = False
        kwargs['ssl'] = ssl
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        where = target.socket or '%s:%s' % (target.host, target.port)
        if code in (1044, 1045, 1698):
            raise DatabaseAuthError(
                'Authentication failed for user %r on MySQL server %s. Check the user and password in DATABASE_URL '
                '(the password is not shown); nothing was changed.' % (target.user, where))
        if code == 1049:
            raise DatabaseMissingError(
                'The MySQL server %s has no database %r. Create it or fix the database name in DATABASE_URL; nothing was changed.'
                % (where, target.database))
        raise DatabaseConnectError(
            'Cannot reach the MySQL server at %s (%s). Check that it is running and reachable from this host; nothing was changed.'
            % (where, _scrubbed(target, exc)))
    except pymysql.err.MySQLError as exc:
        raise DatabaseConnectError('Cannot connect to the MySQL server: %s. Nothing was changed.' % _scrubbed(target, exc))


def _connect_postgresql(target, connect_timeout):
    try:
        import psycopg2
    except ImportError:
        raise DriverMissingError('psycopg2 is not installed on the target host; install it (pip install psycopg2-binary or python3-psycopg2).')
    kwargs = dict(dbname=target.database, user=target.user, password=target.password,
                  connect_timeout=max(2, int(connect_timeout)))
    kwargs['host'] = target.socket or target.host
    kwargs['port'] = target.port or 5432
    for key, libpq_key in _PG_SSL_PARAMS.items():
        if libpq_key and target.params.get(key):
            kwargs[libpq_key] = target.params[key]
    if target.params.get('sslaccept') == 'accept_invalid_certs' and kwargs.get('sslmode') in ('verify-ca', 'verify-full'):
        kwargs['sslmode'] = 'require'
    kwargs = dict((k, v) for k, v in kwargs.items() if v is not None)
    where = target.socket or '%s:%s' % (target.host, target.port)
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        text = _scrubbed(target, exc)
        lowered = text.lower()
        if 'password authentication failed' in lowered or 'no password supplied' in lowered \
                or 'authentication failed' in lowered or 'no pg_hba.conf entry' in lowered:
            raise DatabaseAuthError(
                'Authentication failed for user %r on PostgreSQL server %s. Check the user and password in DATABASE_URL '
                '(the password is not shown) and pg_hba.conf; nothing was changed.' % (target.user, where))
        if 'does not exist' in lowered and 'database' in lowered:
            raise DatabaseMissingError(
                'The PostgreSQL server %s has no database %r. Create it or fix the database name in DATABASE_URL; nothing was changed.'
                % (where, target.database))
        raise DatabaseConnectError(
            'Cannot reach the PostgreSQL server at %s (%s). Check that it is running and reachable from this host; nothing was changed.'
            % (where, text))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('SET search_path TO ' + quote_identifier('postgresql', target.namespace))
    return conn


def _connect_sqlite(target, connect_timeout, create):
    import sqlite3
    path = target.path
    if not os.path.exists(path) and not create:
        raise DatabaseMissingError(
            'The SQLite database file %s does not exist. Check the file: path in DATABASE_URL (relative paths are resolved '
            'against the prisma folder); nothing was changed.' % path)
    if create and not os.path.isdir(os.path.dirname(path)):
        raise DatabaseMissingError('The folder for the SQLite database %s does not exist; create it first.' % path)
    try:
        conn = sqlite3.connect(path, timeout=connect_timeout, isolation_level=None)
        conn.execute('SELECT count(*) FROM sqlite_master').fetchone()
    except sqlite3.DatabaseError as exc:
        raise DatabaseConnectError('Cannot open the SQLite database %s (%s); check that it is a SQLite file and readable.' % (path, exc))
    return conn


def connect(target, connect_timeout=10, create=False):
    """Open an autocommit DB-API connection to ``target``.

    ``create`` lets SQLite create a missing database file (as ``prisma migrate deploy`` does).
    PostgreSQL connections get ``search_path`` set to the URL's schema, as Prisma does.
    """
    if target.engine == 'mysql':
        return _connect_mysql(target, connect_timeout)
    if target.engine == 'postgresql':
        return _connect_postgresql(target, connect_timeout)
    return _connect_sqlite(target, connect_timeout, create)


def _on_cursor(conn, sql, params, result):
    cur = conn.cursor()
    try:
        if params is None:
            cur.execute(sql)
        else:
            cur.execute(sql, params)
        return result(cur)
    finally:
        cur.close()


def query_rows(conn, sql, params=None):
    """Every row ``sql`` returns ([] for a statement without a result), on one cursor closed afterwards."""
    return _on_cursor(conn, sql, params, lambda cur: cur.fetchall() if cur.description else [])


def execute_sql(conn, sql, params=None):
    """Run one statement; the number of rows it changed."""
    return _on_cursor(conn, sql, params, lambda cur: cur.rowcount)


def _variant(target, **changes):
    other = copy.copy(target)
    other.params = dict(target.params)
    for name, value in changes.items():
        setattr(other, name, value)
    return other


def create_database(target, connect_timeout=10):
    """Create the database ``target`` names, the way ``prisma migrate deploy`` does when it does not exist.

    MySQL: ``CREATE DATABASE ... CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`` on a connection
    without a database; PostgreSQL: ``CREATE DATABASE`` from the ``postgres`` (else ``template1``)
    maintenance database. SQLite files are created by :func:`connect` with ``create``.
    """
    if target.engine == 'sqlite':
        connect(target, connect_timeout, create=True).close()
        return
    if target.engine == 'mysql':
        conn = _connect_mysql(_variant(target, database=None), connect_timeout)
        statement = 'CREATE DATABASE %s CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' % quote_identifier('mysql', target.database)
    else:
        conn = None
        for maintenance in ('postgres', 'template1'):
            try:
                conn = _connect_postgresql(_variant(target, database=maintenance, schema='public'), connect_timeout)
                break
            except DatabaseMissingError:
                continue
        if conn is None:
            raise DatabaseMissingError('The database %r does not exist and neither does a maintenance database (postgres, '
                                       'template1) to create it from; create it by hand. Nothing was changed.' % target.database)
        statement = 'CREATE DATABASE %s' % quote_identifier('postgresql', target.database)
    try:
        cur = conn.cursor()
        try:
            cur.execute(statement)
        finally:
            cur.close()
    except Exception as exc:  # the driver's own error class differs per engine
        raise DatabaseError('The database %r does not exist and could not be created (%s). Create it, or let user %r create '
                            'databases; nothing was changed.' % (target.database, _scrubbed(target, exc), target.user))
    finally:
        conn.close()


def describe_error(target, exc):
    """A one-line description of a driver error, with the password scrubbed."""
    return _scrubbed(target, exc)


def server_version(conn, target):
    """The server version string (SQLite: the library version)."""
    cur = conn.cursor()
    try:
        if target.engine == 'sqlite':
            cur.execute('SELECT sqlite_version()')
        else:
            cur.execute('SELECT version()')
        row = cur.fetchone()
        return str(row[0]) if row else None
    finally:
        cur.close()


def database_argument_spec():
    """Argument spec matching the ``saferelease.core.database`` doc fragment."""
    return dict(
        database_url=dict(type='str', no_log=True),
        env_file=dict(type='path'),
        env_var=dict(type='str', default='DATABASE_URL'),
        connect_timeout=dict(type='int', default=10),
    )
