#!/usr/bin/env python3
"""End-to-end proof of zero dropped requests during rolling restarts.

For each topology (HAProxy, nginx, and k8s: HAProxy without health checks, a server
taken out through the runtime API a set lag after its SIGTERM, as kube-proxy drops a
deleted pod's endpoint; k8s-control, run on purpose, with a drain_delay shorter than
the lag) and each arm (the Rust smol server, the C server,
the Node server, and the naive control), this starts 3 instances of the server on
127.0.0.1, the proxy in front of them, and wrk with a mixed load (tests/e2e/mix.lua);
while the load runs, it restarts each instance in turn (SIGTERM, wait up to the grace
period, SIGKILL counted as a failure, start again on the same port, wait until the
balancer sees it UP), for one or more rounds. Then it checks, at the client, that no
request failed, and, in the servers' request logs, that every accepted request
completed.

Run through tests/e2e/run.sh (which installs haproxy, nginx and wrk and builds the
servers); see tests/e2e/README.md. Processes are started in their own session and
killed by their PID (their process group) only.
"""

import argparse
import atexit
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "target", "e2e")

# ----- process bookkeeping: only what we started, by PID --------------------------------

PROCS = {}  # pid -> Popen


def spawn(cmd, log_path, env=None):
    """Starts `cmd` in a new session (so its PID is also its process group id),
    output to `log_path`, and remembers it for the cleanup."""
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    finally:
        log.close()
    PROCS[p.pid] = p
    return p


def forget(p):
    PROCS.pop(p.pid, None)


def kill_group(p, sig):
    """Sends `sig` to the process group of a child we started (its own PID)."""
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(p, sig=signal.SIGTERM, timeout=5.0):
    """Stops a child: `sig`, then SIGKILL to its group after `timeout`. Returns its code."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p, signal.SIGKILL)
            p.wait()
    # Whatever it left behind in its group (nginx workers).
    kill_group(p, signal.SIGKILL)
    forget(p)
    return p.returncode


def cleanup():
    for pid, p in list(PROCS.items()):
        if p.poll() is None:
            kill_group(p, signal.SIGKILL)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        else:
            kill_group(p, signal.SIGKILL)
        PROCS.pop(pid, None)


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


atexit.register(cleanup)
for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, on_signal)

# ----- small helpers -------------------------------------------------------------------


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def http_status(port, path="/readyz", timeout=1.0):
    """Status of one GET on 127.0.0.1:port (None when nothing answers)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except (OSError, http.client.HTTPException):
        return None


def wait_until(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def render(template, **values):
    with open(os.path.join(HERE, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("{{%s}}" % k, str(v))
    return text


def log(msg):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----- the arms: servers under test -------------------------------------------------------


class Drain:
    """Drain settings shared by every instance behind one balancer."""

    def __init__(self, args, delay_ms=None, announce_probes="default"):
        self.delay_ms = args.drain_delay_ms if delay_ms is None else delay_ms
        # None: no --announce-probes flag (the announce window lasts the whole drain_delay).
        self.announce_probes = args.announce_probes if announce_probes == "default" else announce_probes
        self.timeout_ms = args.drain_timeout_ms
        self.close_ms = args.close_timeout_ms
        self.grace_ms = args.grace_period_ms

    def as_dict(self):
        return {
            "drain_delay_ms": self.delay_ms,
            "announce_probes": self.announce_probes,
            "drain_timeout_ms": self.timeout_ms,
            "close_timeout_ms": self.close_ms,
            "grace_period_ms": self.grace_ms,
        }


def probes_flag(name, d):
    """`[name, N]`, or nothing when announce_probes is off (nobody probes: k8s)."""
    return [] if d.announce_probes is None else [name, str(d.announce_probes)]


def ms_flags(port, log_file, d):
    """The flags the Rust and C example servers share (durations as `--*-ms`)."""
    return [
        "--port", str(port),
        "--drain-delay-ms", str(d.delay_ms),
        *probes_flag("--announce-probes", d),
        "--drain-timeout-ms", str(d.timeout_ms),
        "--close-timeout-ms", str(d.close_ms),
        "--log-requests", log_file,
    ]


class Arm:
    """A server under test. `snapshot` copies what it runs into a private directory
    first: other builds in the same tree (a rebuilt libshutdown.so, an edited .js)
    must not change or crash the instances halfway through a run."""

    name = "?"
    control = False  # the naive control must fail
    posts = True  # serves POST /work (reads a request body)

    def env(self):
        return None

    def available(self):
        """(True, "") or (False, why it is skipped)."""
        return True, ""

    def command(self, port, log_file, d):
        raise NotImplementedError


class RustArm(Arm):
    name = "rust"
    binary = os.path.join(ROOT, "target", "release", "smol-server")

    def available(self):
        if not os.access(self.binary, os.X_OK):
            return False, f"{os.path.relpath(self.binary, ROOT)} not built"
        return True, ""

    def snapshot(self, snap):
        self.exe = os.path.join(snap, "smol-server")
        shutil.copy2(self.binary, self.exe)

    def command(self, port, log_file, d):
        return [self.exe, *ms_flags(port, log_file, d), "--grace-period-ms", str(d.grace_ms)]


class CArm(Arm):
    """examples/c/server.c, built by examples/c/test.sh (ffi/tests/run.sh) or run.sh
    into target/examples-c/server against libshutdown in target/ffi-prefix."""

    name = "c"
    prefix = os.path.join(ROOT, "target", "ffi-prefix")

    def binary(self):
        return os.environ.get("E2E_C_SERVER") or os.path.join(ROOT, "target", "examples-c", "server")

    def snapshot(self, snap):
        """Copies libshutdown (library and header, as installed in target/ffi-prefix)
        and compiles examples/c/server.c against exactly that pair: a server compiled
        against another version of the header would read a different config layout."""
        d = os.path.join(snap, "c")
        # A second topology snapshots again into the same folder.
        for sub in ("lib", "include"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.libdir = os.path.join(d, "lib")
        libdir = os.path.join(self.prefix, "lib")
        real = os.path.realpath(os.path.join(libdir, "libshutdown.so"))
        if os.path.isfile(real):
            shutil.copy2(real, os.path.join(self.libdir, os.path.basename(real)))
            # Every link the install has (libshutdown.so and the SONAME link,
            # libshutdown.so.<ABI counter>), so the loader finds the copy.
            for link in sorted(os.listdir(libdir)):
                path = os.path.join(libdir, link)
                if link.startswith("libshutdown.so") and os.path.islink(path):
                    if not os.path.exists(os.path.join(self.libdir, link)):
                        os.symlink(os.path.basename(real), os.path.join(self.libdir, link))
        header = os.path.join(self.prefix, "include", "shutdown.h")
        self.exe = os.path.join(d, "server")
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc and os.path.isfile(header) and os.path.isfile(real) and not os.environ.get("E2E_C_SERVER"):
            shutil.copy2(header, os.path.join(d, "include", "shutdown.h"))
            src = os.path.join(d, "server.c")
            shutil.copy2(os.path.join(ROOT, "examples", "c", "server.c"), src)
            r = subprocess.run([cc, "-std=c11", "-O2", src, "-o", self.exe,
                                "-I", os.path.join(d, "include"), "-L", self.libdir, "-lshutdown"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise OSError(f"examples/c/server.c did not compile: {r.stderr.strip()[:300]}")
            self.built = "compiled by the harness against target/ffi-prefix"
        else:
            shutil.copy2(self.binary(), self.exe)
            self.built = f"prebuilt {self.binary()}"
        tree_header = os.path.join(ROOT, "ffi", "include", "shutdown.h")
        try:
            with open(header, "rb") as a, open(tree_header, "rb") as b:
                self.stale = a.read() != b.read()
        except OSError:
            self.stale = False

    def env(self):
        env = dict(os.environ)
        lib = self.libdir
        env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        return env

    def available(self):
        if not os.path.isfile(os.path.join(ROOT, "examples", "c", "server.c")):
            return False, "examples/c/server.c is not in the repo yet"
        b = self.binary()
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            return False, f"the C example server is not built ({os.path.relpath(b, ROOT)})"
        return True, ""

    def command(self, port, log_file, d):
        # No --grace-period-ms flag: the library's default grace period (30 s) applies;
        # the harness still gives it only d.grace_ms before SIGKILL.
        return [self.exe, *ms_flags(port, log_file, d)]


class NodeArm(Arm):
    name = "node"
    script = os.path.join(ROOT, "examples", "node", "server.js")
    addon = os.path.join(ROOT, "bindings", "node", "libshutdown.node")

    def available(self):
        if shutil.which("node") is None:
            return False, "node is not installed"
        if not os.path.isfile(self.script):
            return False, "examples/node/server.js is not in the repo yet"
        if not os.path.isfile(self.addon):
            return False, "the addon bindings/node/libshutdown.node is not built"
        return True, ""

    def snapshot(self, snap):
        binding = os.path.join(snap, "node-binding")
        src = os.path.dirname(self.addon)
        os.makedirs(binding)
        shutil.copy2(os.path.join(src, "index.js"), binding)
        shutil.copy2(self.addon, binding)
        shutil.copytree(os.path.join(src, "lib"), os.path.join(binding, "lib"))
        os.makedirs(os.path.join(snap, "node"))
        self.js = os.path.join(snap, "node", "server.js")
        shutil.copy2(self.script, self.js)
        self.binding = binding

    def env(self):
        env = dict(os.environ)
        env["LIBSHUTDOWN_PATH"] = self.binding
        env.pop("LIBSHUTDOWN_ADDON", None)
        return env

    def command(self, port, log_file, d):
        return [
            "node", self.js,
            "--port", str(port),
            "--drain-delay", str(d.delay_ms),
            *probes_flag("--announce-probes", d),
            "--drain-timeout", str(d.timeout_ms),
            "--close-timeout", str(d.close_ms),
            "--grace-period", str(d.grace_ms),
            "--log-requests", log_file,
        ]


class NaiveArm(Arm):
    name = "naive"
    control = True

    def snapshot(self, snap):
        self.py = os.path.join(snap, "naive_server.py")
        shutil.copy2(os.path.join(HERE, "naive_server.py"), self.py)

    def command(self, port, log_file, d):
        return [sys.executable, self.py,
                "--port", str(port), "--log-requests", log_file]


ARMS = {a.name: a for a in (RustArm(), CArm(), NodeArm(), NaiveArm())}

# ----- instances ---------------------------------------------------------------------------


class Instance:
    """One backend slot: a port, and the successive processes serving it."""

    def __init__(self, index, port, arm, drain, work):
        self.index, self.port, self.arm, self.drain, self.work = index, port, arm, drain, work
        self.gen = -1
        self.proc = None
        self.request_logs = []

    def start(self, timeout=20.0):
        """Starts the next generation on the same port; returns when it answers /readyz."""
        self.gen += 1
        req_log = os.path.join(self.work, f"s{self.index}.g{self.gen}.requests.log")
        out_log = os.path.join(self.work, f"s{self.index}.g{self.gen}.out.log")
        self.request_logs.append(req_log)
        deadline = time.monotonic() + timeout
        while True:
            self.proc = spawn(self.arm.command(self.port, req_log, self.drain), out_log,
                              env=self.arm.env())
            ok = wait_until(
                lambda: self.proc.poll() is not None or http_status(self.port, timeout=0.5) == 200,
                max(0.1, deadline - time.monotonic()),
            )
            if ok and self.proc.poll() is None:
                return
            code = self.proc.poll()
            stop(self.proc, signal.SIGKILL, 1)
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{self.arm.name} instance {self.index} did not start on port {self.port} "
                    f"(exit {code}); see {out_log}"
                )
            time.sleep(0.2)  # the port may still be held (bind error): try again

    def terminate(self, grace_s):
        """SIGTERM; SIGKILL after `grace_s`. Returns (exit code, killed, seconds to exit)."""
        p = self.proc
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        killed = False
        try:
            p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            killed = True
            kill_group(p, signal.SIGKILL)
            p.wait()
        dt = time.monotonic() - t0
        kill_group(p, signal.SIGKILL)  # anything it left in its group
        forget(p)
        return p.returncode, killed, dt


# ----- proxies --------------------------------------------------------------------------------


class HAProxy:
    name = "haproxy"

    def __init__(self, work, front, backends, checks=True):
        """`checks=False` (the k8s topologies): no health check at all; a server is
        taken out and put back only through the runtime API (`set_state`)."""
        self.work, self.front, self.backends, self.checks = work, front, backends, checks
        self.cfg = os.path.join(work, "haproxy.cfg")
        self.log_path = os.path.join(work, "haproxy.log")
        servers = "\n".join(
            f"    server s{b.index} 127.0.0.1:{b.port}{' check' if checks else ''}" for b in backends
        )
        httpchk = ("    option httpchk GET /readyz" if checks else
                   "    # no health check: endpoints are removed by the harness (k8s lag)")
        with open(self.cfg, "w") as f:
            f.write(render("haproxy.cfg.tmpl", dir=work, frontend_port=front, servers=servers,
                           httpchk=httpchk))
        self.proc = None

    def start(self):
        r = subprocess.run(["haproxy", "-c", "-q", "-f", self.cfg], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"haproxy config check failed: {r.stdout}{r.stderr}")
        self.proc = spawn(["haproxy", "-db", "-f", self.cfg], self.log_path)
        if not wait_until(lambda: self.all_up() and http_status(self.front) == 200, 20):
            raise RuntimeError(f"haproxy did not come up; see {self.log_path}")

    def command(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(os.path.join(self.work, "admin.sock"))
        s.sendall((cmd + "\n").encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        s.close()
        return b"".join(chunks).decode()

    def stat(self):
        try:
            text = self.command("show stat")
        except OSError:
            return []
        lines = [l for l in text.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            return []
        header = lines[0][2:].split(",")
        return [dict(zip(header, l.split(","))) for l in lines[1:]]

    def server_status(self, index):
        for row in self.stat():
            if row.get("pxname") == "be" and row.get("svname") == f"s{index}":
                return row.get("status")
        return None

    def is_up(self, index):
        # Without a health check a server in service reads "no check".
        return self.server_status(index) in (("UP",) if self.checks else ("UP", "no check"))

    def all_up(self):
        return all(self.is_up(b.index) for b in self.backends)

    def wait_up(self, inst, timeout):
        """The balancer sees the instance UP (stats socket)."""
        return wait_until(lambda: self.is_up(inst.index), timeout, 0.05)

    def set_state(self, index, state):
        """The runtime API: `set server be/sN state maint|ready` (what kube-proxy's
        endpoint removal and re-adding stand for). Returns HAProxy's answer (empty
        when it applied); raises on a refusal."""
        answer = self.command(f"set server be/s{index} state {state}").strip()
        if answer:
            raise RuntimeError(f"haproxy refused `set server be/s{index} state {state}`: {answer}")
        return answer

    def counters(self):
        out = {}
        for row in self.stat():
            if row.get("pxname") == "fe" and row.get("svname") == "FRONTEND":
                out["frontend_5xx"] = int(row.get("hrsp_5xx") or 0)
                out["frontend_requests"] = int(row.get("req_tot") or 0)
            if row.get("pxname") == "be" and row.get("svname") == "BACKEND":
                out["backend_5xx"] = int(row.get("hrsp_5xx") or 0)
                out["backend_econ"] = int(row.get("econ") or 0)
                out["backend_eresp"] = int(row.get("eresp") or 0)
        return out

    def stop(self):
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM, 5)

    def access_log(self):
        """(status, server, termination state, request id) per logged request."""
        rows = []
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    i = line.find("e2e|")
                    if i < 0:
                        continue
                    parts = line[i:].rstrip("\n").split("|")
                    if len(parts) < 8:
                        continue
                    try:
                        status = int(parts[1])
                    except ValueError:
                        status = -1
                    rows.append({"status": status, "server": parts[2], "term": parts[3],
                                 "id": parts[5], "retried": False})
        except FileNotFoundError:
            pass
        return rows


class Nginx:
    name = "nginx"

    def __init__(self, work, front, backends, upstream_idle):
        self.work, self.front, self.backends = work, front, backends
        self.conf = os.path.join(work, "nginx.conf")
        servers = "\n".join(
            f"        server 127.0.0.1:{b.port} max_fails=1 fail_timeout=2s;" for b in backends
        )
        with open(self.conf, "w") as f:
            f.write(render("nginx.conf.tmpl", dir=work, frontend_port=front, servers=servers,
                           upstream_idle=upstream_idle))
        self.proc = None

    def start(self):
        base = ["nginx", "-p", self.work, "-e", os.path.join(self.work, "error.log"), "-c", self.conf]
        r = subprocess.run(base + ["-t", "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nginx config test failed: {r.stdout}{r.stderr}")
        self.proc = spawn(base, os.path.join(self.work, "nginx.out.log"))
        if not wait_until(lambda: self.proc.poll() is None and http_status(self.front) == 200, 20):
            raise RuntimeError(f"nginx did not come up; see {self.work}/error.log")

    def wait_up(self, inst, timeout):
        """No active checks: the instance is back when it answers."""
        return wait_until(lambda: http_status(inst.port) == 200, timeout, 0.05)

    def counters(self):
        """Upstream errors from the error log: a refused connection sent nothing (a
        retry elsewhere is safe); any other error may have reached a server."""
        out = {"upstream_connect_refused": 0, "upstream_other_errors": 0, "other_error_sample": []}
        try:
            with open(os.path.join(self.work, "error.log"), errors="replace") as f:
                for line in f:
                    if "[error]" not in line or "upstream" not in line:
                        continue
                    if "connect() failed (111" in line:
                        out["upstream_connect_refused"] += 1
                    else:
                        out["upstream_other_errors"] += 1
                        if len(out["other_error_sample"]) < 5:
                            out["other_error_sample"].append(line.split("] ", 1)[-1][:200])
        except FileNotFoundError:
            pass
        return out

    def stop(self):
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM, 5)

    def access_log(self):
        rows = []
        try:
            with open(os.path.join(self.work, "access.log"), errors="replace") as f:
                for line in f:
                    if not line.startswith("e2e|"):
                        continue
                    parts = line.rstrip("\n").split("|")
                    if len(parts) < 8:
                        continue
                    try:
                        status = int(parts[1])
                    except ValueError:
                        status = -1
                    rows.append({"status": status, "server": parts[2], "term": parts[3],
                                 "id": parts[4], "retried": "," in parts[3]})
        except FileNotFoundError:
            pass
        return rows


# ----- request logs ---------------------------------------------------------------------------


def read_request_logs(instances):
    accepted, completed, refused, aborted = {}, {}, {}, {}
    for inst in instances:
        for path in inst.request_logs:
            try:
                f = open(path, errors="replace")
            except FileNotFoundError:
                continue
            with f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    kind, rid = parts[0], parts[1]
                    where = os.path.basename(path)
                    if kind == "accepted":
                        accepted.setdefault(rid, []).append(where)
                    elif kind == "completed":
                        completed.setdefault(rid, []).append((where, parts[2] if len(parts) > 2 else "?"))
                    elif kind == "aborted":
                        aborted.setdefault(rid, []).append(where)
                    elif kind == "refused":
                        refused.setdefault(rid, []).append(where)
    return accepted, completed, refused, aborted


# ----- one arm behind one proxy ------------------------------------------------------------------

# Topologies: the proxy in front, and whether a failure is expected (a control).
#   haproxy      HAProxy with an active health check on /readyz
#   nginx        nginx, no health checks
#   k8s          HAProxy without health checks; the harness sets a server to maint
#                --k8s-lag-ms after its SIGTERM (endpoint propagation lag) and back to
#                ready when the new instance is up; drain_delay (--drain-delay-ms)
#                covers the lag, announce_probes off: must lose nothing
#   k8s-control  the same with drain_delay --k8s-control-drain-delay-ms (200), shorter
#                than the lag: admission closes while the proxy still routes to the
#                instance, so it must fail (a control, like the naive arm)
TOPOLOGIES = ("haproxy", "nginx", "k8s", "k8s-control")
HAPROXY_LIKE = ("haproxy", "k8s", "k8s-control")
CONTROL_TOPOLOGIES = ("k8s-control",)
ID_PREFIX = {"haproxy": "h", "nginx": "n", "k8s": "k", "k8s-control": "x"}


def topology_drain(topology, args):
    """The drain settings of one topology."""
    if topology == "k8s":
        return Drain(args, announce_probes=None)
    if topology == "k8s-control":
        return Drain(args, delay_ms=args.k8s_control_drain_delay_ms, announce_probes=None)
    return Drain(args)


class EndpointLag:
    """Kube-proxy in a box: `lag_ms` after SIGTERM, the instance's server goes to
    maint through HAProxy's runtime API (a background timer, started right before the
    SIGTERM); `join()` waits for it."""

    def __init__(self, proxy, inst, lag_ms):
        self.proxy, self.inst, self.lag_s = proxy, inst, lag_ms / 1000.0
        self.t0 = time.monotonic()
        self.applied_after_ms = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        time.sleep(max(0.0, self.lag_s - (time.monotonic() - self.t0)))
        try:
            self.proxy.set_state(self.inst.index, "maint")
            self.applied_after_ms = round((time.monotonic() - self.t0) * 1000, 1)
        except Exception as e:  # reported by join()
            self.error = str(e)

    def join(self):
        self.thread.join(self.lag_s + 10)
        if self.error or self.applied_after_ms is None:
            raise RuntimeError(f"could not set s{self.inst.index} to maint: {self.error or 'timed out'}")
        return self.applied_after_ms


def run_one(topology, arm, args, drain):
    work = tempfile.mkdtemp(prefix=f"e2e-{topology}-{arm.name}-")
    os.chmod(work, 0o755)  # nginx workers run as nobody
    keep = os.path.join(OUT, f"{topology}-{arm.name}")
    shutil.rmtree(keep, ignore_errors=True)
    ports = free_ports(4)
    front, backend_ports = ports[0], ports[1:]
    instances = [Instance(i, p, arm, drain, work) for i, p in enumerate(backend_ports)]
    control = arm.control or topology in CONTROL_TOPOLOGIES
    haproxy_like = topology in HAPROXY_LIKE
    k8s = topology in ("k8s", "k8s-control")
    result = {
        "arm": arm.name,
        "topology": topology,
        "control": control,
        "mode": args.mode,
        "settings": {**drain.as_dict(), "rounds": args.rounds, "connections": args.connections,
                     "threads": args.threads, "think_ms": args.think_ms,
                     "mix_pct": {"fast": args.fast_pct if arm.posts else 100 - args.slow_pct,
                                 "slow": args.slow_pct,
                                 "post": 100 - args.fast_pct - args.slow_pct if arm.posts else 0},
                     "nginx_upstream_keepalive_timeout": args.nginx_upstream_idle
                     if topology == "nginx" else None,
                     "k8s_lag_ms": args.k8s_lag_ms if k8s else None},
        "work_dir": os.path.relpath(keep, ROOT),
    }
    fast_pct = args.fast_pct if arm.posts else 100 - args.slow_pct
    proxy = None
    wrk = None
    restarts = []
    final_exits = []
    t_start = time.monotonic()
    try:
        for inst in instances:
            inst.start()
        if haproxy_like:
            proxy = HAProxy(work, front, instances, checks=not k8s)
        else:
            proxy = Nginx(work, front, instances, args.nginx_upstream_idle)
        proxy.start()

        wrk_out = os.path.join(work, "wrk.json")
        quiet_file = os.path.join(work, "wrk.quiet")
        env = dict(os.environ)
        env.update({
            "E2E_ID_PREFIX": f"{ID_PREFIX.get(topology, topology[0])}{arm.name}-{os.getpid()}",
            "E2E_FAST_PCT": str(fast_pct),
            "E2E_SLOW_PCT": str(args.slow_pct),
            "E2E_THINK_MS": str(args.think_ms),
            "E2E_MAX_PER_THREAD": str(args.max_requests // args.threads),
            "E2E_WRK_OUT": wrk_out,
            "E2E_QUIET_FILE": quiet_file,
        })
        wrk = spawn([
            "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.max_duration}s",
            "--timeout", "15s", "-s", os.path.join(HERE, "mix.lua"), f"http://127.0.0.1:{front}/",
        ], os.path.join(work, "wrk.out.log"), env=env)
        time.sleep(args.warmup)
        grace_s = drain.grace_ms / 1000.0
        for rnd in range(args.rounds):
            for inst in instances:
                if wrk.poll() is not None:
                    raise RuntimeError("wrk ended before the rolling restart did (load too short)")
                t_wall = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
                lag = EndpointLag(proxy, inst, args.k8s_lag_ms) if k8s else None
                code, killed, dt = inst.terminate(grace_s)
                # k8s: the endpoint is removed only after the lag, whether the instance
                # has exited or not; the new instance (a new pod, a new endpoint in a
                # cluster; here the same port) starts once it is out, so that it cannot
                # take the traffic meant for the old one.
                maint_ms = lag.join() if lag else None
                t_restart = time.monotonic()
                inst.start()
                if k8s:
                    proxy.set_state(inst.index, "ready")
                up = proxy.wait_up(inst, 30)
                up_s = time.monotonic() - t_restart
                restarts.append({
                    "round": rnd + 1, "instance": inst.index, "sigterm_at": t_wall, "exit_code": code,
                    "sigkill": killed, "term_to_exit_ms": round(dt * 1000, 1),
                    "restart_to_up_ms": round(up_s * 1000, 1), "up": up,
                    "maint_after_sigterm_ms": maint_ms,
                })
                log(f"  {topology}/{arm.name} round {rnd + 1} s{inst.index}: exit {code}"
                    f"{' (SIGKILL)' if killed else ''} after {dt * 1000:.0f} ms, "
                    + (f"maint {maint_ms:.0f} ms after SIGTERM, " if maint_ms is not None else "")
                    + f"{'UP' if up else 'NOT UP'} {up_s * 1000:.0f} ms after restart")
                if not up:
                    raise RuntimeError(f"instance {inst.index} not seen UP by {topology} in 30 s")
        time.sleep(args.tail)
        # End the load: fast GETs only, until the slow requests in flight are answered,
        # then SIGINT makes wrk stop, print its summary and run done(). The few requests
        # still in flight then are abandoned by the client (not a server failure).
        open(quiet_file, "w").close()
        time.sleep(1.7)
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)
        try:
            wrk.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop(wrk, signal.SIGKILL, 1)
            raise RuntimeError("wrk did not stop on SIGINT")
        forget(wrk)
        # Requests the proxy still had in flight (wrk hung up on them) end within the
        # longest slow request; then the proxy and the last generation stop (not counted).
        time.sleep(1.6)
        result["proxy_counters"] = proxy.counters()
        proxy.stop()
        for inst in instances:
            code, killed, dt = inst.terminate(grace_s)
            final_exits.append(code if not killed else "SIGKILL")
        try:
            with open(wrk_out) as f:
                w = json.load(f)
        except (OSError, ValueError) as e:
            raise RuntimeError(f"no wrk summary ({e}); see {work}/wrk.out.log")
        result["error"] = None
    except Exception as e:  # a harness or environment failure: the arm fails
        w = None
        result["error"] = str(e)
        log(f"  {topology}/{arm.name}: ERROR {e}")
    finally:
        if wrk is not None:
            stop(wrk, signal.SIGKILL, 1)
        if proxy is not None:
            if "proxy_counters" not in result:
                result["proxy_counters"] = proxy.counters()
            proxy.stop()
        for inst in instances:
            if inst.proc is not None and inst.proc.poll() is None:
                stop(inst.proc, signal.SIGKILL, 1)
    result["duration_s"] = round(time.monotonic() - t_start, 1)

    # ----- the verdict -----
    accepted, completed, refused, aborted_ids = read_request_logs(instances)
    rows = proxy.access_log() if proxy is not None else []
    # Requests the client abandoned (wrk stopping: nginx 499, HAProxy C* states) may
    # never complete at the server; they are counted apart, not as failures.
    abandoned = {r["id"] for r in rows
                 if r["status"] == 499 or (haproxy_like and r["term"][:1] in ("C", "c"))}
    missing_all = sorted(set(accepted) - set(completed))
    missing = [m for m in missing_all if m not in abandoned]
    several = sorted(r for r, where in accepted.items() if len(where) > 1)
    completed_non2xx = sum(1 for rs in completed.values() for (_, st) in rs if not st.startswith("2"))
    proxy_5xx_log = sum(1 for r in rows if r["status"] >= 500)
    proxy_non2xx_log = [r for r in rows if not (200 <= r["status"] <= 299)]
    # Requests wrk itself abandoned when it stopped (HAProxy: status -1 / C* states;
    # nginx: 499) are no failure of the servers.
    # HAProxy termination states starting with C: the client went away (wrk stopping).
    proxy_fail_log = [r for r in proxy_non2xx_log
                      if r["status"] not in (-1, 499)
                      and not (haproxy_like and r["term"].startswith(("C", "c")))]
    proxy_retried = sum(1 for r in rows if r["retried"])
    counters = result.get("proxy_counters") or {}
    proxy_5xx = counters.get("frontend_5xx", proxy_5xx_log) if haproxy_like else proxy_5xx_log

    exit_codes = [r["exit_code"] for r in restarts]
    term_ms = [r["term_to_exit_ms"] for r in restarts]
    result.update({
        "requests": w["responses"] if w else 0,
        "non_2xx": w["non2xx"] if w else None,
        "statuses": w["statuses"] if w else None,
        "socket_errors": (w["errors"]["connect"] + w["errors"]["read"] + w["errors"]["write"]
                          + w["errors"]["timeout"]) if w else None,
        "socket_error_detail": {k: w["errors"][k] for k in ("connect", "read", "write", "timeout")}
        if w else None,
        "proxy_5xx": proxy_5xx,
        "proxy_log": {"requests": len(rows), "5xx": proxy_5xx_log,
                      "non_2xx_excluding_client_aborts": len(proxy_fail_log),
                      "retried_upstream": proxy_retried,
                      "sample": [f"{r['status']} {r['server']} {r['term']} {r['id']}"
                                 for r in proxy_fail_log[:10]]},
        "sigkills": sum(1 for r in restarts if r["sigkill"]),
        "restarts": len(restarts),
        "exit_codes": exit_codes,
        "final_exit_codes": final_exits,
        "median_term_to_exit_ms": round(statistics.median(term_ms), 1) if term_ms else None,
        "accepted": len(accepted),
        "completed": len(completed),
        "accepted_not_completed": len(missing),
        "accepted_not_completed_sample": missing[:10],
        "abandoned_by_client_not_completed": len(missing_all) - len(missing),
        "refused_by_server": len(refused),
        "aborted_by_server": len(aborted_ids),
        "ids_accepted_more_than_once": len(several),
        "completed_non_2xx": completed_non2xx,
        "wrk": w,
        "restart_detail": restarts,
    })
    # Client and proxy must tell the same story.
    notes = []
    if w is not None and len(proxy_fail_log) != w["non2xx"]:
        notes.append(f"proxy log shows {len(proxy_fail_log)} failed responses, the client "
                     f"counted {w['non2xx']} non-2xx (+{result['socket_errors']} socket errors)")
    if haproxy_like and counters and proxy_5xx_log != counters.get("frontend_5xx"):
        notes.append(f"haproxy log 5xx {proxy_5xx_log} != stats frontend hrsp_5xx "
                     f"{counters.get('frontend_5xx')}")
    if haproxy_like and w is not None and result["socket_errors"] and not proxy_fail_log:
        notes.append("client socket errors with no failure in HAProxy's log: HAProxy closes the client "
                     "connection without a response and without a log line when a request fails on "
                     "a reused server connection (a server closed a pooled keep-alive connection "
                     "while HAProxy was sending on it)")
    if proxy_retried:
        refused_n = counters.get("upstream_connect_refused", 0)
        other_n = counters.get("upstream_other_errors", 0)
        notes.append(f"nginx retried {proxy_retried} requests on another upstream, hidden from the "
                     f"client (error log: {refused_n} connections refused, nothing sent; "
                     f"{other_n} other upstream errors)")
    if several:
        notes.append(f"{len(several)} request ids were accepted by more than one instance (proxy retries)")
    result["client_proxy_disagreement"] = notes
    result["notes"] = [] if arm.posts else [
        "no POSTs in this arm's mix: the server has no POST /work route"]
    if getattr(arm, "stale", False):
        result["notes"].append("target/ffi-prefix/include/shutdown.h differs from ffi/include/shutdown.h: "
                               "the installed libshutdown is not the tree's (rerun ffi/tests/run.sh)")
    if getattr(arm, "built", None):
        result["notes"].append("server: " + arm.built)

    failures = []
    if result["error"]:
        failures.append("error: " + result["error"])
    if w is None or w["responses"] == 0:
        failures.append("no load measured")
    else:
        if w["non2xx"]:
            failures.append(f"{w['non2xx']} non-2xx")
        if result["socket_errors"]:
            failures.append(f"{result['socket_errors']} socket errors")
    if result["sigkills"]:
        failures.append(f"{result['sigkills']} SIGKILL")
    if any(c != 0 for c in exit_codes):
        failures.append("exit codes " + ",".join(str(c) for c in exit_codes if c != 0))
    if len(restarts) < args.rounds * len(instances):
        failures.append(f"only {len(restarts)} of {args.rounds * len(instances)} restarts")
    if missing:
        failures.append(f"{len(missing)} accepted requests never completed")
    if not control and any(c != 0 for c in final_exits):
        # The last generation, stopped after the load: a non-zero code here means an
        # instance crashed or hung during the run.
        failures.append("final stop exit codes " + ",".join(str(c) for c in final_exits))
    result["failures"] = failures
    if control:
        # The control must fail under load; a clean control run means a blind harness
        # (but a harness error is not the failure we are looking for). The naive arm
        # is one (no signal handling), and so is every arm of k8s-control (drain_delay
        # shorter than the endpoint lag).
        blind = not failures or result["error"] is not None or w is None or w["responses"] == 0
        result["verdict"] = "fail" if blind else "pass"
        what = "the naive control" if arm.control else f"the {topology} control"
        result["verdict_note"] = ("control failed as expected" if not blind else
                                  f"{what} did not fail: the harness is blind")
    else:
        result["verdict"] = "pass" if not failures else "fail"

    # Keep the evidence where people look for it.
    try:
        shutil.copytree(work, keep, ignore=shutil.ignore_patterns("*.sock"))
        shutil.rmtree(work, ignore_errors=True)
    except OSError:
        result["work_dir"] = work
    return result


# ----- report --------------------------------------------------------------------------------------


def table(results):
    cols = ["topology", "arm", "requests", "non-2xx", "sock err", "proxy 5xx", "SIGKILL",
            "exit codes", "median TERM->exit", "acc/unfinished", "verdict"]
    rows = []
    for r in results:
        if r["verdict"] == "skipped":
            rows.append([r["topology"], r["arm"], "-", "-", "-", "-", "-", "-", "-", "-",
                         "SKIPPED (" + r["skip_reason"] + ")"])
            continue
        codes = {}
        for c in r["exit_codes"]:
            codes[c] = codes.get(c, 0) + 1
        codes_s = " ".join(f"{c}x{n}" for c, n in sorted(codes.items(), key=str)) or "-"
        med = f"{r['median_term_to_exit_ms']:.0f} ms" if r["median_term_to_exit_ms"] is not None else "-"
        verdict = r["verdict"].upper()
        if r["control"]:
            verdict += " (control: " + ("failed as expected" if r["verdict"] == "pass" else "BLIND") + ")"
        elif r["failures"]:
            verdict += ": " + "; ".join(r["failures"])
        rows.append([r["topology"], r["arm"], r["requests"], r["non_2xx"], r["socket_errors"],
                     r["proxy_5xx"], r["sigkills"], codes_s, med,
                     f"{r['accepted']}/{r['accepted_not_completed']}", verdict])
    widths = [max(len(str(x)) for x in [c] + [row[i] for row in rows]) for i, c in enumerate(cols)]
    widths[-1] = len(cols[-1])
    line = "  ".join(str(c).ljust(w) for c, w in zip(cols, widths))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def main():
    p = argparse.ArgumentParser(description="rolling restarts behind HAProxy and nginx (and HAProxy "
                                            "with a k8s-like endpoint lag) under wrk load")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick")
    g.add_argument("--full", dest="mode", action="store_const", const="full")
    p.add_argument("--arms", default="rust,c,node,naive", help="comma-separated: rust,c,node,naive")
    p.add_argument("--topologies", default="haproxy,nginx,k8s",
                   help="comma-separated: " + ",".join(TOPOLOGIES) + " (k8s-control is a control, "
                        "run on purpose: it must fail)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--connections", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--think-ms", type=int, default=5)
    p.add_argument("--fast-pct", type=int, default=80)
    p.add_argument("--slow-pct", type=int, default=10)
    p.add_argument("--warmup", type=float)
    p.add_argument("--tail", type=float, default=2.0)
    p.add_argument("--max-duration", type=int, default=600, help="wrk's -d: the load's hard time bound (s)")
    p.add_argument("--max-requests", type=int, default=2_000_000, help="bound on the responses wrk waits for")
    p.add_argument("--drain-delay-ms", type=int, default=2000)
    p.add_argument("--announce-probes", type=int,
                   default=int(os.environ.get("E2E_ANNOUNCE_PROBES", "2")),
                   help="readiness probes answered 503 before admission closes "
                        "(default 2: HAProxy's fall; see README for fall+1)")
    p.add_argument("--drain-timeout-ms", type=int, default=5000)
    p.add_argument("--close-timeout-ms", type=int, default=1000)
    p.add_argument("--grace-period-ms", type=int, default=10000)
    p.add_argument("--nginx-upstream-idle", default="60s",
                   help="nginx upstream keepalive_timeout (default nginx's own, 60s: idle pooled "
                        "connections outlive the announce window and meet the quiesce boundary)")
    p.add_argument("--k8s-lag-ms", type=int, default=1000,
                   help="k8s topologies: how long after SIGTERM the proxy still routes to the "
                        "instance before the harness sets it to maint (endpoint propagation lag)")
    p.add_argument("--k8s-control-drain-delay-ms", type=int, default=200,
                   help="k8s-control: the drain_delay, shorter than --k8s-lag-ms")
    p.add_argument("--require-all", action="store_true",
                   default=os.environ.get("E2E_REQUIRE_ALL") == "1",
                   help="a skipped arm fails the run")
    args = p.parse_args()
    args.mode = args.mode or "quick"
    full = args.mode == "full"
    args.rounds = args.rounds or (2 if full else 1)
    args.connections = args.connections or (64 if full else 32)
    args.warmup = args.warmup if args.warmup is not None else (3.0 if full else 1.5)

    os.makedirs(OUT, exist_ok=True)
    # One run at a time in a tree: two runs would share target/e2e and the CPU.
    lock = open(os.path.join(OUT, ".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another e2e run holds target/e2e/.lock: waiting for it (up to 20 min)")
        deadline = time.monotonic() + 1200
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log("gave up waiting for the other e2e run")
                    return 1
                time.sleep(1)
    topologies = [t.strip() for t in args.topologies.split(",") if t.strip()]
    for t in topologies:
        if t not in TOPOLOGIES:
            p.error(f"unknown topology {t!r} (one of {', '.join(TOPOLOGIES)})")
    if "k8s" in topologies and args.drain_delay_ms <= args.k8s_lag_ms:
        log(f"note: k8s with --drain-delay-ms {args.drain_delay_ms} <= --k8s-lag-ms "
            f"{args.k8s_lag_ms}: admission closes before the endpoint is removed; expect failures")
    results = []
    snap = tempfile.mkdtemp(prefix="e2e-bin-")
    atexit.register(shutil.rmtree, snap, True)
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = ""
    for topology in topologies:
        drain = topology_drain(topology, args)
        for name in [a.strip() for a in args.arms.split(",") if a.strip()]:
            arm = ARMS[name]
            ok, why = arm.available()
            if not ok:
                log(f"{topology}/{name}: SKIPPED ({why})")
                results.append({"arm": name, "topology": topology,
                                "control": arm.control or topology in CONTROL_TOPOLOGIES,
                                "mode": args.mode, "verdict": "skipped", "skip_reason": why})
                continue
            if not hasattr(arm, "snapped"):
                try:
                    arm.snapshot(snap)
                    arm.snapped = True
                except OSError as e:
                    why = f"could not copy its files: {e}"
                    log(f"{topology}/{name}: SKIPPED ({why})")
                    results.append({"arm": name, "topology": topology,
                                "control": arm.control or topology in CONTROL_TOPOLOGIES,
                                    "mode": args.mode, "verdict": "skipped", "skip_reason": why})
                    continue
            log(f"{topology}/{name}: 3 instances, {args.rounds} round(s) of rolling restarts, "
                f"wrk -c{args.connections}, drain_delay {drain.delay_ms} ms, announce_probes "
                f"{drain.announce_probes if drain.announce_probes is not None else 'off'}"
                + (f", endpoint lag {args.k8s_lag_ms} ms" if topology.startswith("k8s") else ""))
            r = run_one(topology, arm, args, drain)
            r["git_head"] = rev
            results.append(r)
            log(f"{topology}/{name}: {r['verdict'].upper()} requests={r['requests']} "
                f"non2xx={r['non_2xx']} socket_errors={r['socket_errors']} "
                f"proxy5xx={r['proxy_5xx']} sigkills={r['sigkills']} "
                f"unfinished={r['accepted_not_completed']}"
                + (f" [{'; '.join(r['failures'])}]" if r["failures"] else ""))
            for n in r["client_proxy_disagreement"]:
                log(f"  note: {n}")

    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(results, f, indent=2)
    print()
    table(results)
    for r in results:
        for n in r.get("notes", []) + r.get("client_proxy_disagreement", []):
            print(f"  {r['topology']}/{r['arm']}: {n}")
        other = (r.get("proxy_counters") or {}).get("upstream_other_errors")
        if other and not r["control"]:
            print(f"  {r['topology']}/{r['arm']}: WARNING {other} requests reached an instance and "
                  f"were lost there (connection reset); nginx retried the idempotent ones, a POST "
                  f"there fails: {(r['proxy_counters'].get('other_error_sample') or [''])[0][:160]}")
    print()
    print(f"summary: {os.path.relpath(os.path.join(OUT, 'summary.json'), os.getcwd())}, "
          f"logs: {os.path.relpath(OUT, os.getcwd())}/<topology>-<arm>/")
    passed = sum(1 for r in results if r["verdict"] == "pass")
    failed = sum(1 for r in results if r["verdict"] == "fail")
    skipped = sum(1 for r in results if r["verdict"] == "skipped")
    if args.require_all:
        failed += skipped
    line = f"e2e: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
