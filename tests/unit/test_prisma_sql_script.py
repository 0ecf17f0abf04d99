"""Splitting multi-statement SQL (plugins/module_utils/sql_script.py)."""
import pytest

from ansible_collections.saferelease.core.plugins.module_utils.sql_script import SqlScriptError, split_script, split_statements


def test_comments_and_strings_with_semicolons():
    sql = """-- header; not a statement
    INSERT INTO t VALUES ('a;b', 'it''s; fine'); /* block; comment */
    SELECT "col;name" FROM t; -- trailing
    """
    assert split_statements(sql, 'postgresql') == ["INSERT INTO t VALUES ('a;b', 'it''s; fine')", 'SELECT "col;name" FROM t']


def test_mysql_specifics():
    sql = "SELECT 'a\\';b'; # hash comment; still comment\nSELECT `we;ird`, \"dq;str\"; SELECT 1--1;\nSELECT 2 -- real comment;\n;"
    assert split_statements(sql, 'mysql') == ["SELECT 'a\\';b'", "SELECT `we;ird`, \"dq;str\"",
                                              'SELECT 1--1', 'SELECT 2 -- real comment;']


def test_postgres_dollar_quoting_and_nested_comments():
    sql = ("CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN NEW.x := 'a;'; RETURN NEW; END; $body$ LANGUAGE plpgsql;\n"
           "/* outer /* inner; */ still; */ SELECT $$x;y$$, $1;\nSELECT E'\\';';")
    out = split_statements(sql, 'postgresql')
    assert len(out) == 3
    assert out[0].endswith('LANGUAGE plpgsql')
    assert out[1].endswith('SELECT $$x;y$$, $1')
    assert out[2] == "SELECT E'\\';'"


def test_sqlite_trigger_body_and_brackets():
    sql = ('CREATE TRIGGER trg AFTER INSERT ON a BEGIN UPDATE b SET v = 1; INSERT INTO c VALUES (2); END;\n'
           'SELECT [odd;name] FROM x;')
    assert split_statements(sql, 'sqlite') == [
        'CREATE TRIGGER trg AFTER INSERT ON a BEGIN UPDATE b SET v = 1; INSERT INTO c VALUES (2); END',
        'SELECT [odd;name] FROM x']


def test_mysql_procedure_with_control_flow():
    sql = ('CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; CASE WHEN 1 THEN SELECT 2; END CASE; '
           'WHILE 0 DO SELECT 3; END WHILE; END;\nSELECT 4;')
    out = split_statements(sql, 'mysql')
    assert len(out) == 2 and out[1] == 'SELECT 4'


def test_case_expression_in_plain_statement_is_not_a_block():
    assert len(split_statements('SELECT CASE WHEN 1 THEN 2 END; SELECT 3;', 'mysql')) == 2


def test_prisma_sqlite_redefine_tables_script():
    sql = '''-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Shipment" ("id" INTEGER NOT NULL PRIMARY KEY, "note" TEXT DEFAULT 'x;y');
INSERT INTO "new_Shipment" ("id") SELECT "id" FROM "Shipment";
DROP TABLE "Shipment";
ALTER TABLE "new_Shipment" RENAME TO "Shipment";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
'''
    statements = split_script(sql, 'sqlite')
    assert [s.words[0] for s in statements] == ['PRAGMA', 'PRAGMA', 'CREATE', 'INSERT', 'DROP', 'ALTER', 'PRAGMA', 'PRAGMA']
    assert statements[0].line == 2 and statements[2].line == 4


def test_comment_only_script_is_empty():
    assert split_statements('-- nothing\n/* here */\n', 'postgresql') == []


@pytest.mark.parametrize('sql, dialect', [("SELECT 'open", 'mysql'), ('SELECT "x', 'postgresql'), ('/* open', 'sqlite'),
                                          ('SELECT $a$ x', 'postgresql')])
def test_unterminated_raises(sql, dialect):
    with pytest.raises(SqlScriptError):
        split_statements(sql, dialect)
