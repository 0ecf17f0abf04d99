"""Injectable faults: the failure modes the runbooks describe, switchable per process or at runtime.

A spec is `none` or a comma-separated list of: error500, error_rate:<fraction>, slow:<ms>,
flap:<count>, skip_migrations, crash_on_start.
"""
import os
import threading
from dataclasses import dataclass


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class Faults:
    spec: str = "none"
    error500: bool = False
    fail_every: int = 0  # error_rate as "every Nth request", so test outcomes are reproducible
    slow_ms: int = 0
    flap: int = 0
    skip_migrations: bool = False
    crash_on_start: bool = False


def parse(spec):
    spec = (spec or "").strip() or "none"
    values = {}
    for item in (part.strip() for part in spec.split(",")):
        name, _unused, arg = item.partition(":")
        if name == "none" and not arg:
            continue
        if name in ("error500", "skip_migrations", "crash_on_start") and not arg:
            values[name] = True
        elif name == "error_rate":
            rate = _number(item, arg, float)
            if not 0 < rate <= 1:
                raise FaultSpecError("%s: the rate must be in (0, 1]" % item)
            values["fail_every"] = max(1, round(1 / rate))
        elif name == "slow":
            values["slow_ms"] = _number(item, arg, int)
        elif name == "flap":
            values["flap"] = _number(item, arg, int)
        else:
            raise FaultSpecError("unknown fault %r (expected none, error500, error_rate:F, slow:MS, "
                                 "flap:N, skip_migrations, crash_on_start)" % item)
    return Faults(spec=spec, **values)


def _number(item, arg, kind):
    try:
        value = kind(arg)
    except ValueError:
        raise FaultSpecError("%s: expected a number after ':'" % item) from None
    if value < 0:
        raise FaultSpecError("%s: must not be negative" % item)
    return value


class FaultState:
    """The faults in force plus the request counters that error_rate and flap count against.

    With a fault file, its content overrides DEMO_FAULT while the file exists and is re-read on
    every request; counters restart whenever the spec changes, so `flap:3` written to the file
    means "the next three health checks fail".
    """

    def __init__(self, default_spec, fault_file="", log=print):
        self.default = parse(default_spec)
        self.fault_file = fault_file
        self.log = log
        self.lock = threading.Lock()
        self.current = self.default
        self.requests = 0
        self.health_requests = 0

    def _read_file_spec(self):
        if not self.fault_file:
            return None
        try:
            with open(self.fault_file, encoding="utf-8") as handle:
                return handle.read().strip() or "none"
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.log("cannot read DEMO_FAULT_FILE %s: %s; using DEMO_FAULT" % (self.fault_file, exc))
            return None

    def resolve(self):
        spec = self._read_file_spec()
        if spec is None or spec == self.current.spec:
            return self.default if spec is None else self.current
        try:
            return parse(spec)
        except FaultSpecError as exc:
            self.log("ignoring DEMO_FAULT_FILE content: %s" % exc)
            return self.default

    def next_request(self, is_health):
        """Count one request; returns (faults, fail_by_rate, fail_by_flap)."""
        with self.lock:
            faults = self.resolve()
            if faults != self.current:
                self.log("fault changed: %s -> %s" % (self.current.spec, faults.spec))
                self.current = faults
                self.requests = self.health_requests = 0
            self.requests += 1
            if is_health:
                self.health_requests += 1
            fail_by_rate = bool(faults.fail_every) and self.requests % faults.fail_every == 0
            fail_by_flap = is_health and self.health_requests <= faults.flap
            return faults, fail_by_rate, fail_by_flap


def from_settings(settings, log):
    return FaultState(settings.fault, settings.fault_file, log)


def startup_faults(settings):
    """Faults that act at start (skip_migrations, crash_on_start) read the file too, if present."""
    state = from_settings(settings, lambda _msg: None)
    if settings.fault_file and os.path.exists(settings.fault_file):
        return state.resolve()
    return state.default
