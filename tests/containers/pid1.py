#!/usr/bin/env python3
"""Each example server as PID 1 of a new PID namespace (tests/containers/pid1.sh).

A process that is PID 1 of its namespace gets no default signal action from the
kernel: a SIGTERM it has no handler for is dropped, not fatal. A server that relied on
the default action would ignore `docker stop`'s SIGTERM and be SIGKILLed 10 s later.
For each server: `unshare --pid --fork --mount-proc -- SERVER --port 0 ...`, the
server's own PID as the parent namespace sees it (the child of unshare, NSpid "N 1"),
wait until it listens on 127.0.0.1, start a slow request, SIGTERM that PID, and check:
the request gets its 200, the server exits 0, within EXIT_LIMIT s of the signal (its
drain budget is 20 s). Every wait is bounded; only the processes started here are
signalled (the unshare process and, through the namespace, what it forked).

  pid1.py --server NAME=KIND:PATH ...    KIND rust | c | node
Last line: "pid1: N passed, M failed".
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

SLOW_MS = 1000
START_TIMEOUT = 30.0
# From the SIGTERM to the exit: the slow request's rest (< SLOW_MS) plus the hooks;
# well under the 20 s drain budget the servers run with.
EXIT_LIMIT = 5.0


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def server_command(kind, arg, tmp):
    log = os.path.join(tmp, "requests.log")
    if kind == "rust":
        return ([arg, "--port", "0", "--log-requests", log],
                "stderr", re.compile(r"listening on 127\.0\.0\.1:(\d+)"))
    if kind == "c":
        return ([arg, "--port", "0", "--log-requests", log],
                "stdout", re.compile(r"^listening 127\.0\.0\.1:(\d+)", re.M))
    return (["node", arg, "--port", "0", "--log-requests", log],
            "stdout", re.compile(r"^listening on (\d+)", re.M))


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def ns_pids(pid):
    """The NSpid line of /proc/PID/status: this PID in each nested namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(p) for p in line.split()[1:]]
    except OSError:
        pass
    return []


def pid1_of(unshare_pid, limit=10.0):
    """The outer PID of the forked child that is PID 1 of the new namespace."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        for c in children(unshare_pid):
            ns = ns_pids(c)
            if len(ns) >= 2 and ns[-1] == 1:
                return c
        time.sleep(0.01)
    return None


def wait_until(cond, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    return None


def response(s):
    data = b""
    s.settimeout(EXIT_LIMIT + 5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        return f"error {type(e).__name__} after {data[:40]!r}"
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return f"HTTP {m[1].decode()}" if m else f"no response ({data[:40]!r})"


def run(name, kind, arg):
    tmp = tempfile.mkdtemp(prefix=f"pid1-{name}-")
    argv, where, listen_re = server_command(kind, arg, tmp)
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    problems = []
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--"] + argv,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    client = None
    took = None
    rc = None
    got = None
    try:
        pid = pid1_of(proc.pid)
        if pid is None:
            problems.append("no PID 1 found under unshare")
            return problems, tmp
        port = wait_until(lambda: (m := listen_re.search(read(out_path if where == "stdout"
                                                                  else err_path)))
                          and int(m[1]), START_TIMEOUT)
        if port is None:
            problems.append("never said it listens")
            return problems, tmp
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall((f"GET /slow?ms={SLOW_MS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "X-Request-Id: pid1\r\nConnection: close\r\n\r\n").encode())
        log = os.path.join(tmp, "requests.log")
        if not wait_until(lambda: "accepted pid1\n" in read(log), START_TIMEOUT):
            problems.append("the slow request was never accepted")
            return problems, tmp
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        try:
            rc = proc.wait(timeout=EXIT_LIMIT + 10)
        except subprocess.TimeoutExpired:
            problems.append(f"ignored SIGTERM as PID 1: still running {EXIT_LIMIT + 10:g} s later")
            return problems, tmp
        took = time.monotonic() - t0
        got = response(client)
        client = None
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            # unshare --fork: killing unshare does not kill its child; PID 1 first.
            pid = pid1_of(proc.pid, limit=0.1)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
    if got != "HTTP 200":
        problems.append(f"the in-flight request got {got}")
    if rc != 0:
        problems.append(f"exit status {rc}")
    if took is not None and took > EXIT_LIMIT:
        problems.append(f"took {took:.2f} s to exit (limit {EXIT_LIMIT:g} s)")
    print(f"     {name}: request {got}, exit {rc}, {took:.2f} s after SIGTERM to PID 1",
          flush=True)
    return problems, tmp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", default=[])
    ap.add_argument("--broken", type=int, default=0)
    a = ap.parse_args()
    passed, failed = 0, a.broken
    for spec in a.server:
        name, rest = spec.split("=", 1)
        kind, arg = rest.split(":", 1)
        problems, tmp = run(name, kind, arg)
        if problems:
            failed += 1
            print(f"FAIL {name} as PID 1: " + "; ".join(problems))
            for f in ("stdout", "stderr"):
                for line in read(os.path.join(tmp, f)).splitlines()[-15:]:
                    print(f"    {f}: {line}")
        else:
            passed += 1
            print(f"ok   {name} as PID 1")
        subprocess.run(["rm", "-rf", tmp])
    print(f"pid1: {passed} passed, {failed} failed")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
