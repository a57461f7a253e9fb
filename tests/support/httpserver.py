"""A real HTTP server on 127.0.0.1 for the tests: serves bytes from memory, honours Range
requests, records what it was asked, and can be told to misbehave for a given path."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Fault:
    """Misbehaviour for the first `times` requests of a path."""

    times: int
    status: int | None = None  # answer with this status and no body
    retry_after: str | None = None
    drop_after: int | None = None  # send this many body bytes, then close the connection
    claim_extra: int = 0  # announce this many more bytes than are sent (then close)
    stall: float = 0.0  # send the first body bytes, then go silent this many seconds
    redirect_to: str | None = None  # answer 302 with this Location


@dataclass
class Server:
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    log: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, Range header, status
    port: int = 0
    delay: float = 0.0  # seconds to wait before answering each request
    body_bytes: int = 0  # body bytes sent in all
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def requests_for(self, path: str) -> list[tuple[str, str | None, int]]:
        return [r for r in self.log if r[0] == "/" + path.lstrip("/")]


def _handler(server: Server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_HEAD(self):
            body = server.files.get(unquote(self.path.split("?")[0]))
            server.log.append((self.path, None, 200 if body is not None else 404))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

        def do_GET(self):
            path = unquote(self.path.split("?")[0])
            time.sleep(server.delay)
            rng = self.headers.get("Range")
            fault = server.faults.get(path)
            if fault and fault.times > 0:
                fault.times -= 1
                if fault.redirect_to:
                    server.log.append((path, rng, 302))
                    self.send_response(302)
                    self.send_header("Location", fault.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault.status:
                    server.log.append((path, rng, fault.status))
                    self.send_response(fault.status)
                    if fault.retry_after:
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            else:
                fault = None
            body = server.files.get(path)
            if body is None:
                server.log.append((path, rng, 404))
                self.send_error(404)
                return
            start, status = 0, 200
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(body):
                    server.log.append((path, rng, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            server.log.append((path, rng, status))
            part = body[start:]
            self.send_response(status)
            end = len(body) - 1
            if status == 206:
                tail = rng[6:].split("-")[1].split(",")[0]
                end = min(int(tail), end) if tail else end
                part = body[start : end + 1]
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            self.send_header("Accept-Ranges", "bytes")
            extra = fault.claim_extra if fault else 0
            self.send_header("Content-Length", str(len(part) + extra))
            self.end_headers()
            if fault and fault.stall:
                self.wfile.write(part[:1000])
                self.wfile.flush()
                time.sleep(fault.stall)
                self.close_connection = True
                return
            if fault and (fault.drop_after is not None or extra):
                cut = fault.drop_after if fault.drop_after is not None else len(part)
                self.wfile.write(part[:cut])
                self.wfile.flush()
                time.sleep(0.05)
                self.close_connection = True
                return
            with server.lock:  # handler threads run at once: count before sending, under a lock
                server.body_bytes += len(part)
            self.wfile.write(part)

    return Handler


def start(server: Server) -> tuple[ThreadingHTTPServer, threading.Thread]:
    httpd = ThreadingHTTPServer(("127.0.0.1", server.port), _handler(server))
    httpd.daemon_threads = True
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread
