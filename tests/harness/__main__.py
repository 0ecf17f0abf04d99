"""Command line for the harness, for molecule and the Makefile.

    python -m tests.harness up mariadb STATE.json [DB...]
                                                     start a server with databases DB... (default:
                                                     molecule), write its connection facts
    python -m tests.harness down STATE.json          stop what STATE.json describes
    python -m tests.harness ports N STATE.json       pick N free loopback ports (kept once chosen)
    python -m tests.harness load PORT STATE.json     start continuous non-keep-alive traffic at nginx on PORT in the
                                                     background; every request goes as a JSON line to STATE.json's
                                                     "log"; `down STATE.json` stops it
    python -m tests.harness leaks                    fail if any process the harness started still runs
"""
import json
import os
import signal
import subprocess
import sys
import threading

from tests.harness import servers

SERVERS = {"mariadb": servers.MariaDBServer, "postgresql": servers.PostgresServer, "nginx": servers.NginxServer}


def up(kind, state_file, databases=()):
    server = SERVERS[kind]().start()
    facts = dict(kind=kind)
    if kind == "nginx":
        facts.update(prefix=server.prefix, conf_dir=server.conf_dir, main_conf=server.main_conf, port=server.port,
                     pid=server.pid)
    else:
        facts.update(base=server.base, datadir=server.datadir, host=server.host, port=server.port, user=server.user,
                     pid=server.process.pid if kind == "mariadb" else server.pid)
        names = list(databases) or ["molecule"]
        for name in names:
            server.create_database(name)
        facts.update(database=names[0], url=server.url(names[0]),
                     urls=dict((name, server.url(name)) for name in names))
    with open(state_file, "w") as handle:
        json.dump(facts, handle, indent=2)
    print(json.dumps(facts))


def down(state_file):
    if not os.path.exists(state_file):
        return
    with open(state_file) as handle:
        facts = json.load(handle)
    if facts["kind"] == "load":
        if servers.pid_alive(facts["pid"]):
            os.kill(facts["pid"], signal.SIGTERM)
        servers.terminate(facts["pid"], timeout=30)
        os.unlink(state_file)
        return
    if facts["kind"] == "postgresql":
        server = servers.PostgresServer.__new__(servers.PostgresServer)
        server.__dict__.update(base=facts["base"], datadir=facts["datadir"], log=os.path.join(facts["base"], "tools.log"),
                               pid=facts["pid"], account=servers._system_user("postgres") if os.geteuid() == 0 else None)
        server.stop()
    else:
        if facts["kind"] == "nginx" and servers.pid_alive(facts["pid"]):
            os.kill(facts["pid"], signal.SIGQUIT)  # graceful: finish requests in flight
        servers.terminate(facts["pid"], timeout=30)
        servers.shutil.rmtree(facts.get("base") or facts.get("prefix"), ignore_errors=True)
    os.unlink(state_file)


def load(port, state_file):
    log = os.path.splitext(state_file)[0] + ".jsonl"
    child = subprocess.Popen([sys.executable, "-m", "tests.harness", "load-run", str(port), log],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    servers.record_pid(child.pid, "tests.harness load-run")
    with open(state_file, "w") as handle:
        json.dump(dict(kind="load", pid=child.pid, log=log, port=port), handle, indent=2)


def load_run(port, log):
    """Sends traffic until SIGTERM, writing each request's (time, status, pool, release) as it completes."""
    from tests.harness.load import Load
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    traffic = Load(port, rate=60)
    with open(log, "a") as handle:
        written = 0
        with traffic:
            while not stop.wait(0.5):
                written = _append(handle, traffic.requests, written)
        _append(handle, traffic.requests, written)


def _append(handle, requests, written):
    for entry in requests[written:]:
        handle.write(json.dumps(dict(zip(("time", "status", "pool", "release"), entry))) + "\n")
    handle.flush()
    return len(requests)


def ports(count, state_file):
    if not os.path.exists(state_file):
        chosen = []
        while len(chosen) < count:
            port = servers.free_port()
            if port not in chosen:
                chosen.append(port)
        with open(state_file, "w") as handle:
            json.dump(chosen, handle)
    with open(state_file) as handle:
        print(handle.read())


def leaks():
    from tests.harness.fleet import leaked_fleets
    leaked = servers.leaked_processes()
    for pid, what in leaked:
        print("still running: pid %d (%s)" % (pid, what))
    fleet = leaked_fleets()
    for what, detail in fleet:
        print("test fleet left a %s: %s" % (what, detail))
    if leaked or fleet:
        return 1
    print("no harness process left running")
    if os.path.exists(servers.PID_LOG):
        os.unlink(servers.PID_LOG)
    return 0


def main(argv):
    if argv[:1] == ["up"] and len(argv) >= 3 and argv[1] in SERVERS:
        up(argv[1], argv[2], argv[3:])
    elif argv[:1] == ["down"] and len(argv) == 2:
        down(argv[1])
    elif argv[:1] == ["ports"] and len(argv) == 3 and argv[1].isdigit():
        ports(int(argv[1]), argv[2])
    elif argv[:1] == ["load"] and len(argv) == 3 and argv[1].isdigit():
        load(int(argv[1]), argv[2])
    elif argv[:1] == ["load-run"] and len(argv) == 3:
        load_run(int(argv[1]), argv[2])
    elif argv == ["leaks"]:
        return leaks()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
