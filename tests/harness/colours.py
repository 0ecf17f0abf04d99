"""The demo app laid out for blue-green behind a real nginx: ``releases/<name>``, a link per colour,
one SQLite database both colours share, and an inventory for playbooks/blue-green.yml.
"""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from tests.harness import servers
from tests.harness.ansible_run import run_playbook, write_localhost_inventory
from tests.harness.collection import REPO_ROOT
from tests.harness.site import release_settings, unpack_demo_app

APP = "demo"


class ColourSite(object):
    def __init__(self, base, nginx):
        self.base = base
        self.nginx = nginx
        self.ports = dict(blue=servers.free_port(), green=servers.free_port())
        self.listen_port = servers.free_port()
        self.sqlite_path = os.path.join(base, "data", "dev.db")
        self.url = "file:" + self.sqlite_path
        self.split_file = os.path.join(nginx.conf_dir, "%s_split.conf" % APP)
        self.access_log = os.path.join(nginx.prefix, "logs", "%s_split.log" % APP)
        os.makedirs(os.path.join(base, "data"))
        os.makedirs(os.path.join(base, "state"))

    def add_release(self, name, release="v2", fault=None, migrations=None):
        """Unpack a demo release under releases/ (DEMO_RELEASE, an optional fault, extra migrations)."""
        path = unpack_demo_app(os.path.join(self.base, "releases", name), release_settings(release, fault))
        for migration, sql in (migrations or {}).items():
            os.makedirs(os.path.join(path, "prisma", "migrations", migration))
            with open(os.path.join(path, "prisma", "migrations", migration, "migration.sql"), "w") as handle:
                handle.write(sql + "\n")
        if not os.path.exists(self.sqlite_path):
            done = subprocess.run([sys.executable, "-m", "demo_app", "migrate"], cwd=path, capture_output=True, text=True,
                                  env=dict(os.environ, DATABASE_URL=self.url), check=False)
            assert done.returncode == 0, done.stderr
        return self

    def inventory(self, **overrides):
        host = dict(ansible_connection="local", ansible_python_interpreter=sys.executable, app_stack="demo",
                    app_base_dir=self.base, app_port=self.ports["blue"], app_database_url=self.url,
                    app_service_command=[sys.executable, "-m", "demo_app", "serve", "--host", "127.0.0.1"],
                    app_service_environment=dict(DATABASE_URL=self.url),
                    traffic_colour_ports=self.ports, traffic_gate_wait_timeout=20, traffic_gate_interval=0.25,
                    traffic_observe=1, traffic_observe_samples=40, traffic_keep_warm=0,
                    nginx_site_name=APP, nginx_site_conf_dir=self.nginx.conf_dir,
                    nginx_site_listen="127.0.0.1:%d" % self.listen_port, nginx_site_access_log=self.access_log,
                    nginx_site_nginx_conf=self.nginx.main_conf, nginx_site_nginx_prefix=self.nginx.prefix,
                    nginx_site_reload_timeout=5)
        host.update(overrides)
        return write_localhost_inventory(self.base, host)

    def play(self, playbook, check=False, extra_vars=None, **overrides):
        return run_playbook(os.path.join(REPO_ROOT, "playbooks", playbook + ".yml"), inventory=self.inventory(**overrides),
                            check=check, extra_vars=extra_vars)

    def get(self, port=None, path="/api/version"):
        """(status, json body, X-Release-Pool) of one request, through nginx unless a colour's port is given."""
        url = "http://127.0.0.1:%d%s" % (port or self.listen_port, path)
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, json.load(answer), answer.headers.get("X-Release-Pool")
        except urllib.error.HTTPError as error:
            return error.code, None, error.headers.get("X-Release-Pool")
        except OSError:
            return None, None, None

    def pid_file(self, colour):
        return os.path.join(self.base, "run", "%s-%s.pid" % (APP, colour))

    def running(self, colour):
        try:
            with open(self.pid_file(colour)) as handle:
                return servers.pid_alive(int(handle.read().strip()))
        except (OSError, ValueError):
            return False

    def colour_release(self, colour):
        link = os.path.join(self.base, colour)
        return os.path.basename(os.path.realpath(link)) if os.path.islink(link) else None

    def audit(self):
        with open(os.path.join(self.base, "state", "audit.jsonl")) as handle:
            return [json.loads(line) for line in handle]

    def stop(self):
        for colour in self.ports:
            if self.running(colour):
                with open(self.pid_file(colour)) as handle:
                    servers.terminate(int(handle.read().strip()))
