"""Throwaway MariaDB, PostgreSQL, nginx and demo-app servers on 127.0.0.1, on free ports.

Every process the harness starts is recorded in ``.build/harness/pids`` so that
``python -m tests.harness leaks`` can prove nothing was left running.  Nothing here
touches a service that was already running: each server gets its own data directory,
socket, pid file and a port that nobody was listening on.
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import urllib.error
import urllib.request

from tests.harness.collection import REPO_ROOT

STATE_DIR = os.path.join(REPO_ROOT, ".build", "harness")
PID_LOG = os.path.join(STATE_DIR, "pids")
DEMO_APP_DIR = os.path.join(REPO_ROOT, "examples", "demo_app")


class HarnessError(RuntimeError):
    """A server could not be started; the message carries its log tail."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    for _unused in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not port_open(port):
            return port
    raise HarnessError("no free port found on 127.0.0.1")


def port_open(port, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def record_pid(pid, what):
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(PID_LOG, "a") as handle:
        handle.write("%d %s\n" % (pid, what))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def leaked_processes():
    """Recorded processes that are still alive, as (pid, description)."""
    leaked = []
    if not os.path.exists(PID_LOG):
        return leaked
    with open(PID_LOG) as handle:
        for line in handle:
            pid, _unused, what = line.strip().partition(" ")
            if pid.isdigit() and pid_alive(int(pid)) and _cmdline_matches(int(pid), what):
                leaked.append((int(pid), what))
    return leaked


def _cmdline_matches(pid, what):
    # A recycled pid belongs to someone else; only count it when it still runs our program.
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return what.split()[0] in cmdline


def wait_until(predicate, timeout, what, log_file=None, process=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.05)
    raise HarnessError("%s did not come up within %ss%s" % (what, timeout, _log_tail(log_file)))


def _log_tail(log_file, lines=20):
    if not log_file or not os.path.exists(log_file):
        return ""
    with open(log_file, errors="replace") as handle:
        return "\n--- %s ---\n%s" % (log_file, "".join(handle.readlines()[-lines:]))


def terminate(pid, timeout=15.0):
    """SIGTERM, then SIGKILL after ``timeout``; return once the process is gone."""
    terminate_all([pid] if pid else [], timeout)


def terminate_all(pids, timeout=15.0):
    """:func:`terminate` for several processes at once: one shared ``timeout`` for all of them."""
    for pid in pids:
        _reap(pid)  # a child of ours that already exited is a zombie until reaped: gone, not alive
    pids = [pid for pid in pids if pid_alive(pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in pids:
            _reap(pid)
        if not any(pid_alive(pid) for pid in pids):
            return
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        _reap(pid)


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _system_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _run_as(user):
    """preexec_fn dropping root to ``user`` (MariaDB and PostgreSQL tools refuse to run as root)."""
    if os.geteuid() != 0 or user is None:
        return None

    def drop():
        os.setgid(user.pw_gid)
        os.initgroups(user.pw_name, user.pw_gid)
        os.setuid(user.pw_uid)
    return drop


def _chown_tree(path, user):
    if os.geteuid() == 0 and user is not None:
        for root, dirs, files in os.walk(path):
            for name in [root] + [os.path.join(root, d) for d in dirs + files]:
                os.lchown(name, user.pw_uid, user.pw_gid)


def _find_binary(name, extra_globs=()):
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_globs:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    for sbin in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = os.path.join(sbin, name)
        if os.path.exists(candidate):
            return candidate
    raise HarnessError("%s not found; run `make deps` to install the server packages" % name)


def _scratch_dir(prefix, base=None):
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(path, 0o755)
    return path


class MariaDBServer(object):
    """``mariadb-install-db`` + ``mariadbd`` with its own datadir, socket and port."""

    engine = "mysql"
    user = "root"
    password = ""

    def __init__(self, base=None):
        self.base = _scratch_dir("sr-mariadb-", base)
        self.datadir = os.path.join(self.base, "data")
        self.socket = os.path.join(self.base, "mysqld.sock")
        self.log = os.path.join(self.base, "mariadbd.log")
        self.host = "127.0.0.1"
        self.port = None
        self.process = None

    def start(self):
        account = _system_user("mysql")
        os.makedirs(self.datadir)
        _chown_tree(self.base, account)
        install = [_find_binary("mariadb-install-db", ["/usr/bin/mysql_install_db"]), "--no-defaults",
                   "--datadir=%s" % self.datadir, "--auth-root-authentication-method=normal", "--skip-test-db"]
        if account is not None and os.geteuid() == 0:
            install.append("--user=mysql")
        with open(self.log, "ab") as log:
            done = subprocess.run(install, stdout=log, stderr=subprocess.STDOUT, cwd=self.base, check=False)
        if done.returncode != 0:
            raise HarnessError("mariadb-install-db failed%s" % _log_tail(self.log))
        self.port = free_port()
        command = [_find_binary("mariadbd", ["/usr/sbin/mysqld"]), "--no-defaults", "--datadir=%s" % self.datadir,
                   "--port=%d" % self.port, "--bind-address=127.0.0.1", "--socket=%s" % self.socket,
                   "--pid-file=%s" % os.path.join(self.base, "mariadbd.pid"), "--skip-log-bin",
                   "--skip-name-resolve", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
                   "--max-connections=300", "--log-error=%s" % self.log]
        if os.geteuid() == 0:
            command.append("--user=mysql")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        record_pid(self.process.pid, "mariadbd %s" % self.datadir)
        wait_until(self._answers, 60, "mariadbd on port %d" % self.port, self.log, self.process)
        return self

    def _answers(self):
        try:
            self.connect().close()
            return True
        except Exception:
            return False

    def connect(self, database=None, autocommit=True):
        import pymysql
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               database=database, autocommit=autocommit, connect_timeout=5, charset="utf8mb4")

    def url(self, database):
        return "mysql://%s@%s:%d/%s" % (self.user, self.host, self.port, database)

    def create_database(self, name):
        self.execute("CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" % name)

    def drop_database(self, name):
        self.execute("DROP DATABASE IF EXISTS `%s`" % name)

    def execute(self, statement, database=None):
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def stop(self):
        if self.process is not None:
            terminate(self.process.pid, timeout=30)
            self.process = None
        shutil.rmtree(self.base, ignore_errors=True)


class PostgresServer(object):
    """``initdb`` + ``pg_ctl`` (as the postgres account when run as root); TCP logins need the password."""

    engine = "postgresql"

    def __init__(self, base=None):
        self.base = _scratch_dir("sr-postgres-", base)
        self.datadir = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "tools.log")
        self.server_log = os.path.join(self.base, "postgres.log")
        self.host = "127.0.0.1"
        self.port = None
        self.pid = None
        self.account = _system_user("postgres") if os.geteuid() == 0 else None
        self.user = "postgres"
        self.password = "pg-" + uuid.uuid4().hex

    def _bin(self, name):
        return _find_binary(name, ["/usr/lib/postgresql/*/bin/%s" % name])

    def _run(self, command):
        with open(self.log, "ab") as log:
            return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
                                  preexec_fn=_run_as(self.account), check=False)

    def start(self):
        if os.geteuid() == 0 and self.account is None:
            raise HarnessError("running as root needs the postgres account; run `make deps`")
        password_file = os.path.join(self.base, "pwfile")
        with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(self.password + "\n")
        _chown_tree(self.base, self.account)
        initdb = [self._bin("initdb"), "-D", self.datadir, "--auth-local=trust", "--auth-host=scram-sha-256",
                  "--pwfile=%s" % password_file, "-U", self.user, "-E", "UTF8", "--no-sync"]
        initialised = self._run(initdb).returncode == 0
        os.unlink(password_file)
        if not initialised:
            raise HarnessError("initdb failed%s" % _log_tail(self.log))
        self.port = free_port()
        options = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" % (self.port, self.base)
        started = self._run([self._bin("pg_ctl"), "-D", self.datadir, "-l", self.server_log, "-o", options, "-w", "-t", "60",
                             "start"])
        if started.returncode != 0:
            raise HarnessError("pg_ctl start failed%s%s" % (_log_tail(self.log), _log_tail(self.server_log)))
        with open(os.path.join(self.datadir, "postmaster.pid")) as handle:
            self.pid = int(handle.readline())
        record_pid(self.pid, "postgres %s" % self.datadir)
        wait_until(self._answers, 30, "postgres on port %d" % self.port, self.server_log)
        return self

    def _answers(self):
        try:
            self.connect().close()
            return True
        except Exception:
            return False

    def connect(self, database="postgres", autocommit=True):
        import psycopg2
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=database,
                                connect_timeout=5)
        conn.autocommit = autocommit
        return conn

    def url(self, database):
        return "postgresql://%s:%s@%s:%d/%s?schema=public" % (self.user, self.password, self.host, self.port, database)

    def create_database(self, name):
        self.execute('CREATE DATABASE "%s"' % name)

    def drop_database(self, name):
        self.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)

    def execute(self, statement, database="postgres"):
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def stop(self):
        if self.pid is not None:
            self._run([self._bin("pg_ctl"), "-D", self.datadir, "-m", "fast", "-w", "-t", "30", "stop"])
            terminate(self.pid)
            self.pid = None
        shutil.rmtree(self.base, ignore_errors=True)


NGINX_MAIN = """\
daemon on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {conf_dir}/*.conf;
    server {{
        listen 127.0.0.1:{port};
        location = /__harness {{ return 200 "harness\\n"; }}
    }}
}}
"""


class NginxServer(object):
    """nginx with its own prefix; ``conf_dir/*.conf`` is included in the http block."""

    def __init__(self, base=None):
        self.prefix = _scratch_dir("sr-nginx-", base)
        self.conf_dir = os.path.join(self.prefix, "conf.d")
        self.main_conf = os.path.join(self.prefix, "nginx.conf")
        self.pid_file = os.path.join(self.prefix, "nginx.pid")
        self.error_log = os.path.join(self.prefix, "logs", "error.log")
        self.binary = _find_binary("nginx")
        self.port = None
        self.pid = None

    def start(self):
        for sub in ("conf.d", "logs", "tmp"):
            os.makedirs(os.path.join(self.prefix, sub), exist_ok=True)
        self.port = free_port()
        with open(self.main_conf, "w") as handle:
            handle.write(NGINX_MAIN.format(prefix=self.prefix, conf_dir=self.conf_dir, port=self.port))
        self.command(["-t"])
        self.command([])
        wait_until(lambda: os.path.exists(self.pid_file), 10, "nginx", self.error_log)
        with open(self.pid_file) as handle:
            self.pid = int(handle.read().strip())
        record_pid(self.pid, "nginx %s" % self.prefix)
        wait_until(lambda: port_open(self.port), 10, "nginx on port %d" % self.port, self.error_log)
        return self

    def command(self, args):
        done = subprocess.run([self.binary, "-p", self.prefix, "-c", self.main_conf] + args,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise HarnessError("nginx %s failed: %s" % (" ".join(args), done.stderr.strip()))
        return done

    def reload(self):
        self.command(["-s", "reload"])

    def stop(self):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
            deadline = time.time() + 10
            while pid_alive(self.pid) and time.time() < deadline:
                time.sleep(0.05)
            terminate(self.pid)
            self.pid = None
        shutil.rmtree(self.prefix, ignore_errors=True)


class DemoApp(object):
    """examples/demo_app serving on a free port; ``environ`` adds or overrides its environment."""

    def __init__(self, database_url, release="v2", color=None, fault=None, environ=None, base=None, port=None,
                 serve_args=(), scheme="http"):
        self.base = _scratch_dir("sr-demo-", base)
        self.database_url = database_url
        self.release = release
        self.color = color
        self.fault = fault
        self.environ = dict(environ or {})
        self.log = os.path.join(self.base, "app.log")
        self.pid_file = os.path.join(self.base, "app.pid")
        self.port = port
        self.serve_args = list(serve_args)
        self.scheme = scheme
        self.process = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def env(self):
        env = dict(os.environ)
        env.update(DATABASE_URL=self.database_url, DEMO_RELEASE=self.release,
                   PYTHONPATH=os.pathsep.join(filter(None, [DEMO_APP_DIR, env.get("PYTHONPATH")])))
        if self.color:
            env["DEMO_COLOR"] = self.color
        if self.fault:
            env["DEMO_FAULT"] = self.fault
        env.update(self.environ)
        return env

    def migrate(self):
        done = subprocess.run([sys.executable, "-m", "demo_app", "migrate"], env=self.env(), capture_output=True,
                              text=True, cwd=self.base, check=False)
        if done.returncode != 0:
            raise HarnessError("demo_app migrate failed: %s" % done.stderr.strip())
        return self

    def start(self):
        self.port = self.port or free_port()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--pid-file", self.pid_file] + self.serve_args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.base,
                start_new_session=True)
        record_pid(self.process.pid, "demo_app %s" % self.base)
        wait_until(lambda: os.path.exists(self.pid_file) and port_open(self.port), 30,
                   "demo app on port %d" % self.port, self.log, self.process)
        return self

    def get(self, path="/api/health", timeout=5):
        """(status, body) of a GET; HTTP errors are answers too."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self):
        if self.process is not None:
            terminate(self.process.pid)
            self.process = None
        shutil.rmtree(self.base, ignore_errors=True)
