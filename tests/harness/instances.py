"""The demo app as a fleet of instances behind one real nginx, for playbooks/rolling-update.yml.

Each instance is its own inventory host (``ansible_connection=local``) with its own base directory
(``releases/<name>``, ``current`` link, ``state/``, ``run/``) and port; all of them share one SQLite
database. The load balancer is the inventory host ``lb`` (group ``load_balancers``): its nginx runs
the pool include written by nginx_split and a server block proxying to ``$demo_pool``.
"""
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

from ansible_collections.saferelease.core.plugins.module_utils import nginx_config

from tests.harness import servers
from tests.harness.ansible_run import run_playbook
from tests.harness.collection import REPO_ROOT
from tests.harness.site import release_settings, unpack_demo_app

APP = "demo"
POOL = "app"
GROUP = "app"


class InstanceFleet(object):
    def __init__(self, base, nginx, count=3):
        self.base = base
        self.nginx = nginx
        self.names = ["app%d" % (index + 1) for index in range(count)]
        self.ports = dict((name, servers.free_port()) for name in self.names)
        self.listen_port = servers.free_port()
        self.sqlite_path = os.path.join(base, "data", "dev.db")
        self.url = "file:" + self.sqlite_path
        self.split_file = os.path.join(nginx.conf_dir, "%s_split.conf" % APP)
        self.server_file = os.path.join(nginx.conf_dir, "%s_vhost.conf" % APP)
        self.access_log = os.path.join(nginx.prefix, "logs", "%s_split.log" % APP)
        os.makedirs(os.path.join(base, "data"))
        for name in self.names:
            for sub in ("releases", "state", "run"):
                os.makedirs(os.path.join(self.dir(name), sub))

    def dir(self, name):
        return os.path.join(self.base, name)

    def address(self, name):
        return "127.0.0.1:%d" % self.ports[name]

    # --- releases and the running fleet ---------------------------------------------------------

    def add_release(self, release_name, release="v2", fault=None):
        """Unpack a demo release as releases/<release_name> on every instance (DEMO_RELEASE, an optional DEMO_FAULT)."""
        for name in self.names:
            path = unpack_demo_app(os.path.join(self.dir(name), "releases", release_name), release_settings(release, fault))
        if not os.path.exists(self.sqlite_path):
            done = subprocess.run([sys.executable, "-m", "demo_app", "migrate"], cwd=path, capture_output=True,
                                  text=True, env=dict(os.environ, DATABASE_URL=self.url), check=False)
            assert done.returncode == 0, done.stderr
        return self

    def deploy(self, release_name):
        """The state before a rolling update: every instance runs ``release_name`` from its ``current`` link,
        started the way the service role starts it (pid file under run/), all of them up in the nginx pool."""
        for name in self.names:
            os.symlink(os.path.join(self.dir(name), "releases", release_name), os.path.join(self.dir(name), "current"))
            self.start(name)
        write_load_balancer(self.split_file, self.server_file, [self.address(name) for name in self.names],
                            "127.0.0.1:%d" % self.listen_port, self.access_log)
        self.nginx.reload()
        servers.wait_until(lambda: self.get()[0] == 200, 10, "nginx in front of the fleet", self.nginx.error_log)
        return self

    def start(self, name):
        """Detached like the service role's process manager (setsid -f): the pid file names the app itself."""
        env = dict(os.environ, DATABASE_URL=self.url, PORT=str(self.ports[name]))
        env.pop("PYTHONPATH", None)
        with open(os.path.join(self.dir(name), "run", "%s.log" % APP), "ab") as log:
            subprocess.run(["setsid", "-f", "sh", "-c", 'echo $$ > "$0"; exec "$@"', self.pid_file(name),
                            sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1"],
                           cwd=os.path.join(self.dir(name), "current"), env=env, stdin=subprocess.DEVNULL,
                           stdout=log, stderr=log, check=True)
        servers.wait_until(lambda: self.get(self.ports[name], "/api/health")[0] == 200, 20, "instance %s" % name,
                           os.path.join(self.dir(name), "run", "%s.log" % APP))
        servers.record_pid(self.pid(name), "demo instance %s" % self.dir(name))

    def inventory(self, **overrides):
        common = dict(ansible_connection="local", ansible_python_interpreter=sys.executable)
        # every instance runs on this machine: the load balancer reaches each at 127.0.0.1, its inventory address
        instances = dict((name, dict(ansible_host="127.0.0.1", app_base_dir=self.dir(name), app_port=self.ports[name]))
                         for name in self.names)
        group_vars = dict(app_stack="demo", app_database_url=self.url,
                          app_service_command=[sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1"],
                          app_service_environment=dict(DATABASE_URL=self.url),
                          traffic_gate_wait_timeout=20, traffic_gate_interval=0.25, traffic_drain_seconds=0.5)
        group_vars.update(overrides)
        lb = dict(nginx_site_conf_dir=self.nginx.conf_dir, nginx_site_nginx_conf=self.nginx.main_conf,
                  nginx_site_nginx_prefix=self.nginx.prefix, nginx_site_reload_timeout=5)
        inventory = dict(all=dict(vars=common, children={
            GROUP: dict(hosts=instances, vars=group_vars),
            "load_balancers": dict(hosts=dict(lb=lb)),
        }))
        path = os.path.join(self.base, "inventory.json")
        with open(path, "w") as handle:
            json.dump(inventory, handle)
        return path

    def play(self, check=False, extra_vars=None, **overrides):
        return run_playbook(os.path.join(REPO_ROOT, "playbooks", "rolling-update.yml"),
                            inventory=self.inventory(**overrides), check=check,
                            extra_vars=dict(dict(target_hosts=GROUP), **(extra_vars or {})))

    # --- what is there --------------------------------------------------------------------------

    def get(self, port=None, path="/api/version"):
        """(status, json body) of one request, through nginx unless an instance's port is given."""
        url = "http://127.0.0.1:%d%s" % (port or self.listen_port, path)
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, None
        except (OSError, ValueError):
            return None, None

    def release_of(self, name):
        """The release the instance's ``current`` link points at."""
        return os.path.basename(os.path.realpath(os.path.join(self.dir(name), "current")))

    def serves(self, name):
        """DEMO_RELEASE the instance's process answers with on its own port (None when it does not answer)."""
        status, body = self.get(self.ports[name])
        return body["release"] if status == 200 and body else None

    def pid_file(self, name):
        return os.path.join(self.dir(name), "run", "%s.pid" % APP)

    def pid(self, name):
        try:
            with open(self.pid_file(name)) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        return pid if servers.pid_alive(pid) else None

    def pool(self):
        """The pool in the nginx include: address -> True when marked down."""
        with open(self.split_file) as handle:
            return read_pool(handle.read())

    def history(self, name):
        with open(os.path.join(self.dir(name), "state", "releases.json")) as handle:
            return json.load(handle)

    def audit(self, name):
        path = os.path.join(self.dir(name), "state", "audit.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as handle:
            return [json.loads(line) for line in handle]

    def stop(self):
        for name in self.names:
            pid = self.pid(name)
            if pid:
                servers.terminate(pid)


def read_pool(text):
    """The rolling pool in an nginx_split include: address -> True when marked down."""
    block = re.search(r"upstream %s_%s \{(.*?)\}" % (APP, POOL), text, re.S).group(1)
    return dict((address, bool(flags and "down" in flags.split()))
                for address, flags in re.findall(r"server\s+([^\s;]+)([^;]*);", block))


def write_load_balancer(split_file, server_file, addresses, listen, access_log):
    """What an operator's load balancer holds before a rolling update: the pool of ``addresses`` and a
    server block on ``listen`` proxying to it."""
    routing = nginx_config.build_routing(APP, {POOL: addresses}, active=POOL)
    with open(split_file, "w") as handle:
        handle.write(nginx_config.render(routing))
    with open(server_file, "w") as handle:
        handle.write("server {\n    listen %s;\n    location / {\n        proxy_pass http://$%s_pool;\n" % (listen, APP)
                     + "".join("        %s\n" % line for line in nginx_config.server_directives(APP, access_log))
                     + "    }\n}\n")
