"""Continuous traffic from a non-keep-alive client: every request on a new connection, as in the
runbook's `ab`/`curl` loops, each from a random user (``?user=N``) so a split keyed on the user spreads."""
import http.client
import random
import threading
import time


class Load(object):
    """``with Load(port, rate=50) as load: ...``; then ``load.requests`` holds (time, status, pool, release)."""

    def __init__(self, port, rate=50.0, path="/api/version", workers=4, timeout=5.0, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.path = path
        self.interval = workers / float(rate)
        self.workers = workers
        self.timeout = timeout
        self.requests = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []

    def _one(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", "%s?user=%d" % (self.path, random.randrange(1 << 30)), headers={"Connection": "close"})
            answer = conn.getresponse()
            body = answer.read()
            release = None
            if answer.status == 200 and b'"release"' in body:
                release = body.split(b'"release"', 1)[1].split(b'"')[1].decode()
            return answer.status, answer.getheader("X-Release-Pool"), release
        except (OSError, http.client.HTTPException) as exc:
            return "error: %s" % exc.__class__.__name__, None, None
        finally:
            conn.close()

    def _run(self):
        next_at = time.monotonic()
        while not self._stop.is_set():
            status, pool, release = self._one()
            with self._lock:
                self.requests.append((time.time(), status, pool, release))
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()

    def __enter__(self):
        for _worker in range(self.workers):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def failed(self, release=None):
        """Requests that did not get a 200, all of them or only those served by ``release``."""
        with self._lock:
            return [r for r in self.requests if r[1] != 200 and (release is None or r[3] == release)]

    def served_by(self, release):
        with self._lock:
            return [r for r in self.requests if r[3] == release]
