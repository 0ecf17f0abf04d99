"""health_gate figures on the local demo app: detection latency and the cost of 1,000 samples.

Detection latency: a gate watches a healthy app (observe mode, 1 s interval, 2 s request timeout);
at a random moment the app turns unhealthy, and we measure how long the gate takes to fail. Two
ways of turning unhealthy: answering 500 at once, and hanging (no answer within the request
timeout, the slow end). The bound is interval + request timeout + 0.5 s.

Samples: the module sampling 1,000 requests from /api/version at several concurrencies.

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
BOUND = INTERVAL + TIMEOUT + 0.5
FAULTS = (("answers 500", "error500", "status 500"), ("hangs", "slow:30000", "no answer within"))
CONCURRENCIES = (1, 4, 16)


def run_gate(args):
    """The module itself (AnsibleModule entry point), as Ansible would run it, minus the executor."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
    done = subprocess.run([sys.executable, "-m", "ansible_collections.saferelease.core.plugins.modules.health_gate"],
                          input=json.dumps(dict(ANSIBLE_MODULE_ARGS=args)), capture_output=True, text=True, env=env,
                          check=False)
    return json.loads(done.stdout)


def detection_latency(app, fault_file, fault, expected, rng):
    """Seconds from the app turning unhealthy to the gate returning its failure."""
    if os.path.exists(fault_file):
        os.unlink(fault_file)
    outcome = {}

    def watch():
        outcome.update(run_gate(dict(url=app.url + "/api/health", interval=INTERVAL, timeout=TIMEOUT, observe=120,
                                     wait_timeout=10)))
        outcome["returned_at"] = time.monotonic()

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(2.0 + rng.uniform(0, INTERVAL))  # the gate has passed and is observing, at a random phase
    with open(fault_file, "w") as handle:
        handle.write(fault + "\n")
    broke_at = time.monotonic()
    watcher.join()
    if not (outcome.get("failed") and expected in outcome["msg"]):
        raise RuntimeError("the gate did not fail as expected: %r" % outcome)
    return outcome["returned_at"] - broke_at


def thousand_samples(app, concurrency):
    started = time.monotonic()
    result = run_gate(dict(url=app.url + "/api/version", samples=1000, sample_concurrency=concurrency))
    return time.monotonic() - started, result["metrics"]["samples"]


def summary(values):
    return dict(runs=[round(x, 3) for x in values], min=round(min(values), 3), median=round(statistics.median(values), 3),
                max=round(max(values), 3), within_bound=max(values) <= BOUND)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    ensure_collection_link()
    rng = random.Random(7)
    detection, sampling = {}, {}
    with tempfile.TemporaryDirectory(prefix="sr-bench-gate-") as scratch:
        fault_file = os.path.join(scratch, "fault")
        database = "file:" + os.path.join(scratch, "dev.db")
        app = DemoApp(database, environ=dict(DEMO_FAULT_FILE=fault_file)).migrate().start()
        try:
            for label, fault, expected in FAULTS:
                detection[label] = summary([detection_latency(app, fault_file, fault, expected, rng)
                                            for _unused in range(options.runs)])
            os.unlink(fault_file)
            for concurrency in CONCURRENCIES:
                total, samples = thousand_samples(app, concurrency)
                sampling[concurrency] = dict(total_s=round(total, 3), sampling_s=samples["duration_s"],
                                             requests_per_s=samples["requests_per_s"], latency_ms=samples["latency_ms"],
                                             errors=samples["errors"])
        finally:
            app.stop()
    figures = dict(detection_latency_s=dict(interval_s=INTERVAL, request_timeout_s=TIMEOUT, bound_s=BOUND, **detection),
                   samples_1000=dict(("concurrency_%d" % c, f) for c, f in sampling.items()))
    print("%-40s %s" % ("measure", "value"))
    for label, values in detection.items():
        print("%-40s %.3f / %.3f / %.3f s (bound %.1f s) %s" % (
            "detection, app %s: min/median/max" % label, values["min"], values["median"], values["max"], BOUND,
            "ok" if values["within_bound"] else "OVER BOUND"))
    for concurrency, values in sampling.items():
        print("%-40s %.3f s module run, sampling %.3f s, %s req/s, p50 %s / p95 %s / p99 %s ms, %d errors" % (
            "1,000 samples, concurrency %d" % concurrency, values["total_s"], values["sampling_s"],
            values["requests_per_s"], values["latency_ms"]["p50"], values["latency_ms"]["p95"],
            values["latency_ms"]["p99"], values["errors"]))
    out_dir = os.path.join(REPO_ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "health_gate.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    print("written: bench/results/health_gate.json")


if __name__ == "__main__":
    main()
