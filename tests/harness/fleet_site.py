"""The demo app and its database on the test fleet, the way an operator's servers hold them.

:class:`FleetMariaDB` runs MariaDB on the db host, bound to that host's address. :class:`FleetSite`
deploys the demo app on an app host under its own base directory (releases/, current, run/,
state/), its ``.env`` owned by the ``app`` user with mode 0600, and writes an inventory that reaches
the host over SSH as ``deploy`` with ``become``, the app running as ``app``.
"""
import json
import os
import shlex
import urllib.error
import urllib.request
import uuid

from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.instances import read_pool, write_load_balancer
from tests.harness.servers import port_open, wait_until
from tests.harness.site import release_settings, unpack_demo_app

SHIPMENT_FILE = "20250821015630_add_shipment_file_field"


class FleetMariaDB(object):
    """MariaDB on ``host`` (a fleet host whose layers include mariadb), listening on the host's own address."""

    port = 3306

    def __init__(self, host):
        self.host = host
        self.password = "app-" + uuid.uuid4().hex

    def start(self):
        self.host.run("install -d -o mysql -g mysql /run/mysqld && "
                      "mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=normal "
                      "--skip-test-db > /var/log/mariadb-install.log 2>&1")
        self.host.run("setsid -f mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=%s --port=%d "
                      "--socket=/run/mysqld/mysqld.sock --skip-log-bin --skip-name-resolve "
                      "--innodb-buffer-pool-size=64M > /var/log/mariadbd.log 2>&1 < /dev/null" % (self.host.address, self.port))
        wait_until(lambda: port_open(self.port, self.host.address), 60, "MariaDB on %s" % self.host.name,
                   self.host.path("/var/log/mariadbd.log"))
        self.sql("CREATE USER 'app'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'app'@'%%'" % self.password)
        return self

    def sql(self, statement, database=None):
        """Run SQL on the db host with the mariadb client (root over the socket); its output rows, tab-separated."""
        command = "mariadb --batch --skip-column-names %s" % (database or "")
        return self.host.run(command, input=statement + ";\n").stdout

    def create_database(self, name):
        self.sql("CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" % name)
        return "mysql://app:%s@%s:%d/%s" % (self.password, self.host.name, self.port, name)


class FleetSite(object):
    """The demo app deployed on ``host``; ``inventory()`` reaches it as an operator's inventory would."""

    def __init__(self, fleet, host, database_url, port, workdir, base):
        self.base = base
        self.fleet = fleet
        self.host = host
        self.database_url = database_url
        self.port = port
        self.workdir = workdir

    @property
    def current(self):
        return self.base + "/current"

    def deploy(self):
        self.add_release("initial", "v2")
        env_file = self.current + "/.env"
        self.host.run("ln -sfn %s/releases/initial %s && install -d %s/state %s/backups && printf '%%s\\n' %s > %s && "
                      "chown app: %s && chmod 0600 %s && echo '{\"stack\": [\"initial\"], \"events\": []}' > %s/state/releases.json"
                      % (self.base, self.current, self.base, self.base, shlex.quote('DATABASE_URL="%s"' % self.database_url),
                         env_file, env_file, env_file, self.base))
        self.demo_app("migrate")
        return self

    def add_release(self, name, release, fault=None, under="releases"):
        """A demo release unpacked on the host as <under>/<name> (DEMO_RELEASE, an optional DEMO_FAULT)."""
        unpack_demo_app(self.host.path("%s/%s/%s" % (self.base, under, name)), release_settings(release, fault))
        return self

    def release_of(self):
        """The release the host's ``current`` link points at."""
        return os.path.basename(self.host.run("readlink -f %s" % self.current).stdout.strip())

    def environment(self):
        return dict(DEMO_ENV_FILE=self.current + "/.env", DEMO_PRISMA_DIR=self.current + "/prisma-mysql",
                    PYTHONPATH=self.current)

    def demo_app(self, *args):
        exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(self.environment().items()))
        return self.host.run("cd %s && env %s /usr/bin/python3 -m demo_app %s" % (self.current, exports, " ".join(args)),
                             user="app").stdout

    def inventory(self, **overrides):
        path = os.path.join(self.workdir, "inventory-%s.json" % self.host.name)
        with open(path, "w") as handle:
            json.dump(dict(all=dict(children=dict(demo=dict(hosts={self.host.name: self.host_vars(**overrides)})))), handle)
        return path

    def host_vars(self, **overrides):
        """The app host's inventory variables: reached over SSH as deploy, the app serving on the host's address."""
        host = dict(self.fleet.host_vars(self.host), app_stack="demo", app_database_engine="mysql", app_user="app",
                    app_base_dir=self.base, app_port=self.port, app_prisma_dir=self.current + "/prisma-mysql",
                    app_database_url="", app_health_url="http://%s:%d/api/health" % (self.host.address, self.port),
                    app_service_command=["/usr/bin/python3", "-m", "demo_app", "serve", "--host", self.host.address,
                                         "--port", str(self.port)],
                    app_service_environment=self.environment(), rollback_gate_wait_timeout=20,
                    rollback_gate_interval=0.5, safe_sync_health_interval=0.5)
        host.update(overrides)
        return host

    def play(self, playbook, env=None, extra_vars=None, **overrides):
        return run_playbook(os.path.join(REPO_ROOT, "playbooks", playbook + ".yml"), inventory=self.inventory(**overrides),
                            extra_vars=extra_vars, env=env)

    def app_process(self, service="demo"):
        """(user, pid) of the running ``service``, read on the host from its pid file; None when it does not run."""
        done = self.host.run("pid=$(cat %s/run/%s.pid) && ps -o user= -p \"$pid\" && echo \"$pid\"" % (self.base, service),
                             check=False)
        if done.returncode != 0:
            return None
        user, pid = done.stdout.split()
        return user, int(pid)

    def health(self):
        try:
            with urllib.request.urlopen("http://%s:%d/api/health" % (self.host.address, self.port), timeout=5) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
        except OSError as error:
            return None, str(error)


class FleetLoadBalancer(object):
    """Debian's nginx on the lb host, as an operator runs it: the stock nginx.conf with its conf.d, a
    server block on the host's own address proxying to the pool that rolling-update.yml owns."""

    conf_dir = "/etc/nginx/conf.d"

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.split_file = self.conf_dir + "/demo_split.conf"

    def start(self, addresses=None):
        """nginx with the stock configuration; with ``addresses``, the pool of a rolling update and its server block."""
        # The stock default site listens on every address's port 80: an operator replaces it.
        self.host.run("rm -f /etc/nginx/sites-enabled/default")
        if addresses is not None:
            write_load_balancer(self.host.path(self.split_file), self.host.path(self.conf_dir + "/demo_vhost.conf"), addresses,
                                "%s:%d" % (self.host.address, self.port), "/var/log/nginx/demo_split.log")
        # another flow's test may have left nginx running with its own site: reload it then
        self.host.run("nginx -t 2>&1 && { nginx -s reload 2>/dev/null || nginx; }")
        if addresses is not None:
            wait_until(lambda: port_open(self.port, self.host.address), 20, "nginx on %s" % self.host.name,
                       self.host.path("/var/log/nginx/error.log"))
        return self

    def pool(self):
        with open(self.host.path(self.split_file)) as handle:
            return read_pool(handle.read())

    def host_vars(self):
        return dict(nginx_site_conf_dir=self.conf_dir, nginx_site_reload_timeout=10)


# What merely logging in and running Ansible leaves on a host: login accounting and Ansible's scratch space.
_SESSION_TRACES = ("var/log/lastlog", "var/log/wtmp", "var/log/btmp")


def upper_changes(host, since):
    """Files the host gained or changed since ``since`` (:func:`upper_snapshot`), besides a session's own traces."""
    now = upper_snapshot(host)
    return sorted(path for path, stamp in now.items() if since.get(path) != stamp and path not in _SESSION_TRACES
                  and "/.ansible/" not in "/" + path + "/" and not path.startswith("tmp/"))


def upper_snapshot(host):
    """Every file in the host's overlay upper directory (what differs from the stock image) with its mtime."""
    upper = os.path.join(host.dir, "upper")
    found = {}
    for root, _dirs, files in os.walk(upper):
        for name in files:
            path = os.path.join(root, name)
            try:
                found[os.path.relpath(path, upper)] = os.lstat(path).st_mtime_ns
            except OSError:
                continue
    return found
