# -*- coding: utf-8 -*-
# Copyright (c) saferelease.core contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options shared by every module that talks to the application database.
    DOCUMENTATION = r'''
options:
  database_url:
    description:
      - The database connection URL in Prisma's format, as in the application's C(DATABASE_URL).
      - C(mysql://USER:PASSWORD@HOST:3306/DB) for MySQL and MariaDB (C(?socket=/path) for a Unix socket, C(?sslcert=), C(?sslaccept=)).
      - C(postgresql://USER:PASSWORD@HOST:5432/DB?schema=SCHEMA) or C(postgres://...) for PostgreSQL
        (C(?host=/run/postgresql) for a Unix socket, C(?sslmode=)); the schema defaults to C(public).
      - C(file:./dev.db) for SQLite; a relative path is resolved against the prisma folder, as Prisma does.
      - The password is never shown in results or messages. Mutually exclusive with O(env_file).
    type: str
  env_file:
    description:
      - Path to a C(.env) file holding the URL in the variable named by O(env_var), read with Prisma's dotenv rules
        (C(export) prefixes, C(#) comments, single, double and backtick quotes, C(${VAR}) expansion).
      - Mutually exclusive with O(database_url); one of the two is required.
    type: path
  env_var:
    description:
      - Name of the variable in O(env_file) that holds the connection URL.
    type: str
    default: DATABASE_URL
  connect_timeout:
    description:
      - Seconds to wait for the database server to accept the connection (SQLite - for the file lock).
    type: int
    default: 10
requirements:
  - PyMySQL for MySQL/MariaDB, psycopg2 for PostgreSQL, on the host that runs the module (SQLite needs nothing).
'''
