#!/usr/bin/env python3
"""The naive control: an HTTP/1.1 keep-alive server with no shutdown handling at all.

It serves the same routes as the example servers (GET /, GET /slow?ms=N, POST /work,
GET /readyz, always 200 ready) and logs `accepted ID` / `completed ID STATUS` like
them, but SIGTERM keeps its default action: the process dies on the spot, with
requests in flight and keep-alive connections open. The end-to-end harness must
see failures with it; if it does not, the harness is blind.

    python3 tests/e2e/naive_server.py --port 8080 --log-requests /tmp/naive.log
"""

import argparse
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_fd = None

    def log_message(self, *args):  # no per-request stderr noise
        pass

    def _log(self, line):
        if Handler.log_fd is not None:
            os.write(Handler.log_fd, (line + "\n").encode())

    def _reply(self, status, body, rid):
        data = (body + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        if rid:
            self.send_header("X-Request-Id", rid)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if rid:
            self._log(f"completed {rid} {status}")

    def _handle(self, method):
        url = urlsplit(self.path)
        if url.path == "/readyz":
            # Never "not ready": this server knows nothing of draining.
            self._reply(200, "ready", None)
            return
        rid = self.headers.get("X-Request-Id")
        if rid:
            self._log(f"accepted {rid}")
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if method == "GET" and url.path == "/":
            self._reply(200, "ok", rid)
        elif method == "GET" and url.path == "/slow":
            ms = int(parse_qs(url.query).get("ms", ["1000"])[0])
            time.sleep(min(ms, 60000) / 1000)
            self._reply(200, f"slept {ms} ms", rid)
        elif method == "POST" and url.path == "/work":
            self._reply(202, f"accepted {length} bytes", rid)
        else:
            self._reply(404, "not found", rid)

    def do_GET(self):
        self._handle("GET")

    def do_HEAD(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--log-requests")
    a = p.parse_args()
    if a.log_requests:
        Handler.log_fd = os.open(a.log_requests, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"naive-server listening on 127.0.0.1:{server.server_address[1]} pid {os.getpid()}",
          file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
