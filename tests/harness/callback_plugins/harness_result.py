"""Writes every task result, unabridged (``diff`` included), as JSON lines for the test harness."""
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: harness_result
type: aggregate
short_description: task results as JSON lines for the saferelease test harness
description: Appends each task result to the file named by C(SAFERELEASE_HARNESS_RESULTS).
requirements: [enable in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "harness_result"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, outcome):
        target = os.environ.get("SAFERELEASE_HARNESS_RESULTS")
        if not target:
            return
        try:
            full_name = result._task.get_name(include_role_fqcn=False)
        except TypeError:  # include_role's own get_name() takes no arguments
            full_name = result._task.get_name()
        role, _sep, name = full_name.rpartition(" : ")
        # ``at`` lets a bench see where a playbook spends its time.
        record = dict(host=result._host.get_name(), task=name, role=role, outcome=outcome, at=time.time(),
                      result=result._result)
        with open(target, "a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")
