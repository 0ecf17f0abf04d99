"""python -m demo_app {serve,migrate,status,version}: the demo app's command line."""
import argparse
import json
import os
import signal
import sys
import threading

from . import config, db, faults, migrations
from .server import Application, DemoServer, log


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command is version_command:
        return version_command(args)  # a build must say what it is without a database (runbook 002)
    try:
        settings = config.load_settings()
        faults.parse(settings.fault)  # a typo in DEMO_FAULT should stop the start, not pass silently
    except (config.ConfigError, faults.FaultSpecError) as exc:
        log("configuration error: %s" % exc)
        return 2
    return args.command(settings, args)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m demo_app", description="saferelease demo application")
    commands = parser.add_subparsers(required=True, metavar="{serve,migrate,status,version}")

    serve = commands.add_parser("serve", help="answer HTTP on --host/--port")
    serve.add_argument("--host", default="127.0.0.1")
    # PORT as the apps of the runbooks read it (`PORT=3001 pnpm start` starts the green colour)
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 39300))
    serve.add_argument("--pid-file", help="written once listening, removed on SIGTERM/SIGINT")
    serve.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (needs --tls-key)")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.set_defaults(command=serve_command)

    migrate = commands.add_parser("migrate", help="apply pending migrations like `prisma migrate deploy`")
    migrate.set_defaults(command=migrate_command)

    status = commands.add_parser("status", help="print applied/pending/failed migrations as JSON")
    status.set_defaults(command=status_command)
    version = commands.add_parser("version", help="print the release and version, e.g. `demo_app 2.0.0 (release v2)`")
    version.set_defaults(command=version_command)
    return parser


def version_command(_args):
    try:
        release, version = config.load_identity()
    except config.ConfigError as exc:
        log("configuration error: %s" % exc)
        return 2
    print("demo_app %s (release %s)" % (version, release))
    return 0


def migrate_command(settings, _args):
    log("migrating %s with %s" % (settings.database_url.masked, settings.migrations_dir))
    try:
        applied = migrations.deploy(settings.database_url, settings.migrations_dir, log)
    except (migrations.MigrationError, db.DatabaseError) as exc:
        log("migration error: %s" % exc)
        return 1
    log("All migrations have been successfully applied." if applied else "No pending migrations to apply.")
    return 0


def status_command(settings, _args):
    try:
        state = migrations.status(settings.database_url, settings.migrations_dir)
    except (migrations.MigrationError, db.DatabaseError) as exc:
        log("status error: %s" % exc)
        return 1
    print(json.dumps(state, indent=2))
    return 0


def serve_command(settings, args):
    if bool(args.tls_cert) != bool(args.tls_key):
        log("startup error: --tls-cert and --tls-key go together")
        return 2
    log("starting release=%s version=%s color=%s fault=%s database=%s prisma=%s" % (
        settings.release, settings.version, settings.color or "-", settings.fault,
        settings.database_url.masked, settings.prisma_dir))
    at_start = faults.startup_faults(settings)
    if at_start.crash_on_start:
        log("startup error: injected fault crash_on_start, exiting with status 1")
        return 1
    if not prepare_database(settings, at_start):
        return 1
    try:
        server = DemoServer((args.host, args.port), Application(settings))
        if args.tls_cert:
            server.enable_tls(args.tls_cert, args.tls_key)
    except (OSError, ValueError) as exc:
        log("startup error: cannot listen on %s:%s: %s" % (args.host, args.port, exc))
        return 1
    return run_until_stopped(server, args)


def prepare_database(settings, at_start):
    if at_start.skip_migrations:
        log("skipping migration (DEMO_FAULT=skip_migrations): the database is used as found")
        url = settings.database_url
        if url.engine == "sqlite" and not os.path.exists(url.path):
            # What the runbook-002 build did: the driver created the file, nobody created the tables.
            os.makedirs(os.path.dirname(url.path), exist_ok=True)
            open(url.path, "ab").close()
        return True
    if settings.migrate_on_start:
        return migrate_command(settings, None) == 0
    return True


def run_until_stopped(server, args):
    stop_requested = threading.Event()

    def request_stop(signum, _frame):
        if not stop_requested.is_set():
            stop_requested.set()
            log("received %s, stopping" % signal.Signals(signum).name)
            # shutdown() waits for serve_forever to return, so it cannot run on this (serving) thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if args.pid_file:
        write_pid_file(args.pid_file)
    scheme = "https" if args.tls_cert else "http"
    host, port = server.server_address[:2]
    log("listening on %s://%s:%d pid=%d" % (scheme, host, port, os.getpid()))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.drain()
        server.server_close()
        if args.pid_file:
            remove_pid_file(args.pid_file)
        log("stopped")
    return 0


def write_pid_file(path):
    # Written only once the socket listens: a pid file means "up", for supervisors and tests.
    temp = "%s.%d.tmp" % (path, os.getpid())
    with open(temp, "w", encoding="ascii") as handle:
        handle.write("%d\n" % os.getpid())
    os.replace(temp, path)


def remove_pid_file(path):
    try:
        with open(path, encoding="ascii") as handle:
            owner = handle.read().strip()
        if owner == str(os.getpid()):  # a successor may already have written its own
            os.unlink(path)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
