"""One schema per engine and the changes real histories make to it, each a migration of its own.

Shared by the unit tests (a replayed or in-process SQLite catalog) and the integration tests (real
servers): after each change, ``synced`` must see it when it ran and apply it when it did not.
"""

PG_BASE = ('CREATE TYPE "Role" AS ENUM (\'USER\', \'ADMIN\');\n'
           'CREATE TABLE "User" ("id" SERIAL NOT NULL, "email" TEXT NOT NULL, "age" INTEGER, "role" "Role" NOT NULL DEFAULT '
           '\'USER\', "nick" VARCHAR(20), CONSTRAINT "User_pkey" PRIMARY KEY ("id"));\n'
           'CREATE TABLE "Post" ("id" SERIAL NOT NULL, "userId" INTEGER NOT NULL, CONSTRAINT "Post_pkey" PRIMARY KEY ("id"));\n'
           'CREATE UNIQUE INDEX "User_email_key" ON "User"("email");\n'
           'ALTER TABLE "Post" ADD CONSTRAINT "Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") '
           'ON DELETE RESTRICT ON UPDATE CASCADE;')
PG_CHANGES = {
    'drop index': 'DROP INDEX "User_email_key";',
    'drop column': 'ALTER TABLE "User" DROP COLUMN "nick";',
    'drop constraint': 'ALTER TABLE "Post" DROP CONSTRAINT "Post_userId_fkey";',
    'new foreign key action': 'ALTER TABLE "Post" DROP CONSTRAINT "Post_userId_fkey";\nALTER TABLE "Post" ADD CONSTRAINT '
                              '"Post_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE;',
    'enum value': 'ALTER TYPE "Role" ADD VALUE \'MOD\';',
    'enum swap': ('BEGIN;\nCREATE TYPE "Role_new" AS ENUM (\'USER\');\nALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;\n'
                  'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n'
                  'ALTER TYPE "Role" RENAME TO "Role_old";\nALTER TYPE "Role_new" RENAME TO "Role";\nDROP TYPE "Role_old";\n'
                  'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'USER\';\nCOMMIT;'),
    'set default': 'ALTER TABLE "User" ALTER COLUMN "age" SET DEFAULT 18;',
    'drop default': 'ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;',
    'set not null': 'ALTER TABLE "User" ALTER COLUMN "age" SET NOT NULL;',
    'drop not null': 'ALTER TABLE "User" ALTER COLUMN "email" DROP NOT NULL;',
    'type': 'ALTER TABLE "User" ALTER COLUMN "age" SET DATA TYPE BIGINT,\nALTER COLUMN "nick" SET DATA TYPE VARCHAR(200);',
    'rename column': 'ALTER TABLE "User" RENAME COLUMN "nick" TO "handle";',
    'rename table': 'ALTER TABLE "Post" RENAME TO "Article";',
    'rename index': 'ALTER INDEX "User_email_key" RENAME TO "User_mail_key";',
    'rename constraint': 'ALTER TABLE "Post" RENAME CONSTRAINT "Post_userId_fkey" TO "Post_owner_fkey";',
}
MY_BASE = ('CREATE TABLE `User` (`id` INTEGER NOT NULL AUTO_INCREMENT, `email` VARCHAR(191) NOT NULL, `age` INTEGER NULL, '
           '`role` ENUM(\'USER\', \'ADMIN\') NOT NULL DEFAULT \'USER\', UNIQUE INDEX `User_email_key`(`email`), '
           'PRIMARY KEY (`id`)) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n'
           'CREATE TABLE `Post` (`id` INTEGER NOT NULL AUTO_INCREMENT, `userId` INTEGER NOT NULL, PRIMARY KEY (`id`));\n'
           'ALTER TABLE `Post` ADD CONSTRAINT `Post_userId_fkey` FOREIGN KEY (`userId`) REFERENCES `User`(`id`) '
           'ON DELETE RESTRICT ON UPDATE CASCADE;')
MY_CHANGES = {
    'drop index': 'DROP INDEX `User_email_key` ON `User`;',
    'drop column': 'ALTER TABLE `User` DROP COLUMN `age`;',
    'drop foreign key and its index': 'ALTER TABLE `Post` DROP FOREIGN KEY `Post_userId_fkey`;\n'
                                      'DROP INDEX `Post_userId_fkey` ON `Post`;',
    'modify': 'ALTER TABLE `User` MODIFY `age` BIGINT NOT NULL DEFAULT 0;',
    'enum value': "ALTER TABLE `User` MODIFY `role` ENUM('USER', 'ADMIN', 'MOD') NOT NULL DEFAULT 'USER';",
    'change': 'ALTER TABLE `User` CHANGE `age` `years` INTEGER NULL;',
    'set default': 'ALTER TABLE `User` ALTER COLUMN `age` SET DEFAULT 18;',
    'rename column': 'ALTER TABLE `User` RENAME COLUMN `age` TO `years`;',
    'rename index': 'ALTER TABLE `User` RENAME INDEX `User_email_key` TO `User_mail_key`;',
}
LITE_BASE = ('CREATE TABLE "User" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "email" TEXT NOT NULL, "age" INTEGER);\n'
             'CREATE UNIQUE INDEX "User_email_key" ON "User"("email");')
LITE_CHANGES = {
    'drop index': 'DROP INDEX "User_email_key";',
    'drop column': 'ALTER TABLE "User" DROP COLUMN "age";',
    'rename column': 'ALTER TABLE "User" RENAME COLUMN "age" TO "years";',
    'rebuild': ('PRAGMA defer_foreign_keys=ON;\nPRAGMA foreign_keys=OFF;\nCREATE TABLE "new_User" ("id" INTEGER NOT NULL PRIMARY '
                'KEY AUTOINCREMENT, "email" TEXT NOT NULL, "age" BIGINT NOT NULL DEFAULT 0);\nINSERT INTO "new_User" ("age", '
                '"email", "id") SELECT "age", "email", "id" FROM "User";\nDROP TABLE "User";\nALTER TABLE "new_User" RENAME TO '
                '"User";\nCREATE UNIQUE INDEX "User_email_key" ON "User"("email");\nPRAGMA foreign_keys=ON;\n'
                'PRAGMA defer_foreign_keys=OFF;'),
}

BASES = {'postgresql': PG_BASE, 'mysql': MY_BASE, 'sqlite': LITE_BASE}
CHANGES = {'postgresql': PG_CHANGES, 'mysql': MY_CHANGES, 'sqlite': LITE_CHANGES}
