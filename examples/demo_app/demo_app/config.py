"""Settings from the environment and an optional .env file, and Prisma-style database URLs."""
import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
APP_DIR = os.path.dirname(PACKAGE_DIR)

# Without DEMO_PRISMA_DIR the demo picks the migrations written in the dialect of the database it
# was pointed at, so one checkout serves all three engines.
DEFAULT_PRISMA_DIRS = {
    "sqlite": os.path.join(APP_DIR, "prisma"),
    "mysql": os.path.join(APP_DIR, "prisma-mysql"),
    "postgresql": os.path.join(APP_DIR, "prisma-postgresql"),
}

RELEASE_PATTERN = re.compile(r"^v(\d+)$")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class DatabaseUrl:
    engine: str  # sqlite | mysql | postgresql
    raw: str
    path: str = ""  # sqlite: absolute file path
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = field(default="", repr=False)
    database: str = ""
    schema: str = ""  # postgresql search_path
    socket: str = ""  # mysql unix socket / postgresql socket directory
    options: dict = field(default_factory=dict)

    @property
    def masked(self):
        return mask_url(self.raw)


@dataclass(frozen=True)
class Settings:
    database_url: DatabaseUrl
    prisma_dir: str
    release: str
    version: str
    color: str
    fault: str
    fault_file: str
    migrate_on_start: bool

    @property
    def migrations_dir(self):
        return os.path.join(self.prisma_dir, "migrations")

    @property
    def expects_shipment_file(self):
        # Release v2 introduced Shipment.shipmentFile; every later release keeps it.
        return release_number(self.release) >= 2


def read_env_file(path):
    """KEY=VALUE lines as a dict; comments, blank lines and an `export ` prefix are allowed."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            key = key.strip()
            if key.startswith("export "):
                key = key[len("export "):].strip()
            values[key] = strip_quotes(value.strip())
    return values


def strip_quotes(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def mask_url(url):
    """The URL with its password replaced by ****, so it can go to a log."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The last '@' ends the user info: an unencoded '@' in a password must not leak the tail.
    at = rest.rfind("@")
    if at < 0 or ":" not in rest[:at]:
        return url
    user = rest[:at].split(":", 1)[0]
    return "%s://%s:****@%s" % (scheme, user, rest[at + 1:])


def parse_database_url(url, prisma_dir=None):
    """Parse a Prisma datasource URL. `file:` paths are relative to the prisma folder, as Prisma resolves them."""
    if url.startswith("file:"):
        return _parse_sqlite_url(url, prisma_dir or DEFAULT_PRISMA_DIRS["sqlite"])
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("mysql", "mariadb"):
        return _parse_server_url(url, parts, "mysql", 3306)
    if scheme in ("postgresql", "postgres"):
        return _parse_server_url(url, parts, "postgresql", 5432)
    raise ConfigError("DATABASE_URL %s: unsupported scheme; use file:, mysql:// or postgresql://" % mask_url(url))


def _parse_sqlite_url(url, prisma_dir):
    path = url[len("file:"):].split("?", 1)[0]
    if path.startswith("//"):
        path = path[2:]
    if not path:
        raise ConfigError("DATABASE_URL %s names no file" % url)
    path = os.path.normpath(os.path.join(prisma_dir, unquote(path)))
    return DatabaseUrl(engine="sqlite", raw=url, path=path)


def _parse_server_url(url, parts, engine, default_port):
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigError("DATABASE_URL %s: bad port (%s)" % (mask_url(url), exc)) from None
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError("DATABASE_URL %s names no database" % mask_url(url))
    socket = query.pop("socket", "") if engine == "mysql" else query.pop("host", "")
    schema = query.pop("schema", "public") if engine == "postgresql" else ""
    return DatabaseUrl(
        engine=engine,
        raw=url,
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        schema=schema,
        socket=socket,
        options=query,
    )


def release_number(release):
    match = RELEASE_PATTERN.match(release)
    if not match:
        raise ConfigError("DEMO_RELEASE=%s: expected v1, v2, ..." % release)
    return int(match.group(1))


def load_identity(environ=None):
    """(release, version) from DEMO_RELEASE, as `load_settings` reads it, without needing a database."""
    release = _layered_lookup(os.environ if environ is None else environ)("DEMO_RELEASE") or "v1"
    return release, "%d.0.0" % release_number(release)


def load_settings(environ=None):
    environ = os.environ if environ is None else environ
    lookup = _layered_lookup(environ)
    url = lookup("DATABASE_URL")
    if not url:
        raise ConfigError("DATABASE_URL is not set (environment or the file named by DEMO_ENV_FILE)")
    release, version = load_identity(environ)
    prisma_dir = lookup("DEMO_PRISMA_DIR")
    if prisma_dir:
        database_url = parse_database_url(url, os.path.abspath(prisma_dir))
    else:
        database_url = parse_database_url(url)
        prisma_dir = DEFAULT_PRISMA_DIRS[database_url.engine]
    return Settings(
        database_url=database_url,
        prisma_dir=os.path.abspath(prisma_dir),
        release=release,
        version=version,
        color=lookup("DEMO_COLOR") or lookup("APP_COLOR") or "",
        fault=lookup("DEMO_FAULT") or "none",
        fault_file=lookup("DEMO_FAULT_FILE") or "",
        migrate_on_start=(lookup("DEMO_MIGRATE_ON_START") or "0").lower() in ("1", "true", "yes", "on"),
    )


# A release may ship its identity (DEMO_RELEASE, a fault for a deliberately bad build) next to
# its code, so switching the `current` link really switches what runs.
RELEASE_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "release.env")


def _layered_lookup(environ):
    """Environment first, then the release's own release.env, then the shared .env (DEMO_ENV_FILE)."""
    layers = [environ]
    if os.path.isfile(RELEASE_FILE):
        layers.append(_read_layer(RELEASE_FILE, "release.env"))
    env_file = environ.get("DEMO_ENV_FILE")
    if env_file:
        layers.append(_read_layer(env_file, "DEMO_ENV_FILE=%s" % env_file))

    def lookup(key):
        for layer in layers:
            value = layer.get(key)
            if value not in (None, ""):
                return value
        return ""

    return lookup


def _read_layer(path, what):
    try:
        return read_env_file(path)
    except OSError as exc:
        raise ConfigError("%s cannot be read: %s" % (what, exc.strerror)) from None
