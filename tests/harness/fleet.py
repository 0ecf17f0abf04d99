"""A fleet of real Debian hosts on this machine, reached over SSH: no container engine needed.

A stock Debian bookworm root file system (``debootstrap --variant=minbase --include=python3,
openssh-server,sudo``, about 45 s and 284 MB) is built once into the cache (``/var/cache/
saferelease-fleet``, outside the checkout; ``SAFERELEASE_FLEET_CACHE`` moves it) with two users:
``deploy`` (key login, passwordless sudo) and ``app``. Layers of packages some hosts need (the
database server on the db host) are built once on top of it the same way.

Each host is an overlay of those layers with its own upper directory, in its own mount and UTS
namespace (``unshare --mount --uts``) with ``/proc``, ``/dev`` and a private ``/run``, running
``chroot <root> /usr/sbin/sshd -D`` on its own loopback address. Services on a host bind that
address, so the address of one host is wrong on another, as between real servers. Its
``/usr/bin/python3`` has only what Debian's ``python3`` has until a playbook installs more; apt
inside a host installs for real (the machine's apt sources and resolv.conf are copied in, and
downloaded packages are shared through the cache).

Requires root (mount, unshare, chroot); everything a host ran is killed and its overlay unmounted
on :meth:`Fleet.stop`, and ``python -m tests.harness leaks`` reports any fleet process or mount left.
"""
import fcntl
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

from tests.harness.servers import HarnessError, port_open, terminate, terminate_all, wait_until

CACHE = os.environ.get("SAFERELEASE_FLEET_CACHE", "/var/cache/saferelease-fleet")
BASE_VERSION = "1"  # change to rebuild every cached layer
SUITE = "bookworm"
PACKAGES = "python3,openssh-server,sudo"
FLEET_PREFIX = "sr-fleet-"
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "BatchMode=yes"]
# Layers built once on top of the base: name -> Debian packages.
LAYERS = {"mariadb": ["mariadb-server"], "postgresql": ["postgresql"]}


def _run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, **kwargs)
    if done.returncode != 0:
        raise HarnessError("%s failed (%d):\n%s\n%s" % (" ".join(command), done.returncode, done.stdout[-3000:],
                                                        done.stderr[-3000:]))
    return done.stdout


def _apt_sources():
    """This machine's apt source files (deb822 ``.sources`` and one-line ``.list``), the disabled ones left out."""
    folder = "/etc/apt/sources.list.d"
    found = []
    if os.path.isdir(folder):
        found = [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith((".sources", ".list"))]
    if os.path.isfile("/etc/apt/sources.list"):
        found.append("/etc/apt/sources.list")
    return found


def _apt_mirror():
    """The first Debian mirror in this machine's apt sources (what debootstrap downloads from)."""
    for path in _apt_sources():
        with open(path) as handle:
            for line in handle:
                words = line.split()
                if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                    return words[1]
                if words[:1] == ["deb"] and "security" not in line:
                    return next(w for w in words[1:] if w.startswith("http"))
    return "http://deb.debian.org/debian"


class _CacheLock(object):
    """One builder at a time for the cached layers (pytest workers may ask together)."""

    def __enter__(self):
        os.makedirs(CACHE, exist_ok=True)
        self.handle = open(os.path.join(CACHE, ".lock"), "w")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _stamp(path):
    marker = os.path.join(path, ".saferelease-layer")
    if not os.path.exists(marker):
        return None
    with open(marker) as handle:
        return handle.read().strip()


def _write_stamp(path):
    with open(os.path.join(path, ".saferelease-layer"), "w") as handle:
        handle.write(BASE_VERSION + "\n")


def ensure_base():
    """The stock Debian root file system, built once (about 45 s) and reused while its version matches."""
    if os.geteuid() != 0:
        raise HarnessError("the test fleet needs root (mount, unshare, chroot)")
    if shutil.which("debootstrap") is None:
        raise HarnessError("debootstrap is not installed; run `make deps` (it installs debootstrap)")
    base = os.path.join(CACHE, "base")
    with _CacheLock():
        if _stamp(base) == BASE_VERSION:
            return base
        shutil.rmtree(base, ignore_errors=True)
        building = tempfile.mkdtemp(prefix="base-", dir=CACHE)
        try:
            _run(["debootstrap", "--variant=minbase", "--include=" + PACKAGES, SUITE, building, _apt_mirror()])
            _configure_base(building)
            _write_stamp(building)
            os.rename(building, base)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return base


def _configure_base(root):
    os.chmod(root, 0o755)
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    # the machine's own apt sources replace debootstrap's (same mirror, plus updates and security)
    if _apt_sources():
        os.unlink(os.path.join(root, "etc", "apt", "sources.list"))
    for path in _apt_sources():
        target = os.path.join(root, "etc", "apt", "sources.list" if path == "/etc/apt/sources.list" else
                              os.path.join("sources.list.d", os.path.basename(path)))
        shutil.copy(path, target)
    for user in ("deploy", "app"):
        _run(["chroot", root, "useradd", "--create-home", "--shell", "/bin/bash", user])
    with open(os.path.join(root, "etc", "sudoers.d", "deploy"), "w") as handle:
        handle.write("deploy ALL=(ALL) NOPASSWD:ALL\n")
    os.chmod(os.path.join(root, "etc", "sudoers.d", "deploy"), 0o440)
    # each host makes its own host keys
    for name in os.listdir(os.path.join(root, "etc", "ssh")):
        if name.startswith("ssh_host_"):
            os.unlink(os.path.join(root, "etc", "ssh", name))
    # services installed later in a layer must not start inside the builder
    with open(os.path.join(root, "usr", "sbin", "policy-rc.d"), "w") as handle:
        handle.write("#!/bin/sh\nexit 101\n")
    os.chmod(os.path.join(root, "usr", "sbin", "policy-rc.d"), 0o755)


def _namespace_script(root, name, hostname=None, command=None):
    """Shell for ``unshare``: private /proc, /dev, /run and the cached apt archives of ``name`` for ``root``, then ``command``.

    Each host name keeps its own archive directory: downloads are reused from session to session,
    and hosts installing at the same time do not wait on one apt lock.
    """
    archives = os.path.join(CACHE, "apt-archives", name)
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    lines = ["set -e", "mount -t proc proc %s/proc" % root, "mount --rbind /dev %s/dev" % root,
             "mount -t tmpfs -o mode=0755 tmpfs %s/run" % root, "mkdir -p %s/run/sshd %s/run/lock" % (root, root),
             "mount --bind %s %s/var/cache/apt/archives" % (archives, root)]
    if hostname:
        lines.append("hostname %s" % hostname)
    lines.append(command)
    return "\n".join(lines)


def ensure_layer(name):
    """A cached layer of Debian packages on top of the base (``LAYERS[name]``): its directory."""
    base = ensure_base()
    layer = os.path.join(CACHE, "layers", name)
    with _CacheLock():
        if _stamp(layer) == BASE_VERSION:
            return layer
        shutil.rmtree(layer, ignore_errors=True)
        work = tempfile.mkdtemp(prefix="layer-", dir=CACHE)
        upper, scratch, root = (os.path.join(work, d) for d in ("upper", "work", "root"))
        for folder in (upper, scratch, root):
            os.makedirs(folder)
        _run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (base, upper, scratch), root])
        try:
            install = ("chroot %s sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                       "--no-install-recommends %s && apt-get clean && rm -rf /var/lib/apt/lists/*'" % (root, " ".join(LAYERS[name])))
            _run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                  _namespace_script(root, "layer-" + name, command=install)])
        finally:
            _run(["umount", root])
        _write_stamp(upper)
        os.makedirs(os.path.dirname(layer), exist_ok=True)
        os.rename(upper, layer)
        shutil.rmtree(work, ignore_errors=True)
    return layer


def _ssh_port(addresses):
    """22 unless something on this machine already listens on port 22 of every address."""
    for address in addresses:
        with socket.socket() as probe:
            try:
                probe.bind((address, 22))
            except OSError:
                break
    else:
        return 22
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Host(object):
    """One host of the fleet: its own root file system (overlay), namespaces, address and sshd."""

    def __init__(self, fleet, name, address, layers=()):
        self.fleet = fleet
        self.name = name
        self.address = address
        self.layers = list(layers)
        self.dir = os.path.join(fleet.dir, name)
        self.root = os.path.join(self.dir, "root")
        self.sshd_pid = None

    def start(self, base):
        upper, work = os.path.join(self.dir, "upper"), os.path.join(self.dir, "work")
        for folder in (upper, work, self.root):
            os.makedirs(folder)
        lower = ":".join([ensure_layer(layer) for layer in self.layers] + [base])
        _run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work), self.root])
        self._write("etc/hostname", self.name + "\n")
        self._write("etc/hosts", "127.0.0.1 localhost\n" + "".join("%s %s\n" % (h.address, h.name) for h in self.fleet.hosts))
        self._trust_the_machines_certificates()
        _run(["chroot", self.root, "ssh-keygen", "-A"])
        home = os.path.join(self.root, "home", "deploy", ".ssh")
        os.makedirs(home, mode=0o700, exist_ok=True)
        self._write("home/deploy/.ssh/authorized_keys", self.fleet.public_key, mode=0o600)
        account = self.account("deploy")
        for path in (home, os.path.join(home, "authorized_keys")):
            os.chown(path, account.pw_uid, account.pw_gid)
        sshd = ("exec chroot %s /usr/sbin/sshd -D -e -p %d -o ListenAddress=%s -o PasswordAuthentication=no -o UseDNS=no"
                % (self.root, self.fleet.port, self.address))
        log = open(os.path.join(self.dir, "sshd.log"), "ab")
        process = subprocess.Popen(["unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c",
                                    _namespace_script(self.root, self.name, self.name, sshd)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.sshd_pid = process.pid
        wait_until(lambda: port_open(self.fleet.port, self.address), 20, "sshd of %s on %s" % (self.name, self.address),
                   os.path.join(self.dir, "sshd.log"), process)
        return self

    def _trust_the_machines_certificates(self):
        """The machine's CA bundle, for npm on the host: where this machine reaches registries through a
        TLS-inspecting proxy, a host can only verify them with the machine's own CAs, as with its resolv.conf."""
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        if os.path.isfile(bundle):
            os.makedirs(os.path.join(self.root, "etc", "ssl"), exist_ok=True)
            shutil.copy(bundle, os.path.join(self.root, "etc", "ssl", "saferelease-fleet-ca.crt"))
            self._write("etc/npmrc", "cafile=/etc/ssl/saferelease-fleet-ca.crt\n")

    def _write(self, relative, text, mode=0o644):
        path = os.path.join(self.root, relative)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)

    def account(self, user):
        """The passwd entry of ``user`` inside this host."""
        with open(os.path.join(self.root, "etc", "passwd")) as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":")
                if fields[0] == user:
                    return pwd.struct_passwd((fields[0], fields[1], int(fields[2]), int(fields[3]), fields[4], fields[5],
                                              fields[6]))
        raise HarnessError("no user %s on %s" % (user, self.name))

    def path(self, relative):
        """Where a path of this host is seen from the machine (to read files the playbooks left)."""
        return os.path.join(self.root, relative.lstrip("/"))

    def run(self, command, user=None, check=True, input=None):
        """Run ``command`` (a shell string) on the host, as root or ``user``, inside its namespaces."""
        argv = ["nsenter", "--target", str(self.sshd_pid), "--mount", "--uts", "--root", "--wd=/"]
        if user:
            argv += ["runuser", "-u", user, "--"]
        argv += ["sh", "-c", command]
        done = subprocess.run(argv, capture_output=True, text=True, input=input, check=False)
        if check and done.returncode != 0:
            raise HarnessError("on %s: %s failed (%d):\n%s\n%s" % (self.name, command, done.returncode, done.stdout[-2000:],
                                                                   done.stderr[-2000:]))
        return done

    def ssh(self, command, user="deploy"):
        """Run ``command`` through SSH as ``user`` (what Ansible does)."""
        return subprocess.run(["ssh", "-i", self.fleet.key, "-p", str(self.fleet.port)] + SSH_OPTIONS +
                              ["%s@%s" % (user, self.address), command], capture_output=True, text=True, check=False)

    def processes(self):
        """Pids of every process whose root is this host's root (sshd and all it started, daemons included)."""
        return _processes_under(self.root)

    def stop(self):
        terminate_all(self.processes())
        if self.sshd_pid:
            terminate(self.sshd_pid)
        if os.path.ismount(self.root):
            subprocess.run(["umount", self.root], capture_output=True, check=False)
        if os.path.ismount(self.root):
            subprocess.run(["umount", "-l", self.root], capture_output=True, check=False)


def _processes_under(root):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/root" % entry).startswith(root):
                found.append(int(entry))
        except OSError:
            continue
    return found


class Fleet(object):
    """The hosts (name -> address, and layers per name) started together, with one SSH key for ``deploy``."""

    def __init__(self, hosts, layers=None):
        self.dir = tempfile.mkdtemp(prefix=FLEET_PREFIX)
        os.chmod(self.dir, 0o755)
        layers = layers or {}
        self.hosts = [Host(self, name, address, layers.get(name, ())) for name, address in hosts]
        self.port = _ssh_port([address for _n, address in hosts])
        self.key = os.path.join(self.dir, "id_ed25519")
        self.public_key = None

    def __getitem__(self, name):
        return next(h for h in self.hosts if h.name == name)

    def start(self):
        base = ensure_base()
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "saferelease-fleet", "-f", self.key])
        with open(self.key + ".pub") as handle:
            self.public_key = handle.read()
        try:
            for host in self.hosts:
                host.start(base)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for host in self.hosts:
            host.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def host_vars(self, host):
        """How Ansible reaches ``host``: over SSH as deploy with become, Debian's own python3."""
        return dict(ansible_host=host.address, ansible_port=self.port, ansible_user="deploy", ansible_become=True,
                    ansible_ssh_private_key_file=self.key, ansible_python_interpreter="/usr/bin/python3",
                    ansible_ssh_common_args=" ".join(SSH_OPTIONS))


def leaked_fleets():
    """Processes and mounts a fleet left behind: [(what, detail)]."""
    leaked = []
    for pid in _processes_under(os.path.join(tempfile.gettempdir(), FLEET_PREFIX)):
        leaked.append(("process", pid))
    with open("/proc/mounts") as handle:
        for line in handle:
            mountpoint = line.split()[1]
            if os.path.basename(os.path.dirname(os.path.dirname(mountpoint))).startswith(FLEET_PREFIX):
                leaked.append(("mount", mountpoint))
    return leaked
