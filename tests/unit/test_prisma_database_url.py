"""URL parsing, .env files, redaction and identifier quoting (plugins/module_utils/database.py)."""
import os

import pytest

from ansible_collections.saferelease.core.plugins.module_utils import database as db


def test_mysql_url_with_encoded_password_and_params():
    t = db.parse_database_url('mysql://app:p%40ss%3Aw0rd@db.example:3307/shop?connection_limit=5&sslaccept=strict')
    assert (t.engine, t.host, t.port, t.user, t.password, t.database) == ('mysql', 'db.example', 3307, 'app', 'p@ss:w0rd', 'shop')
    assert t.params == {'connection_limit': '5', 'sslaccept': 'strict'}
    assert t.namespace == 'shop'


def test_mysql_default_port_and_socket():
    assert db.parse_database_url('mysql://root@localhost/app').port == 3306
    t = db.parse_database_url('mysql://root:x@localhost/app?socket=/run/mysqld/mysqld.sock')
    assert t.socket == '/run/mysqld/mysqld.sock' and 'socket' not in t.params


@pytest.mark.parametrize('scheme', ['postgresql', 'postgres'])
def test_postgres_schema_and_defaults(scheme):
    t = db.parse_database_url('%s://u:pw@127.0.0.1/shop?schema=tenant_1&sslmode=prefer' % scheme)
    assert (t.engine, t.port, t.schema, t.namespace) == ('postgresql', 5432, 'tenant_1', 'tenant_1')
    assert t.params == {'sslmode': 'prefer'}
    assert db.parse_database_url('postgresql://u@h/d').namespace == 'public'


def test_postgres_ipv6_and_socket_host():
    t = db.parse_database_url('postgresql://u:p@[::1]:6543/d')
    assert (t.host, t.port) == ('::1', 6543)
    t = db.parse_database_url('postgresql://u:p@/d?host=/var/run/postgresql')
    assert t.socket == '/var/run/postgresql'


def test_sqlite_relative_to_prisma_folder(tmp_path):
    prisma = tmp_path / 'prisma'
    prisma.mkdir()
    assert db.parse_database_url('file:./dev.db', base_dir=str(prisma)).path == str(prisma / 'dev.db')
    assert db.parse_database_url('file:../data/app.db?connection_limit=1', base_dir=str(prisma)).path == str(tmp_path / 'data' / 'app.db')
    assert db.parse_database_url('sqlite:/abs/x.db').path == '/abs/x.db'
    assert db.parse_database_url('file:///abs/y.db').path == '/abs/y.db'


@pytest.mark.parametrize('url, fragment', [
    ('', 'No database URL'),
    ('localhost:3306', 'scheme'),
    ('mongodb://h/d', 'Unsupported'),
    ('mariadb://u:p@h/d', 'mysql://'),
    ('mysql://u:p@h:notaport/d', 'port'),
    ('mysql://u:p@h:70000/d', 'port'),
    ('mysql://u:p@h', 'names no database'),
    ('mysql:///d', 'no host'),
    ('postgresql://u:p@h/d\nx', 'line break'),
    ('file:', 'names no file'),
])
def test_malformed_urls(url, fragment):
    with pytest.raises(db.DatabaseUrlError) as err:
        db.parse_database_url(url)
    assert fragment in err.value.message


def test_redacted_never_shows_password():
    t = db.parse_database_url('postgresql://app:S3cr%23t@h:5432/d?schema=s')
    assert 'S3cr' not in t.redacted() and '********' in t.redacted()
    assert t.redacted() == 'postgresql://app:********@h:5432/d?schema=s'
    assert 'S3cr' not in repr(t) and 'S3cr' not in str(t.as_dict())
    assert t.scrub('failed for S3cr#t and S3cr%23t') == 'failed for ******** and ********'


def test_env_parsing_rules():
    text = '\n'.join([
        '# comment line',
        'export DATABASE_URL="mysql://u:p#1@h/d" # trailing comment',
        "SINGLE='a ${NOPE} b'",
        'PLAIN = value with spaces   # comment',
        'EMPTY=',
        'MULTI="line1',
        'line2"',
        'ESC="a\\nb"',
        'BACKTICK=`x "y" z`',
        'HASH=abc#def',
    ])
    values = db.parse_env_text(text)
    assert values['DATABASE_URL'] == 'mysql://u:p#1@h/d'
    assert values['SINGLE'] == 'a ${NOPE} b'
    assert values['PLAIN'] == 'value with spaces'
    assert values['EMPTY'] == ''
    assert values['MULTI'] == 'line1\nline2'
    assert values['ESC'] == 'a\nb'
    assert values['BACKTICK'] == 'x "y" z'
    assert values['HASH'] == 'abc'


def test_env_expansion_braces_only():
    values = {'USER': 'app', 'PW': 'pa$$word', 'URL': 'mysql://${USER}:${PW}@h/${DB:-shop}', 'LIT': 'a\\${USER}', 'RAW': '$USER'}
    out = db.expand_env(values, environ={})
    assert out['URL'] == 'mysql://app:pa$$word@h/shop'
    assert out['LIT'] == 'a${USER}'
    assert out['RAW'] == '$USER'
    assert db.expand_env({'X': '${HOME}'}, environ={'HOME': '/root'})['X'] == '/root'


def test_env_file_errors(tmp_path):
    with pytest.raises(db.EnvFileError) as err:
        db.read_env_file(str(tmp_path / 'missing.env'))
    assert 'does not exist' in err.value.message
    env = tmp_path / '.env'
    env.write_text('OTHER=1\n')
    with pytest.raises(db.EnvFileError) as err:
        db.database_url_from_env_file(str(env))
    assert 'no DATABASE_URL' in err.value.message
    env.write_text('\ufeffDATABASE_URL=file:./x.db\r\n')
    assert db.database_url_from_env_file(str(env)) == 'file:./x.db'


def test_resolve_target_prefers_database_url(tmp_path):
    env = tmp_path / '.env'
    env.write_text('DATABASE_URL="postgresql://u:p@h/d"\nAPP_DB=mysql://u:p@h/x\n')
    assert db.resolve_target(env_file=str(env)).engine == 'postgresql'
    assert db.resolve_target(env_file=str(env), variable='APP_DB').engine == 'mysql'
    assert db.resolve_target('file:/tmp/z.db', str(env)).engine == 'sqlite'
    with pytest.raises(db.DatabaseUrlError):
        db.resolve_target()


def test_quote_identifier():
    assert db.quote_identifier('mysql', 'a`b') == '`a``b`'
    assert db.quote_identifier('postgresql', 'a"b') == '"a""b"'
    assert db.quote_identifier('sqlite', 'x') == '"x"'
    with pytest.raises(ValueError):
        db.quote_identifier('mysql', '')


def test_sqlite_connect_missing_file(tmp_path):
    target = db.parse_database_url('file:%s' % (tmp_path / 'none.db'))
    with pytest.raises(db.DatabaseMissingError):
        db.connect(target)
    conn = db.connect(target, create=True)
    conn.close()
    assert os.path.exists(target.path)


def test_unreachable_servers_fail_fast():
    for url in ('mysql://u:secretpw@127.0.0.1:1/d', 'postgresql://u:secretpw@127.0.0.1:1/d'):
        target = db.parse_database_url(url)
        with pytest.raises(db.DatabaseConnectError) as err:
            db.connect(target, connect_timeout=2)
        assert 'secretpw' not in err.value.message
        assert 'Cannot reach' in err.value.message
