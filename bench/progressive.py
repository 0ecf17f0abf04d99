"""Runbook 003's releases under continuous load: a full blue-green, a full canary promotion and a canary abort.

The demo app in two colours (tests/harness/colours.py) behind a throwaway nginx, both colours on one SQLite
database; a non-keep-alive client (tests/harness/load.py: a new connection per request, each from a random
user so the `$arg_user` split spreads them) sends --rate requests a second through nginx the whole time.

    blue-green      1.0.0 live on blue, then playbooks/blue-green.yml releases 2.0.0 on green
    canary          playbooks/canary.yml promotes 3.0.0 on blue through 5/10/25/50/100 %
    canary abort    playbooks/canary.yml with 4.0.0-bad on green, which answers 500 to 5 % of its requests

For each: failed requests (not 200, or no answer), requests served by the release under test, the total
time of the playbook, and for the abort the time from the first request the bad release served to the last
(the time it had traffic; the acceptance bound is two analysis intervals) and whether every failed request
was the bad release's own. Targets (issue 07): 0 failed requests for blue-green and the promotion; the
abort within two analysis intervals with only the bad release's errors.

    .venv/bin/python bench/progressive.py [--rate 60] [--interval 10]

Writes bench/results/progressive.json.
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.harness.collection import REPO_ROOT, ensure_collection_link  # noqa: E402
from tests.harness.colours import ColourSite  # noqa: E402
from tests.harness.load import Load  # noqa: E402
from tests.harness.servers import NginxServer  # noqa: E402


def release_under_load(site, playbook, release, rate, settings):
    """Runs the playbook while the load runs; returns (figures, the requests, the published stats)."""
    with Load(site.listen_port, rate=rate) as load:
        time.sleep(2)  # traffic before the change, as in production
        started = time.monotonic()
        run = site.play(playbook, extra_vars=dict(traffic_release=release), **settings)
        total = time.monotonic() - started
        time.sleep(2)
    requests = list(load.requests)
    stats = run.published_stats()
    pool = stats.get("target")
    served = [r for r in requests if r[2] == pool and r[0] >= requests[0][0]]
    failed = [r for r in requests if r[1] != 200]
    figures = dict(playbook=playbook, release=release, ok=run.ok, outcome=stats.get("outcome"), requests=len(requests),
                   failed=len(failed), served_by_release=len(served), total_s=round(total, 2))
    return figures, requests, stats, failed, served


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=60, help="requests a second through nginx")
    parser.add_argument("--interval", type=float, default=10, help="seconds per canary step before its analysis")
    options = parser.parse_args()
    ensure_collection_link()
    settings = dict(nginx_site_split_key="$arg_user", traffic_canary_interval=options.interval,
                    traffic_canary_min_requests=max(10, int(options.rate * 0.05 * options.interval * 0.8)),
                    traffic_canary_latency_floor_ms=200, traffic_observe=5, traffic_observe_samples=50, traffic_keep_warm=2)
    results = {}
    with tempfile.TemporaryDirectory(prefix="sr-bench-progressive-") as scratch:
        nginx = NginxServer(scratch).start()
        site = ColourSite(os.path.join(scratch, "site"), nginx)
        try:
            site.add_release("1.0.0", release="v1").add_release("2.0.0", release="v2").add_release("3.0.0", release="v3")
            site.add_release("4.0.0-bad", release="v4", fault="error_rate:0.05")
            first = site.play("blue-green", extra_vars=dict(traffic_release="1.0.0"), **settings)
            if not first.ok:
                raise RuntimeError("the first release did not go live: %s" % first)

            results["blue-green"] = release_under_load(site, "blue-green", "2.0.0", options.rate, settings)[0]
            results["canary promotion"] = release_under_load(site, "canary", "3.0.0", options.rate, settings)[0]

            figures, requests, stats, failed, served = release_under_load(site, "canary", "4.0.0-bad", options.rate,
                                                                          dict(settings, traffic_abort_is_failure=False))
            had_traffic = (served[-1][0] - served[0][0]) if served else 0.0
            figures.update(aborted=bool(stats.get("aborted")), time_to_abort_s=round(had_traffic, 2),
                           bound_s=2 * options.interval, only_bad_release_errors=all(r[2] == stats.get("target") for r in failed),
                           live_after=stats.get("live"), stable=stats.get("previous"))
            results["canary abort"] = figures
        finally:
            site.stop()
            nginx.stop()

    print("load: %.0f requests/s, non-keep-alive; canary interval %.0f s" % (options.rate, options.interval))
    print("%-18s %9s %7s %9s %9s %9s" % ("run", "requests", "failed", "by rel.", "abort s", "total s"))
    for name, figures in results.items():
        row = (name, figures["requests"], figures["failed"], figures["served_by_release"], figures.get("time_to_abort_s", "-"),
               figures["total_s"])
        print("%-18s %9d %7d %9d %9s %9.1f" % row)
    abort = results["canary abort"]
    verdicts = {
        "blue-green: 0 failed": results["blue-green"]["failed"] == 0 and results["blue-green"]["ok"],
        "canary promotion: 0 failed": results["canary promotion"]["failed"] == 0 and results["canary promotion"]["ok"],
        "canary abort: within two intervals, only its own errors": abort["aborted"] and abort["only_bad_release_errors"]
        and abort["time_to_abort_s"] <= abort["bound_s"] and abort["live_after"] == abort["stable"],
    }
    for name, met in verdicts.items():
        print("%-60s %s" % (name, "met" if met else "NOT MET"))
    out_dir = os.path.join(REPO_ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "progressive.json"), "w") as handle:
        json.dump(dict(rate=options.rate, interval_s=options.interval, runs=results, acceptance=verdicts), handle, indent=2)
    print("written: bench/results/progressive.json")


if __name__ == "__main__":
    main()
