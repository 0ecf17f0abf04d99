"""The HTTP side: health, version and a small shipments API, with the injected faults applied."""
import datetime
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import db, faults

_print_lock = threading.Lock()


def log(message):
    """One line to stdout, flushed at once: process managers and tests read it as it happens."""
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")
    with _print_lock:
        sys.stdout.write("%s demo_app: %s\n" % (stamp, message))
        sys.stdout.flush()


class Application:
    """What a request handler needs: settings, fault state and a drain counter for graceful stop."""

    def __init__(self, settings):
        self.settings = settings
        self.faults = faults.from_settings(settings, log)
        self.in_flight = 0
        self.in_flight_lock = threading.Lock()

    def identity(self):
        body = {"release": self.settings.release, "version": self.settings.version}
        if self.settings.color:
            body["color"] = self.settings.color
        return body

    def check_schema(self, database):
        """'ok' or what this release misses: the schema contract between code and migrations."""
        if not database.table_exists("Shipment"):
            return "missing table Shipment"
        if self.settings.expects_shipment_file and "shipmentFile" not in database.columns("Shipment"):
            return "missing column Shipment.shipmentFile"
        return "ok"

    def health(self):
        body = {"status": "fail", **self.identity(), "database": "unknown", "schema": "unknown"}
        try:
            with db.connect(self.settings.database_url, timeout=3) as database:
                database.scalar("SELECT 1")
                body["database"] = "ok"
                body["schema"] = self.check_schema(database)
        except db.DatabaseError as exc:
            if body["database"] == "ok":
                body["schema"] = "error: %s" % exc
            else:
                body["database"] = "error: %s" % exc
        if body["database"] == "ok" and body["schema"] == "ok":
            body["status"] = "ok"
            return 200, body
        return 503, body

    def shipment_columns(self):
        names = ["id", "trackingNumber", "status", "createdAt"]
        return names + ["shipmentFile"] if self.settings.expects_shipment_file else names

    def list_shipments(self):
        with db.connect(self.settings.database_url) as database:
            columns = ", ".join(database.quote(c) for c in self.shipment_columns())
            rows = database.query("SELECT %s FROM %s ORDER BY %s" % (
                columns, database.quote("Shipment"), database.quote("id")))
        return 200, {"shipments": [render_row(row) for row in rows], "count": len(rows)}

    def create_shipment(self, payload):
        tracking = payload.get("trackingNumber") if isinstance(payload, dict) else None
        if not isinstance(tracking, str) or not tracking:
            return 400, {"error": "trackingNumber (a non-empty string) is required"}
        values = {"trackingNumber": tracking, "status": str(payload.get("status") or "pending")}
        if self.settings.expects_shipment_file and payload.get("shipmentFile") is not None:
            values["shipmentFile"] = str(payload["shipmentFile"])
        with db.connect(self.settings.database_url) as database:
            if database.engine == "sqlite":
                # Prisma Client writes DateTime as epoch milliseconds on SQLite; do the same.
                values["createdAt"] = database.now()
            if database.scalar("SELECT count(*) FROM %s WHERE %s = %%s" % (
                    database.quote("Shipment"), database.quote("trackingNumber")), (tracking,)):
                return 409, {"error": "trackingNumber %s exists" % tracking}
            database.execute("INSERT INTO %s (%s) VALUES (%s)" % (
                database.quote("Shipment"), ", ".join(database.quote(c) for c in values),
                ", ".join(["%s"] * len(values))), list(values.values()))
            # Read the row back rather than trusting lastrowid, which psycopg2 does not provide.
            row = database.query("SELECT %s FROM %s WHERE %s = %%s" % (
                ", ".join(database.quote(c) for c in self.shipment_columns()), database.quote("Shipment"),
                database.quote("trackingNumber")), (tracking,))[0]
        return 201, {"shipment": render_row(row)}


def render_row(row):
    """JSON-safe values; SQLite's epoch-millisecond timestamps become ISO 8601 like the others."""
    out = {}
    for key, value in row.items():
        if key == "createdAt" and isinstance(value, int):
            value = datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc)
        if isinstance(value, datetime.datetime):
            value = value.isoformat()
        out[key] = value
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle plus delayed ACKs add ~40 ms
    # to every keep-alive answer and latency figures would measure the kernel, not the app.
    disable_nagle_algorithm = True
    server_version = "saferelease-demo"
    # Idle keep-alive connections must not pin a thread (or a graceful stop) forever.
    timeout = 30

    @property
    def app(self):
        return self.server.app

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            # Handshake here, in the request thread: a silent client must not block accept().
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        started = time.monotonic()
        with self.app.in_flight_lock:
            self.app.in_flight += 1
        try:
            status, body = self.answer(method)
            self.send(method, status, body, started)
        finally:
            with self.app.in_flight_lock:
                self.app.in_flight -= 1

    def answer(self, method):
        path = urlsplit(self.path).path.rstrip("/") or "/"
        is_api = path == "/api" or path.startswith("/api/")
        active, fail_by_rate, fail_by_flap = self.app.faults.next_request(path == "/api/health")
        if active.slow_ms:
            time.sleep(active.slow_ms / 1000.0)
        if active.error500 and is_api:
            return 500, {"status": "fail", "error": "injected fault: error500"}
        if fail_by_rate:
            return 500, {"status": "fail", "error": "injected fault: %s" % active.spec}
        if fail_by_flap:
            return 503, dict(status="fail", error="injected fault: %s" % active.spec, **self.app.identity())
        try:
            return self.route(method, path)
        except db.DatabaseError as exc:
            return 503, {"status": "fail", "error": "database: %s" % exc}

    def route(self, method, path):
        read = method in ("GET", "HEAD")
        if path == "/" and read:
            ident = self.app.identity()
            return 200, "saferelease demo app, release %s (%s)\n" % (ident["release"], ident["version"])
        if path == "/api/health" and read:
            return self.app.health()
        if path == "/api/version" and read:
            return 200, self.app.identity()
        if path == "/api/shipments" and read:
            return self.app.list_shipments()
        if path == "/api/shipments" and method == "POST":
            payload = self.read_json()
            if payload is None:
                return 400, {"error": "body must be JSON"}
            return self.app.create_shipment(payload)
        if path in ("/", "/api/health", "/api/version", "/api/shipments"):
            return 405, {"error": "method %s not allowed on %s" % (method, path)}
        return 404, {"error": "no route for %s" % path}

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            return None

    def send(self, method, status, body, started):
        if isinstance(body, str):
            payload, content_type = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            payload, content_type = (json.dumps(body) + "\n").encode("utf-8"), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Demo-Release", self.app.settings.release)
        if self.app.settings.color:
            self.send_header("X-Demo-Color", self.app.settings.color)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)
        elapsed_ms = (time.monotonic() - started) * 1000
        log('%s "%s" %d %.1fms' % (self.client_address[0], self.requestline, status, elapsed_ms))

    def log_request(self, code="-", size="-"):
        pass  # send() logs once per request, with its latency

    def log_message(self, *args):
        # BaseHTTPRequestHandler reports protocol errors here as (format, *values).
        log("%s %s" % (self.client_address[0], args[0] % args[1:]))


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        log("connection from %s failed: %s" % (client_address[0], sys.exc_info()[1]))

    def enable_tls(self, cert_file, key_file):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def drain(self, timeout=5.0):
        """Wait for requests already being answered, so a stop does not cut them off."""
        deadline = time.monotonic() + timeout
        while self.app.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
