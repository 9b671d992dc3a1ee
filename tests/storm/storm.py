#!/usr/bin/env python3
"""The signal storm (issue "Hostile callers and signal storms"): an example server is
started on 127.0.0.1 with an ephemeral port, gets 1,000 SIGTERMs as fast as a python
loop of os.kill sends them, and must then

  1. exit normally: never die by a signal (SIGPIPE / 141, SIGTERM / 143, anything);
  2. print its shutdown report (the JSON report where the server has one, or the text
     report "shutdown report: ..." on stderr);
  3. exit with the report's exit_code (every report it printed says the same code).

Two scenarios: idle, and with a slow request in flight (its outcome at the client is
recorded, never required: the third trigger terminates the process).

Usage (tests/storm/run.sh builds the servers and calls this):
  storm.py --rounds N --server NAME=KIND:ARG ...
    KIND rust  ARG: the binary (smol-server, threads-server)
    KIND c     ARG: the binary (examples/c/server, LD_LIBRARY_PATH set by the caller)
    KIND node  ARG: examples/node/server.js
Prints one line per run, a results table, and closes with
  storm: N passed, M failed
  N passed, M failed
Exit status 0 only when nothing failed. Only 127.0.0.1; every wait is bounded; only
the servers this script started get signals, by their PID (never reaped before the
storm ends, so the PID cannot be reused meanwhile).
"""
import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SIGNALS = int(os.environ.get("STORM_SIGNALS", "1000"))
EXIT_TIMEOUT = float(os.environ.get("STORM_EXIT_TIMEOUT", "30"))  # s, the bound on the exit
START_TIMEOUT = float(os.environ.get("STORM_START_TIMEOUT", "30"))  # s, until it listens
SLOW_MS = int(os.environ.get("STORM_SLOW_MS", "5000"))  # the in-flight request's length
TAIL = 15  # lines of each output shown for a failure

SCENARIOS = ("idle", "slow")


# ----- the servers ----------------------------------------------------------------------

def server_command(kind, arg, tmp):
    """(argv, where the listening line is, its regex, report file or None)."""
    log = os.path.join(tmp, "requests.log")
    if kind == "rust":
        # "smol-server listening on 127.0.0.1:PORT" on stderr; --json-report prints the
        # JSON report on stdout at the end, the text report always goes to stderr.
        return ([arg, "--port", "0", "--json-report", "--log-requests", log],
                "stderr", re.compile(r"listening on 127\.0\.0\.1:(\d+)"), None)
    if kind == "c":
        # "listening 127.0.0.1:PORT" on stdout; "server: report {json}" on stderr at the end.
        return ([arg, "--port", "0", "--log-requests", log],
                "stdout", re.compile(r"^listening 127\.0\.0\.1:(\d+)", re.M), None)
    if kind == "node":
        # "listening on PORT pid N" on stdout; --report FILE: the JSON report at Done,
        # "event: done exit_code=..." on stdout.
        report = os.path.join(tmp, "report.json")
        return (["node", arg, "--port", "0", "--log-requests", log, "--report", report],
                "stdout", re.compile(r"^listening on (\d+)", re.M), report)
    raise SystemExit(f"storm.py: unknown server kind {kind}")


def read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ----- the reports ------------------------------------------------------------------------

TEXT_REPORT = re.compile(
    r"^shutdown report: (?P<verdict>.*), exit code (?P<code>-?\d+) "
    r"\(reason: (?P<reason>.*), (?P<triggers>\d+) triggers?\)$", re.M)
NODE_DONE = re.compile(r"^event: done exit_code=(-?\d+) forced=(\S+) aborted=(\d+)$", re.M)


def verdict_of_json(r):
    forced = r.get("forced")
    if forced is None:
        return "clean" if r.get("exit_code") == 0 else "unclean"
    return str(forced)


def verdict_of_text(v):
    if v.startswith("terminated"):
        return "terminated"
    if v == "forced: repeated trigger":
        return "escalation"
    if v == "forced: drain deadline passed":
        return "drain_timeout"
    if v == "clean":
        return "clean"
    return "unclean"


def reports(stdout, stderr, report_file):
    """Every report the run printed: [(source, exit_code, verdict, triggers or None)]."""
    found = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and "exit_code" in r:
                found.append(("json/stdout", r["exit_code"], verdict_of_json(r), r.get("triggers")))
    for line in stderr.splitlines():
        if line.startswith("server: report {"):
            try:
                r = json.loads(line[len("server: report "):])
                found.append(("json/stderr", r["exit_code"], verdict_of_json(r), r.get("triggers")))
            except (ValueError, KeyError):
                found.append(("json/stderr(unparsable)", None, "?", None))
    if report_file and os.path.exists(report_file):
        try:
            r = json.loads(read(report_file))
            found.append(("json/--report", r["exit_code"], verdict_of_json(r), r.get("triggers")))
        except (ValueError, KeyError):
            found.append(("json/--report(unparsable)", None, "?", None))
    for m in TEXT_REPORT.finditer(stderr):
        found.append(("text/stderr", int(m["code"]), verdict_of_text(m["verdict"]), int(m["triggers"])))
    for m in NODE_DONE.finditer(stdout):
        forced = m[2]
        v = ("clean" if m[1] == "0" else "unclean") if forced == "null" else forced
        found.append(("event/stdout", int(m[1]), v, None))
    return found


# ----- the client ---------------------------------------------------------------------

def start_slow(port, rid):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"GET /slow?ms={SLOW_MS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"X-Request-Id: {rid}\r\nConnection: close\r\n\r\n").encode())
    return s


def outcome(s):
    """What the in-flight request got, read after the server exited (bounded)."""
    data = b""
    err = None
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        err = "timeout"
    except ConnectionResetError:
        err = "reset"
    except OSError as e:
        err = type(e).__name__
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    if m:
        return f"HTTP {m[1].decode()}" + (f" then {err}" if err else "")
    if data:
        return f"garbage {data[:40]!r}" + (f" then {err}" if err else "")
    if err == "reset":
        return "connection reset, no response"
    if err:
        return f"no response ({err})"
    return "closed, no response"


# ----- one run ----------------------------------------------------------------------------

def status_of(rc):
    if rc is None:
        return "hung"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit {rc}"


def zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_for_line(path, regex, proc, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        m = regex.search(read(path))
        if m:
            return int(m[1])
        if proc.poll() is not None:
            return None
        time.sleep(0.01)
    return None


def wait_for_text(path, text, proc, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if text in read(path):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def tail(text, n=TAIL):
    lines = text.rstrip("\n").splitlines()
    return lines[-n:]


def run_once(name, kind, arg, scenario, n, rounds):
    """Returns (passed, problems, info dict)."""
    tmp = tempfile.mkdtemp(prefix=f"storm-{name}-")
    info = {"status": None, "verdict": None, "client": None, "source": None, "triggers": None}
    label = f"{name} {scenario} {n}/{rounds}"
    argv, where, listen_re, report_file = server_command(kind, arg, tmp)
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    problems = []
    details = []
    client = None
    # Outputs to files, not pipes: a pipe closed on the harness's side would be a
    # SIGPIPE of our own making.
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    try:
        port = wait_for_line(out_path if where == "stdout" else err_path, listen_re, proc,
                             START_TIMEOUT)
        if port is None:
            problems.append("never said it listens")
        elif scenario == "slow":
            rid = f"storm-{n}"
            client = start_slow(port, rid)
            if not wait_for_text(os.path.join(tmp, "requests.log"), f"accepted {rid}\n", proc,
                                 START_TIMEOUT):
                problems.append("the slow request was never accepted")
        if not problems and proc.poll() is not None:
            problems.append(f"gone before the storm ({status_of(proc.returncode)})")
        sent = 0
        storm_ms = 0.0
        t0 = time.monotonic()
        if not problems:
            pid = proc.pid
            for i in range(SIGNALS):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    break
                sent += 1
                # Exited (not reaped yet, so the PID is still ours): stop early.
                if i % 50 == 49 and zombie(pid):
                    break
            storm_ms = (time.monotonic() - t0) * 1e3
        try:
            rc = proc.wait(timeout=EXIT_TIMEOUT if not problems else 0.1)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
            problems.append(f"hung: no exit within {EXIT_TIMEOUT:g} s (killed)")
        exit_ms = (time.monotonic() - t0) * 1e3
        info["status"] = status_of(rc)
        if client is not None:
            info["client"] = outcome(client)
            client = None
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    stdout, stderr = read(out_path), read(err_path)
    found = reports(stdout, stderr, report_file)
    if not problems:
        if rc is not None and rc < 0:
            problems.append(f"died by a signal ({status_of(rc)}, shell status {128 - rc})")
        if not found:
            problems.append("no report printed")
        codes = {c for _, c, _, _ in found}
        if found and len(codes) != 1:
            problems.append("the reports disagree: " +
                            ", ".join(f"{s} exit_code {c}" for s, c, _, _ in found))
        if rc is not None and rc >= 0 and found and codes != {rc}:
            problems.append(f"exit code {rc}, the report says exit_code "
                            f"{'/'.join(str(c) for c in sorted(codes, key=str))}")
    if found:
        src = "+".join(dict.fromkeys(s for s, _, _, _ in found))
        _, code, verdict, _ = found[0]
        triggers = next((t for _, _, _, t in found if t is not None), None)
        info["verdict"] = verdict
        info["source"] = src
        info["triggers"] = triggers
        details.append(f"report {verdict}, exit_code {code}"
                       + (f", triggers {triggers}" if triggers is not None else "")
                       + f" ({src})")
    else:
        info["verdict"] = "none"
    if sent:
        details.insert(0, f"{sent} SIGTERMs in {storm_ms:.1f} ms")
    details.insert(0, info["status"] + (f" {exit_ms:.0f} ms after the storm began" if sent else ""))
    if info["client"] is not None:
        details.append(f"in-flight request: {info['client']}")
    ok = not problems
    print(f"{'ok  ' if ok else 'FAIL'} {label}: " + "; ".join(details)
          + ("" if ok else " -- " + "; ".join(problems)), flush=True)
    if not ok:
        print(f"     command: {' '.join(argv)}")
        for what, text in (("stdout", stdout), ("stderr", stderr)):
            print(f"     tail of {what}:")
            for line in tail(text) or ["(empty)"]:
                print(f"       | {line}")
        sys.stdout.flush()
    if ok or not os.environ.get("STORM_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"     kept {tmp}")
    return ok, problems, info


# ----- main -----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--server", action="append", default=[],
                    help="NAME=KIND:ARG (KIND rust, c or node)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--broken", type=int, default=0,
                    help="setup failures already counted by the caller")
    a = ap.parse_args()
    scenarios = [s for s in a.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            raise SystemExit(f"storm.py: unknown scenario {s}")
    passed, failed = 0, a.broken
    table = []
    for spec in a.server:
        name, rest = spec.split("=", 1)
        kind, arg = rest.split(":", 1)
        for scenario in scenarios:
            print(f"== {name}, {scenario}: {a.rounds} run(s) of {SIGNALS} SIGTERMs", flush=True)
            row = {"p": 0, "f": 0, "status": collections.Counter(),
                   "verdict": collections.Counter(), "client": collections.Counter(),
                   "fail_status": collections.Counter(), "source": collections.Counter(),
                   "triggers": collections.Counter()}
            for n in range(1, a.rounds + 1):
                ok, _, info = run_once(name, kind, arg, scenario, n, a.rounds)
                row["p" if ok else "f"] += 1
                row["status"][info["status"]] += 1
                row["verdict"][info["verdict"]] += 1
                if info["client"] is not None:
                    row["client"][info["client"]] += 1
                if info["source"] is not None:
                    row["source"][info["source"]] += 1
                if info["triggers"] is not None:
                    row["triggers"][info["triggers"]] += 1
                if not ok:
                    row["fail_status"][info["status"]] += 1
            passed += row["p"]
            failed += row["f"]
            table.append((name, scenario, row))

    def counts(c):
        return ", ".join(f"{k} x{v}" for k, v in c.most_common()) or "-"

    print("== results")
    print(f"   {'server':<15} {'scenario':<8} {'runs':>4} {'pass':>4} {'fail':>4}  "
          f"exit statuses | reports | triggers counted | report printed as | "
          f"in-flight request at the client | failures")
    for name, scenario, row in table:
        print(f"   {name:<15} {scenario:<8} {row['p'] + row['f']:>4} {row['p']:>4} {row['f']:>4}  "
              f"{counts(row['status'])} | {counts(row['verdict'])} | {counts(row['triggers'])} | "
              f"{counts(row['source'])} | {counts(row['client'])}"
              f" | {counts(row['fail_status'])}")
    started = os.environ.get("STORM_STARTED")
    if started:
        print(f"storm: wall time {time.time() - float(started):.0f} s (builds included)")
    print(f"storm: {passed} passed, {failed} failed")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
