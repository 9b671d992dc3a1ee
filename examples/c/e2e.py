#!/usr/bin/env python3
"""End-to-end test of the C example server: keep-alive connections and slow requests
in flight, SIGTERM, the announce window (readiness 503, late requests still served),
admission closing after two readiness probes (new connections refused), an idle
keep-alive connection closed by the server once the engine dismisses it, every
in-flight request completed with 200 and "Connection: close", exit code 0.

Usage: e2e.py SERVER_BINARY. Only 127.0.0.1; every wait is bounded."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

LIMIT = 20.0  # seconds: a bound against hanging, never a timing assertion
checks = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        checks["passed"] += 1
        print(f"ok   {what}")
    else:
        checks["failed"] += 1
        print(f"FAIL {what}")


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
        self.buf = b""

    def send(self, path, rid=None):
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if rid:
            head += f"X-Request-Id: {rid}\r\n"
        self.sock.sendall((head + "\r\n").encode())

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed_by_peer(self):
        try:
            self.sock.settimeout(LIMIT)
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


def get(port, path, rid=None):
    c = Conn(port)
    c.send(path, rid)
    r = c.response()
    c.close()
    return r


def wait_for(pred, what):
    end = time.monotonic() + LIMIT
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    print(f"     (gave up waiting for {what})")
    return False


def refused_at_start(server, args, env, what, needle):
    """The server started with `args` over the environment plus `env` exits 2 at once,
    its error naming `needle`."""
    try:
        r = subprocess.run([server, "--port", "0", *args], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=LIMIT)
        code, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        code, err = None, "did not exit"
    check(code == 2 and needle in err, f"{what}: exit 2 naming {needle} (got {code}: {err.strip()!r})")


def configuration_checks(server):
    refused_at_start(server, [], {"SHUTDOWN_DRAIN_TIMEOUT_MS": "5s"},
                     "an invalid SHUTDOWN_* variable", "SHUTDOWN_DRAIN_TIMEOUT_MS")
    refused_at_start(server, ["--preset", "k8s"], {}, "an unknown preset", "--preset")
    # SHUTDOWN_PRESET=pm2 is applied (its 1.6 s window), then the flag changes the drain
    # budget, which no longer fits: the core refuses it at start.
    refused_at_start(server, ["--drain-timeout-ms", "8000"], {"SHUTDOWN_PRESET": "pm2"},
                     "a flag past the preset's kill window", "field grace_period")


def main():
    server = sys.argv[1]
    configuration_checks(server)
    tmp = tempfile.mkdtemp(prefix="shutdown-e2e-")
    log = os.path.join(tmp, "requests.log")
    proc = subprocess.Popen(
        [server, "--port", "0", "--drain-delay-ms", "10000", "--announce-probes", "2",
         "--drain-timeout-ms", "8000", "--close-timeout-ms", "2000", "--log-requests", log],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        check(line.startswith("listening 127.0.0.1:"), f"server says {line!r}")
        port = int(line.rsplit(":", 1)[1])

        status, _, _ = get(port, "/readyz")
        check(status == 200, "ready before the trigger")

        keep = [Conn(port) for _ in range(3)]
        for i, c in enumerate(keep):
            c.send("/", f"ka-{i}-0")
            status, headers, body = c.response()
            check(status == 200 and headers.get("connection") == "keep-alive",
                  f"keep-alive connection {i}: 200, kept alive")
        idle = Conn(port)  # served once, then idle: dismissed after admission closes
        idle.send("/", "idle-0")
        status, headers, _ = idle.response()
        check(status == 200 and headers.get("connection") == "keep-alive",
              "idle connection: 200, kept alive")
        in_flight = []
        for i, c in enumerate(keep):
            c.send("/slow?ms=1500", f"ka-{i}-1")
            in_flight.append((c, f"ka-{i}-1"))
        for j in range(2):
            c = Conn(port)
            c.send("/slow?ms=1000", f"fresh-{j}")
            in_flight.append((c, f"fresh-{j}"))

        def accepted_all():
            try:
                text = open(log).read()
            except OSError:
                return False
            return all(f"accepted {rid}\n" in text for _, rid in in_flight)
        check(wait_for(accepted_all, "the slow requests to be accepted"),
              "5 slow requests in flight before SIGTERM")

        proc.send_signal(signal.SIGTERM)
        check(wait_for(lambda: get(port, "/readyz")[0] == 503, "readiness to fail"),
              "readiness fails (503) after SIGTERM")

        # The announce window: one probe seen of two; late requests are still served.
        status, headers, _ = get(port, "/", "late-1")
        check(status == 200, "a late request in the announce window is served (200)")
        check(headers.get("connection") == "close", "... with Connection: close")

        status, _, _ = get(port, "/readyz")  # the second probe closes admission
        check(status == 503, "second readiness probe: 503")

        def refused():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
                s.close()
                return False
            except ConnectionRefusedError:
                return True
        check(wait_for(refused, "the listener to close"), "new connections refused after quiesce")
        check(idle.closed_by_peer(), "the idle keep-alive connection is closed by the server (dismissed)")
        idle.close()

        for c, rid in in_flight:
            try:
                status, headers, body = c.response()
            except (EOFError, OSError) as e:
                status, headers, body = None, {}, repr(e).encode()
            check(status == 200 and body == b"done\n", f"in-flight {rid} completed with 200")
            check(headers.get("connection") == "close", f"in-flight {rid} told Connection: close")
            check(c.closed_by_peer(), f"connection of {rid} closed by the server")
            c.close()

        try:
            code = proc.wait(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        check(code == 0, f"exit code 0 (got {code})")
        err = proc.stderr.read()
        check('"exit_code":0' in err and '"forced":null' in err, "the report says clean")

        lines = open(log).read().split("\n")
        accepted = {l.split()[1] for l in lines if l.startswith("accepted ")}
        completed = {l.split()[1] for l in lines if l.startswith("completed ") and l.endswith(" 200")}
        expected = {f"ka-{i}-{k}" for i in range(3) for k in range(2)} | {"fresh-0", "fresh-1", "late-1", "idle-0"}
        check(expected <= accepted, "every request was accepted")
        check(accepted == completed, "every accepted request completed with 200 (request log)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"e2e: {checks['passed']} passed, {checks['failed']} failed")
    return 0 if checks["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
