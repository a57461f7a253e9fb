"""A real HTTP server on 127.0.0.1 for the tests: serves bytes from memory with ETag and
Last-Modified, honours Range and If-Range, records what it was asked, and can be told to misbehave
for a given path."""

from __future__ import annotations

import gzip
import hashlib
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Fault:
    """Misbehaviour for the first `times` requests of a path with `method`. `Server.faults[path]` may
    also be a list of faults, used one after the other (e.g. drop a body, then answer its resume wrongly).
    HEAD requests only follow `status` (with `headers`), `retry_after`, `redirect_to` and `replace_with`."""

    times: int
    method: str = "GET"
    status: int | None = None  # answer with this status and no body
    retry_after: str | None = None
    drop_after: int | None = None  # send this many body bytes, then close the connection
    claim_extra: int = 0  # announce this many more bytes than are sent (then close)
    stall: float = 0.0  # send the first body bytes, then go silent this many seconds
    redirect_to: str | None = None  # answer 302 with this Location
    trickle: float = 0.0  # send the body one byte at a time, this many seconds apart
    trickle_headers: float = 0.0  # send the status line and headers one byte at a time, this many seconds apart
    # framing and coding
    unframed: bool = False  # HTTP/1.0 style: no Content-Length, no chunks; closing the connection ends the body
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    gzip: bool = False  # Content-Encoding: gzip (whatever Accept-Encoding says); ranges are of the gzip bytes
    # answers to a Range request
    ignore_range: bool = False  # a 200 with the whole file
    content_range: str | None = None  # a 206 with this Content-Range (formatted with start, end, total; "": none)
    body_from: int | None = None  # a 206 whose body starts at this byte, whatever its Content-Range says
    body_shift: int = 0  # a 206 whose body starts this many bytes after (< 0: before) the byte its Content-Range says
    trim: int = 0  # a 206 whose body (and Content-Length) is this many bytes short of its Content-Range
    range_as_200: bool = False  # a 206's headers and body sent as "200 OK" (a download script that forgot its 206)
    first_bytes: int | None = None  # a GET without Range answered as if it asked for its first this many bytes
    # versions
    replace_with: bytes | None = None  # from this request on, the path serves these bytes (a new version)
    headers: dict[str, str | None] = field(default_factory=dict)  # response headers to set (None: to leave out)


def _opened() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass
class Server:
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, Fault | list[Fault]] = field(default_factory=dict)
    log: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, Range header, status
    request_headers: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, headers
    port: int = 0
    delay: float = 0.0  # seconds to wait before answering each GET: the latency of a remote server
    rate_bytes_per_s: float = 0.0  # per connection: bodies are sent at this pace (0: as fast as possible)
    gate: threading.Event = field(default_factory=_opened)  # cleared: GETs wait until it is set again …
    held: set[str] | None = None  # … only GETs of these paths, once it is a set
    body_bytes: int = 0  # body bytes sent in all
    written_bytes: int = 0  # of them, written to a socket so far (a client that hangs up stops it)
    lock: threading.Lock = field(default_factory=threading.Lock)
    etag: str = "strong"  # "strong", "weak" or "" (no ETag)
    last_modified: bool = True
    if_range: bool = True  # False: serve the range even when If-Range names another version
    head_length: bool = True  # False: HEAD answers without Content-Length
    head_content_length: int | None = None  # HEAD answers with this Content-Length (a server that lies)
    http10: bool = False  # answer as an HTTP/1.0 server (no chunks, no keep-alive)
    modified: dict[str, str] = field(default_factory=dict)  # path → its Last-Modified (a touch: same bytes)
    head_headers: dict[str, str | None] = field(default_factory=dict)  # HEAD answers differ from GET's (None: left out)
    date: bool = True  # False: answers without a Date header (a server without a clock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def requests_for(self, path: str) -> list[tuple[str, str | None, int]]:
        return [r for r in self.log if r[0] == "/" + path.lstrip("/")]

    def headers_for(self, path: str, method: str = "GET") -> list[dict[str, str]]:
        return [h for m, p, h in self.request_headers if m == method and p == "/" + path.lstrip("/")]

    def validators(self, data: bytes, coding: str = "", path: str = "") -> dict[str, str]:
        """ETag and Last-Modified of a file's bytes: any new version has new ones. A gzip-coded
        representation has its own ETag (as Apache's "-gzip") and the file's Last-Modified;
        `modified[path]` replaces the Last-Modified (a file touched on the server)."""
        found = {}
        if self.etag:
            tag = hashlib.md5(data).hexdigest()[:16] + (f"-{coding}" if coding else "")
            found["ETag"] = ("W/" if self.etag == "weak" else "") + f'"{tag}"'
        if self.last_modified:
            found["Last-Modified"] = self.modified.get(path) or formatdate(
                1_600_000_000 + zlib.crc32(data) % 10**8, usegmt=True
            )
        return found

    def next_fault(self, path: str, method: str) -> Fault:
        faults = self.faults.get(path)
        for fault in faults if isinstance(faults, list) else [faults] if faults else []:
            if fault.times > 0 and fault.method == method:
                fault.times -= 1
                return fault
        return Fault(times=0)


def _handler(server: Server):
    class Handler(BaseHTTPRequestHandler):
        trickle_headers = 0.0

        @property
        def protocol_version(self):
            return "HTTP/1.0" if server.http10 else "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def send_response(self, code, message=None):
            if server.date:
                return super().send_response(code, message)
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Server", self.version_string())

        def flush_headers(self):
            if not self.trickle_headers or not getattr(self, "_headers_buffer", None):
                return super().flush_headers()
            data, self._headers_buffer = b"".join(self._headers_buffer), []
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(self.trickle_headers)

        def _empty(self, path: str, status: int, headers: dict[str, str]) -> None:
            server.log.append((path, self.headers.get("Range"), status))
            self.send_response(status)
            for name, value in {"Content-Length": "0", **headers}.items():
                if value is not None:  # None: left out
                    self.send_header(name, value)
            self.end_headers()

        def _refusal(self, path: str, fault: Fault) -> bool:
            if fault.redirect_to:
                self._empty(path, 302, {"Location": fault.redirect_to})
            elif fault.status:
                retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._empty(path, fault.status, fault.headers | retry)  # headers: e.g. a wrong 304's ETag
            return bool(fault.redirect_to or fault.status)

        def _begin(self, method: str) -> tuple[str, Fault] | None:
            """Record the request and apply its fault; None when the fault already answered it."""
            path = unquote(self.path.split("?")[0])
            server.request_headers.append((method, path, dict(self.headers)))
            if method == "GET":
                while not server.gate.is_set() and (server.held is None or path in server.held):
                    server.gate.wait(0.05)
                time.sleep(server.delay)
            fault = server.next_fault(path, method)
            if self._refusal(path, fault):
                return None
            if fault.replace_with is not None:
                server.files[path] = fault.replace_with
            return path, fault

        def do_HEAD(self):
            if (begun := self._begin("HEAD")) is None:
                return
            path, _ = begun
            body = server.files.get(path)
            if body is None:
                return self._empty(path, 404, {})
            server.log.append((path, None, 200))
            self.send_response(200)
            if server.head_length:
                length = len(body) if server.head_content_length is None else server.head_content_length
                self.send_header("Content-Length", str(length))
            answer = {"Accept-Ranges": "bytes", **server.validators(body, path=path), **server.head_headers}
            for name, value in answer.items():
                if value is not None:
                    self.send_header(name, value)
            self.end_headers()

        def do_GET(self):
            if (begun := self._begin("GET")) is None:
                return
            path, fault = begun
            rng = asked = self.headers.get("Range")
            if rng is None and fault.first_bytes is not None:  # a server that caps every answer
                rng = f"bytes=0-{fault.first_bytes - 1}"
            body = server.files.get(path)
            if body is None:
                server.log.append((path, asked, 404))
                self.send_error(404)
                return
            rep = gzip.compress(body, mtime=0) if fault.gzip else body
            validators = server.validators(body, "gzip" if fault.gzip else "", path)
            status, start, end = 200, 0, len(rep) - 1
            if rng and rng.startswith("bytes=") and not fault.ignore_range and self._if_range_holds(validators):
                first, _, last = rng[6:].split(",")[0].partition("-")
                start = int(first)
                if start >= len(rep):
                    return self._empty(path, 416, {"Content-Range": f"bytes */{len(rep)}", **validators})
                status, end = 206, min(int(last), end) if last else end
            part = rep[start : end + 1]
            headers = {"Accept-Ranges": "bytes", **validators}
            if status == 206:
                if fault.body_from is not None or fault.body_shift:
                    first_byte = fault.body_from if fault.body_from is not None else max(0, start + fault.body_shift)
                    part = rep[first_byte : first_byte + len(part)]
                part = part[: len(part) - fault.trim]
                template = "bytes {start}-{end}/{total}" if fault.content_range is None else fault.content_range
                if template:
                    headers["Content-Range"] = template.format(start=start, end=end, total=len(rep))
                status = 200 if fault.range_as_200 else 206
            if fault.gzip:
                headers["Content-Encoding"] = "gzip"
            if fault.unframed:
                headers["Connection"] = "close"
            elif fault.chunked:
                headers["Transfer-Encoding"] = "chunked"
            else:
                headers["Content-Length"] = str(len(part) + fault.claim_extra)
            server.log.append((path, asked, status))
            self.trickle_headers = fault.trickle_headers
            self.send_response(status)
            for name, value in {**headers, **fault.headers}.items():
                if value is not None:
                    self.send_header(name, value)
            self.end_headers()
            try:
                self._body(part, fault)
            except OSError:  # the client hung up (e.g. its deadline): nothing more to send
                self.close_connection = True

        def _if_range_holds(self, validators: dict[str, str]) -> bool:
            asked = self.headers.get("If-Range")
            if asked is None or not server.if_range:
                return True
            return asked in (validators.get("ETag"), validators.get("Last-Modified")) and not asked.startswith("W/")

        def _body(self, part: bytes, fault: Fault) -> None:
            if fault.stall:
                self.wfile.write(part[:1000])
                self.wfile.flush()
                time.sleep(fault.stall)
                self.close_connection = True
                return
            if fault.trickle:
                for i in range(len(part)):
                    self._send(part[i : i + 1], fault.chunked, last=False)
                    self.wfile.flush()
                    time.sleep(fault.trickle)
                self._send(b"", fault.chunked)
                return
            cut = fault.drop_after if fault.drop_after is not None else len(part) if fault.claim_extra else None
            if cut is not None:  # send part of the body, never its end (no last chunk), then hang up
                self._send(part[:cut], fault.chunked, last=False)
                self.wfile.flush()
                time.sleep(0.05)
                self.close_connection = True
                return
            with server.lock:  # handler threads run at once: count before sending, under a lock
                server.body_bytes += len(part)
            self._send(part, fault.chunked)

        def _send(self, data: bytes, chunked: bool, last: bool = True) -> None:
            began = time.monotonic()
            for i in range(0, len(data), 16384):
                piece = data[i : i + 16384]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                with server.lock:
                    server.written_bytes += len(piece)
                if server.rate_bytes_per_s:  # one connection's bandwidth cap: as a slow portal sends
                    time.sleep(max(0.0, began + (i + len(piece)) / server.rate_bytes_per_s - time.monotonic()))
            if chunked and last:
                self.wfile.write(b"0\r\n\r\n")

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client hanging up is what the tests do on purpose
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def start(server: Server) -> tuple[ThreadingHTTPServer, threading.Thread]:
    httpd = _QuietServer(("127.0.0.1", server.port), _handler(server))
    httpd.daemon_threads = True
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)  # quick shutdown
    thread.start()
    return httpd, thread
