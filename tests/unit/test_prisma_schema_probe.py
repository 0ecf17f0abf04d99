"""Objects a migration creates, and probing them (plugins/module_utils/schema_probe.py)."""
import sqlite3

from ansible_collections.saferelease.core.plugins.module_utils.database import DatabaseTarget
from ansible_collections.saferelease.core.plugins.module_utils.schema_probe import (
    Catalog,
    extract_objects,
    probe,
    probe_migration,
    read_catalog,
)


def labels(sql, engine):
    return [o.label for o in extract_objects(sql, engine).objects]


def test_runbook_000_column_each_engine():
    assert labels('-- AlterTable\nALTER TABLE `Shipment` ADD COLUMN `shipmentFile` VARCHAR(191) NULL;', 'mysql') == ['column Shipment.shipmentFile']
    assert labels('ALTER TABLE "Shipment" ADD COLUMN     "shipmentFile" TEXT;', 'postgresql') == ['column Shipment.shipmentFile']
    assert labels('ALTER TABLE "Shipment" ADD COLUMN "shipmentFile" TEXT;', 'sqlite') == ['column Shipment.shipmentFile']


def test_create_table_mysql_inline_indexes_and_constraints():
    sql = '''CREATE TABLE `Order` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `ref` VARCHAR(191) NOT NULL,
    `userId` INTEGER NOT NULL,
    UNIQUE INDEX `Order_ref_key`(`ref`),
    INDEX `Order_userId_idx`(`userId`),
    CONSTRAINT `Order_userId_fkey` FOREIGN KEY (`userId`) REFERENCES `User`(`id`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;'''
    assert labels(sql, 'mysql') == ['table Order', 'column Order.id', 'column Order.ref', 'column Order.userId',
                                    'index Order_ref_key on Order', 'index Order_userId_idx on Order',
                                    'constraint Order_userId_fkey on Order']


def test_postgres_folds_unquoted_names_and_handles_types_indexes():
    sql = '''CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE IF NOT EXISTS public.Users (Id SERIAL, "Name" TEXT, CONSTRAINT "Users_pkey" PRIMARY KEY ("Id"));
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Users_Name_key" ON "users"("Name");
ALTER TABLE "users" ADD CONSTRAINT "fk" FOREIGN KEY ("x") REFERENCES "y"("id"), ADD COLUMN "z" INT;
CREATE EXTENSION IF NOT EXISTS "pgcrypto";
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SEQUENCE s1;
CREATE OR REPLACE VIEW v AS SELECT 1;'''
    assert labels(sql, 'postgresql') == ['type Role', 'table users', 'column users.id', 'column users.Name',
                                         'constraint Users_pkey on users', 'index Users_Name_key on users',
                                         'constraint fk on users', 'column users.z', 'extension pgcrypto', 'schema audit',
                                         'sequence s1', 'view v']


def test_unprobeable_and_neutral_statements():
    sql = '''PRAGMA foreign_keys=OFF;
CREATE TABLE "new_T" ("id" INTEGER);
INSERT INTO "new_T" SELECT * FROM "T";
DROP TABLE "T";
ALTER TABLE "new_T" RENAME TO "T";
UPDATE "T" SET a = 1;
PRAGMA foreign_keys=ON;'''
    extraction = extract_objects(sql, 'sqlite')
    assert [o.label for o in extraction.objects] == ['table new_T', 'column new_T.id']
    assert [s.words[0] for s in extraction.unprobeable] == ['INSERT', 'DROP', 'ALTER', 'UPDATE']
    assert len(extraction.neutral) == 2
    for sql in ('ALTER TABLE `t` DROP COLUMN `a`;', 'ALTER TABLE `t` MODIFY `a` INT;', 'ALTER TABLE `t` ADD PRIMARY KEY (`id`);',
                'CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW SET @a = 1;', 'DELETE FROM t;', 'RENAME TABLE a TO b;'):
        assert extract_objects(sql, 'mysql').unprobeable, sql


def test_catalog_rules_and_states():
    cat = Catalog('mysql', tables=['Shipment'], columns=[('Shipment', 'id'), ('Shipment', 'shipmentFile')],
                  indexes=[('Shipment', 'PRIMARY')])
    report = probe(extract_objects('ALTER TABLE `shipment` ADD COLUMN `SHIPMENTFILE` TEXT;', 'mysql'), cat)
    assert report.state == 'present'  # MySQL/SQLite names compare case-insensitively
    report = probe(extract_objects('ALTER TABLE `Shipment` ADD COLUMN `a` INT, ADD COLUMN `shipmentFile` TEXT;', 'mysql'), cat)
    assert report.state == 'partial' and report.present == ['column Shipment.shipmentFile'] and report.absent == ['column Shipment.a']
    assert probe(extract_objects('ALTER TABLE `Shipment` ADD COLUMN `a` INT;', 'mysql'), cat).state == 'absent'
    assert probe(extract_objects('-- nothing\nSET x = 1;', 'mysql'), cat).state == 'empty'
    assert probe(extract_objects('UPDATE t SET a = 1;', 'mysql'), cat).state == 'unprobeable'
    pg = Catalog('postgresql', tables=['Shipment'])
    assert probe(extract_objects('CREATE TABLE Shipment (id INT);', 'postgresql'), pg).absent == ['table shipment', 'column shipment.id']


def test_probe_on_real_sqlite(tmp_path):
    target = DatabaseTarget('sqlite', path=str(tmp_path / 'dev.db'))
    conn = sqlite3.connect(target.path, isolation_level=None)
    conn.executescript('CREATE TABLE "Shipment" ("id" INTEGER PRIMARY KEY, "shipmentFile" TEXT);'
                       'CREATE UNIQUE INDEX "Shipment_id_key" ON "Shipment"("id"); CREATE VIEW "v" AS SELECT 1;')
    catalog = read_catalog(conn, target)
    assert probe_migration(conn, target, 'ALTER TABLE "Shipment" ADD COLUMN "shipmentFile" TEXT;').state == 'present'
    assert probe_migration(conn, target, 'ALTER TABLE "Shipment" ADD COLUMN "other" TEXT;', catalog=catalog).state == 'absent'
    sql = 'CREATE TABLE "Shipment" ("id" INTEGER, "extra" TEXT); CREATE UNIQUE INDEX "Shipment_id_key" ON "Shipment"("id");'
    report = probe_migration(conn, target, sql, catalog=catalog)
    assert report.state == 'partial' and report.absent == ['column Shipment.extra']
    assert probe_migration(conn, target, 'CREATE VIEW v AS SELECT 2;', catalog=catalog).state == 'present'
    as_dict = report.as_dict()
    assert as_dict['objects'][0] == {'kind': 'table', 'name': 'Shipment', 'table': None, 'line': 1, 'present': True}
