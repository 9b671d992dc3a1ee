#!/usr/bin/env python3
"""Writes the named regression inputs of ffi/tests/fuzz/corpus/ from the harness's input
encoding (fuzz_api.c, README.md): `python3 ffi/tests/fuzz/regressions.py`."""
import os

OPS = ["DRAIN_DELAY", "DRAIN_TIMEOUT", "CLOSE_TIMEOUT", "GRACE", "FORCE_AT", "TERMINATE_AT",
       "EXIT_CODE", "STRATEGY", "SIGNALS", "MANUAL", "PROBES", "SETTLE", "VALIDATE", "NEW",
       "ACQUIRE", "RELEASE", "KIND", "TRIGGER", "TRIGGER_SIGNAL", "PROBE", "ADVANCE",
       "ON_MILESTONE", "ON_CANCEL", "ON_CLOSE", "ON_CLOSE_DEFERRED", "HOOK_DONE",
       "RECORD_ABORTED", "QUERY", "REPORT", "FREE"]
OP = {n: i for i, n in enumerate(OPS)}
MANUAL_CLOCK = 0x00
# milestone callback actions (milestone_cb)
NONE, ADVANCE, TRIGGER, RELEASE, PROBE, ACQUIRE, HOOK_DONE, RECORD, TRIGGER_SIGNAL, REPORT_IN_DONE = range(10)
STR_HTTP, STR_DEPLOY = 2, 12


def ms(v):
    """rd_ms: < 200 in one byte, else 200 and 16 bits."""
    return [v] if v < 200 else [200, v & 0xff, v >> 8]


def cb_ms(v):
    """A callback's advance argument: < 128 ms as is, else (arg - 128) * 100 ms."""
    assert v < 128 or v % 100 == 0
    return v if v < 128 else 128 + v // 100


def on_milestone(draining=(NONE, 0), quiescing=(NONE, 0), closing=(NONE, 0), done=(REPORT_IN_DONE, 0)):
    return [OP["ON_MILESTONE"], *draining, *quiescing, *closing, *done]


def op(name, *args):
    return [OP[name], *args]


def manual_engine(drain_delay=0, drain_timeout=1, close_timeout=2, escalation=False):
    b = [MANUAL_CLOCK]
    b += op("DRAIN_DELAY", *ms(drain_delay)) + op("DRAIN_TIMEOUT", *ms(drain_timeout))
    b += op("CLOSE_TIMEOUT", *ms(close_timeout))
    if not escalation:
        b += op("FORCE_AT", 0) + op("TERMINATE_AT", 0)
    return b + op("NEW", 0)


END = op("QUERY", 0) + op("QUERY", 1) + op("QUERY", 4) + op("REPORT") + op("FREE")

INPUTS = {
    # Finding 1: advancing 1000 ms inside the DRAINING callback (a deadline past every
    # other) must still deliver DRAINING, QUIESCING, CLOSING, DONE, in order.
    "regress-1-reentrant-advance":
        manual_engine() + on_milestone(draining=(ADVANCE, cb_ms(1000)))
        + op("ACQUIRE", 0, 0) + op("TRIGGER_SIGNAL", 3) + END,
    # Finding 1b: releasing the last guard inside the DRAINING callback.
    "regress-1b-release-in-callback":
        manual_engine() + on_milestone(draining=(RELEASE, 0))
        + op("ACQUIRE", 0, 0) + op("TRIGGER_SIGNAL", 3) + END,
    # Finding 2: close_timeout 51 ms, a hook of order 0, no guards; advancing 100 ms
    # inside the DRAINING callback runs out the close budget before the hook is called:
    # it is SKIPPED and never called.
    "regress-2-hook-timed-out-before-called":
        manual_engine(drain_timeout=1000, close_timeout=51)
        + op("ON_CLOSE", STR_HTTP, 1, 0, 0)          # "http", order 0, timeout 0, returns 0
        + on_milestone(draining=(ADVANCE, cb_ms(100)))
        + op("TRIGGER", 0, STR_DEPLOY) + END,
    # The same with a deferred hook, completed afterwards (ignored).
    "regress-2b-deferred-hook-skipped":
        manual_engine(drain_timeout=1000, close_timeout=51)
        + op("ON_CLOSE_DEFERRED", STR_HTTP, 1, 0, 0)
        + on_milestone(draining=(ADVANCE, cb_ms(100)))
        + op("TRIGGER", 0, STR_DEPLOY) + op("HOOK_DONE", 0, 0, 0) + END,
    # Reentrant triggers: a repeated trigger from every callback, with escalation on.
    "regress-reentrant-triggers":
        manual_engine(drain_timeout=50, close_timeout=50, escalation=True)
        + op("ON_CLOSE_DEFERRED", STR_HTTP, 1, 0, 0)
        + on_milestone(draining=(TRIGGER, 0), quiescing=(TRIGGER, 0), closing=(TRIGGER, 0))
        + op("ACQUIRE", 0, 0) + op("TRIGGER", 1, STR_DEPLOY) + op("ADVANCE", 0, *ms(100)) + END,
    # record_aborted then a fatal trigger: not clean, the forced exit code.
    "regress-record-aborted-fatal":
        manual_engine() + op("EXIT_CODE", 7) + op("RECORD_ABORTED", 2, STR_HTTP)
        + op("TRIGGER", 2, STR_DEPLOY) + op("RECORD_ABORTED", 1, 0) + END,
    # The event stream (shutdown_on_event, registered with the cancel callback): a guard,
    # a trigger, the drain cut at its deadline (Cancelled after the cancel callback), a
    # hook, Done: every event's payload where its code says, milestones in order.
    "regress-event-stream":
        manual_engine(drain_timeout=5, close_timeout=50) + op("ON_CANCEL")
        + op("ON_CLOSE", STR_HTTP, 1, 10, 0) + op("ACQUIRE", 0, 0)
        + op("TRIGGER", 0, STR_DEPLOY) + op("ADVANCE", 0, 10) + END,
}

if __name__ == "__main__":
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(d, exist_ok=True)
    for name, data in INPUTS.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(bytes(data))
        print(f"{name}: {len(data)} bytes")
