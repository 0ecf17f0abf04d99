"""health_gate figures on the local demo app: detection latency and the cost of 1,000 samples.

Detection latency: a gate watches a healthy app (observe mode, 1 s interval, 2 s request
timeout); the app is switched to answering 500 at a random moment and we measure how long the
gate takes to fail. The bound is interval + request timeout + 0.5 s.

    .venv/bin/python bench/health_gate.py [--runs 5]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.harness.collection import COLLECTIONS_PATH, REPO_ROOT, ensure_collection_link  # noqa: E402
from tests.harness.servers import DemoApp  # noqa: E402

INTERVAL, TIMEOUT = 1.0, 2.0


def run_gate(args):
    """The module itself (AnsibleModule entry point), as Ansible would run it, minus the executor."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
    done = subprocess.run([sys.executable, "-m", "ansible_collections.saferelease.core.plugins.modules.health_gate"],
                          input=json.dumps(dict(ANSIBLE_MODULE_ARGS=args)), capture_output=True, text=True, env=env,
                          check=False)
    return json.loads(done.stdout)


def detection_latency(app, fault_file, rng):
    if os.path.exists(fault_file):
        os.unlink(fault_file)
    outcome = {}

    def watch():
        outcome.update(run_gate(dict(url=app.url + "/api/health", interval=INTERVAL, timeout=TIMEOUT, observe=60,
                                     wait_timeout=10)))
        outcome["returned_at"] = time.monotonic()

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(2.0 + rng.uniform(0, INTERVAL))  # the gate has passed and is observing
    with open(fault_file, "w") as handle:
        handle.write("error500\n")
    broke_at = time.monotonic()
    watcher.join()
    assert outcome.get("failed") and "status 500" in outcome["msg"], outcome
    return outcome["returned_at"] - broke_at


def thousand_samples(app):
    started = time.monotonic()
    result = run_gate(dict(url=app.url + "/api/version", samples=1000, sample_concurrency=4))
    return time.monotonic() - started, result["metrics"]["samples"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    ensure_collection_link()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="sr-bench-gate-") as scratch:
        fault_file = os.path.join(scratch, "fault")
        database = "file:" + os.path.join(scratch, "dev.db")
        app = DemoApp(database, environ=dict(DEMO_FAULT_FILE=fault_file)).migrate().start()
        try:
            latencies = [detection_latency(app, fault_file, rng) for _unused in range(options.runs)]
            os.unlink(fault_file)
            total, samples = thousand_samples(app)
        finally:
            app.stop()
    bound = INTERVAL + TIMEOUT + 0.5
    figures = dict(
        detection_latency_s=dict(runs=[round(x, 3) for x in latencies], min=round(min(latencies), 3),
                                 median=round(statistics.median(latencies), 3), max=round(max(latencies), 3),
                                 bound=bound, interval_s=INTERVAL, request_timeout_s=TIMEOUT,
                                 within_bound=max(latencies) <= bound),
        samples_1000=dict(total_s=round(total, 3), sampling_s=samples["duration_s"],
                          requests_per_s=samples["requests_per_s"], latency_ms=samples["latency_ms"],
                          errors=samples["errors"]))
    print("%-36s %s" % ("measure", "value"))
    rows = [
        ("detection latency min/median/max", "%.3f / %.3f / %.3f s (bound %.1f s)" % (
            min(latencies), statistics.median(latencies), max(latencies), bound)),
        ("1,000 samples, whole module run", "%.3f s (sampling %.3f s, %s req/s)" % (
            total, samples["duration_s"], samples["requests_per_s"])),
        ("sample latency", "p50 %s / p95 %s / p99 %s ms" % (
            samples["latency_ms"]["p50"], samples["latency_ms"]["p95"], samples["latency_ms"]["p99"])),
    ]
    for measure, value in rows:
        print("%-36s %s" % (measure, value))
    out_dir = os.path.join(REPO_ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "health_gate.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    print("written: bench/results/health_gate.json")


if __name__ == "__main__":
    main()
