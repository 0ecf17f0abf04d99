"""Fixtures for the Prisma compatibility tests: temporary Prisma projects driven by the real CLI.

The CLI comes from ``make prisma-cli`` (tests/compat/prisma-cli). Without it every test here fails
with a message naming that target; nothing is skipped.
"""
import pytest

from tests.compat.prisma_cli import PrismaProject, cli_problem


@pytest.fixture(scope="session", autouse=True)
def prisma_cli_installed():
    problem = cli_problem()
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def project_factory(tmp_path):
    """``project_factory(name, database_path=None, timestamp_format=None)`` -> a fresh :class:`PrismaProject`."""

    def build(name, database_path=None, timestamp_format=None):
        return PrismaProject(tmp_path / name, database_path=database_path, timestamp_format=timestamp_format)

    return build


@pytest.fixture
def project(project_factory, sqlite_db):
    """A Prisma project on the harness's empty SQLite database (``sqlite_db``)."""
    return project_factory("app", database_path=sqlite_db.path)
