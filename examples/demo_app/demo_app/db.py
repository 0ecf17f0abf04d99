"""Connections and the few engine differences the demo needs (placeholders, quoting, catalog queries)."""
import datetime
import os
import sqlite3
from urllib.parse import quote


class DatabaseError(Exception):
    """The database could not be reached or refused a statement."""


class Database:
    """One DB-API connection with the engine's dialect attached. Use as a context manager."""

    def __init__(self, url, connection):
        self.url = url
        self.engine = url.engine
        self.connection = connection

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
            pass

    def quote(self, identifier):
        if self.engine == "mysql":
            return "`%s`" % identifier.replace("`", "``")
        return '"%s"' % identifier.replace('"', '""')

    def execute(self, sql, params=()):
        """Run one statement written with %s placeholders; returns the cursor."""
        if self.engine == "sqlite":
            sql = sql.replace("%s", "?")
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
        except Exception as exc:
            raise DatabaseError(describe_error(exc)) from exc
        return cursor

    def query(self, sql, params=()):
        cursor = self.execute(sql, params)
        columns = [c[0] for c in cursor.description or ()]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def scalar(self, sql, params=()):
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    def commit(self):
        self.connection.commit()

    def now(self):
        """A timestamp the way Prisma writes it: epoch milliseconds on SQLite, UTC datetimes elsewhere."""
        now = datetime.datetime.now(datetime.timezone.utc)
        if self.engine == "sqlite":
            return int(now.timestamp() * 1000)
        if self.engine == "mysql":
            # DATETIME(3) rounds extra digits; truncating keeps started_at <= finished_at.
            return now.replace(tzinfo=None, microsecond=now.microsecond // 1000 * 1000)
        return now

    def table_exists(self, table):
        if self.engine == "sqlite":
            sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %s"
        elif self.engine == "mysql":
            sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s"
        else:
            sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = %s"
        return bool(self.scalar(sql, (table,)))

    def columns(self, table):
        if self.engine == "sqlite":
            return [row["name"] for row in self.query("PRAGMA table_info(%s)" % self.quote(table))]
        if self.engine == "mysql":
            sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s"
        else:
            sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s"
        return [row[0] for row in self.execute(sql, (table,)).fetchall()]

    def run_script(self, script):
        """Run a whole migration script the way Prisma's engine sends it: one multi-statement batch."""
        try:
            if self.engine == "sqlite":
                self.connection.executescript(script)
            elif self.engine == "mysql":
                cursor = self.connection.cursor()
                cursor.execute(script)
                # Later statements of a multi-statement batch report their errors only when reached.
                while cursor.nextset():
                    pass
            else:
                self.connection.cursor().execute(script)
        except Exception as exc:
            raise DatabaseError(describe_error(exc)) from exc


def describe_error(exc):
    return "%s: %s" % (type(exc).__name__, str(exc).strip())


def connect(url, create=False, multi_statements=False, timeout=5):
    """Open the database. SQLite files are never created unless `create` (only migrate may create one)."""
    try:
        if url.engine == "sqlite":
            return Database(url, _connect_sqlite(url, create, timeout))
        if url.engine == "mysql":
            return Database(url, _connect_mysql(url, multi_statements, timeout))
        return Database(url, _connect_postgresql(url, create, timeout))
    except DatabaseError:
        raise
    except Exception as exc:
        raise DatabaseError(describe_error(exc)) from exc


def _connect_sqlite(url, create, timeout):
    if create:
        os.makedirs(os.path.dirname(url.path), exist_ok=True)
    elif not os.path.exists(url.path):
        # sqlite3 would silently create an empty file, the 0-byte database of runbook 002.
        raise DatabaseError("database file %s does not exist" % url.path)
    mode = "rwc" if create else "rw"
    # isolation_level=None: statements commit as they run, like the other engines' autocommit.
    return sqlite3.connect("file:%s?mode=%s" % (quote(url.path), mode), uri=True, timeout=timeout,
                           isolation_level=None, check_same_thread=False)


def _connect_mysql(url, multi_statements, timeout):
    import pymysql
    from pymysql.constants import CLIENT

    return pymysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, database=url.database,
        unix_socket=url.socket or None, charset="utf8mb4", autocommit=True, connect_timeout=timeout,
        client_flag=CLIENT.MULTI_STATEMENTS if multi_statements else 0,
    )


def _connect_postgresql(url, create_schema, timeout):
    import psycopg2
    from psycopg2 import sql

    extra = {k: v for k, v in url.options.items() if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "application_name")}
    connection = psycopg2.connect(
        host=url.socket or url.host, port=url.port, user=url.user, password=url.password,
        dbname=url.database, connect_timeout=timeout, **extra,
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        if create_schema:
            # prisma migrate deploy creates the schema named in ?schema= when it is missing.
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(url.schema)))
        cursor.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(url.schema)))
    return connection
