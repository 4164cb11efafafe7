"""A small HTTP/1.1 server for a WSGI app, on an event loop of its own thread.

For the monitoring port, the prometheus adapter's endpoint and the admin page: pages that are scraped,
probed and looked at. What it guarantees, whoever connects:

- **GET and HEAD only**, unless given other `methods` (the admin page takes POST too). Any other
  method gets 405 with `Allow: <the methods>`; HEAD gets GET's headers (its Content-Length too) and no
  body. A request body is read only for a method other than GET and HEAD, only with a Content-Length
  (411 without; no chunked bodies), and only up to `max_body` bytes (413 beyond).
- **Bounded time.** The TLS handshake and the request line and headers must arrive within
  `header_timeout` seconds of connecting (HEADER_TIMEOUT by default), or the connection is closed: a
  client trickling a partial request (slowloris) holds nothing for long. A body gets as long again
  after the headers, and writing the answer too. One request per connection (`Connection: close`), as
  wsgiref did.
- **Bounded threads and memory.** Connections are coroutines on one event loop thread, so idle ones
  cost no thread; the app runs on a pool of `workers` threads, so a slow page never stalls the loop
  (nor, on its own thread, gRPC's); beyond `max_connections` open connections, new ones are closed at
  once; a request head larger than MAX_HEAD bytes gets 431.

The socket is bound in the constructor, so a busy port is an OSError there, before anything starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

_log = logging.getLogger(__name__)

_StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]
TlsContext = Callable[[], ssl.SSLContext]

#: Seconds a client gets to finish its TLS handshake and send the request line and headers.
HEADER_TIMEOUT = 5.0
#: Open connections beyond which new ones are closed at once.
MAX_CONNECTIONS = 512
#: Threads running the app (a scrape, a probe); requests beyond wait for one.
WORKERS = 4
#: Largest request line plus headers, in bytes.
MAX_HEAD = 16 * 1024
#: Largest request body, in bytes (only methods other than GET and HEAD have one).
MAX_BODY = 64 * 1024

READ_ONLY = ("GET", "HEAD")
_REASONS = {
    400: "Bad Request",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}
_Answer = tuple[str, list[tuple[str, str]], bytes]


def _plain(code: int, text: str, *extra: tuple[str, str]) -> _Answer:
    headers = [("Content-Type", "text/plain; charset=utf-8"), *extra]
    return f"{code} {_REASONS[code]}", headers, text.encode()


class _BadRequest(Exception):
    pass


def _environ(head: bytes, server: tuple[str, int], peer: Any, scheme: str) -> dict[str, Any]:
    """The WSGI environ of a request head (request line and headers, CRLF-separated)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(lines[0])
    method, target, version = parts
    url = urlsplit(target)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(url.path, encoding="latin-1"),
        "QUERY_STRING": url.query,
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": version,
        "REMOTE_ADDR": peer[0] if isinstance(peer, tuple) else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(line)
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
        value = value.strip()
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _call(app: WsgiApp, environ: dict[str, Any]) -> _Answer:
    """Run the app to the end (in a worker thread); its status, headers and whole body."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer[:] = [status, headers]
        return body.append

    body: list[bytes] = []
    chunks = app(environ, start_response)
    try:
        body.extend(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return answer[0], list(answer[1]), b"".join(body)


def _response(method: str, answer: _Answer) -> bytes:
    status, headers, body = answer
    lines = [f"HTTP/1.1 {status}"]
    lines += [
        f"{name}: {value}"
        for name, value in headers
        if name.lower() not in ("content-length", "connection", "transfer-encoding")
    ]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (b"" if method == "HEAD" else body)


def _listen(host: str, port: int) -> socket.socket:
    # Not socket.create_server: its OSError rewrites strerror, and callers show strerror.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as wsgiref did: restart in TIME_WAIT
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class BackgroundHttpServer:
    """Serves `app` (see the module docstring) on host:port; `port` is the bound port (useful when 0
    was asked for). `tls`, when given, is called at each connection for the server context to
    handshake with (so a context that changes, e.g. after a certificate rotation, applies to new ones).
    `methods`: the HTTP methods served (GET and HEAD by default; HEAD always comes with GET)."""

    def __init__(
        self,
        app: WsgiApp,
        host: str,
        port: int,
        *,
        name: str,
        tls: TlsContext | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        workers: int = WORKERS,
        methods: tuple[str, ...] = READ_ONLY,
        max_body: int = MAX_BODY,
    ) -> None:
        self._app = app
        # HEAD is GET without the body, so it comes with GET.
        self._methods = tuple(dict.fromkeys((*methods, "HEAD") if "GET" in methods else methods))
        self._max_body = max_body
        self._tls = tls
        self._header_timeout = header_timeout
        self._max_connections = max_connections
        self._sock = _listen(host.strip("[]"), port)
        self.port: int = self._sock.getsockname()[1]
        self._host = host
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-app")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._stop_lock = threading.Lock()
        self._stopping = False
        self._open: set[asyncio.Task[None]] = set()

    @property
    def scheme(self) -> str:
        return "http" if self._tls is None else "https"

    def start(self) -> None:
        """Start serving on the server's own thread; returns once connections are accepted."""
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        """Stop serving, close the socket and every open connection (blocks until done). Idempotent,
        also from several threads at once."""
        with self._stop_lock:  # one caller signals; the loop may be closing under a second one
            if not self._stopping and self._loop is not None and self._stop is not None:
                self._stopping = True
                with contextlib.suppress(RuntimeError):  # its loop already ended (it failed): nothing to stop
                    self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._sock.close()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self._sock, limit=MAX_HEAD)
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._open):
                task.cancel()
            await asyncio.gather(*self._open, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._open) >= self._max_connections:
            writer.transport.abort()
            return
        self._open.add(task)
        try:
            response = await self._read_and_answer(reader, writer)
            writer.write(response)
            async with asyncio.timeout(self._header_timeout):
                writer.close()  # after what is buffered is sent
                await writer.wait_closed()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass  # a client that is too slow, goes away or fails its handshake: nothing to answer
        finally:
            self._open.discard(task)
            writer.transport.abort()  # nothing left to send (or no time for it): free the socket now

    async def _read_and_answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        try:
            async with asyncio.timeout(self._header_timeout):
                if self._tls is not None:
                    await writer.start_tls(self._tls())
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return _response("GET", _plain(431, "request head too large\n"))
        try:
            environ = _environ(
                head[:-4], (self._host, self.port), writer.get_extra_info("peername"), self.scheme
            )
        except _BadRequest:
            return _response("GET", _plain(400, "bad request\n"))
        method = environ["REQUEST_METHOD"]
        if method not in self._methods:
            allowed = ", ".join(self._methods)
            return _response(method, _plain(405, f"method not allowed; use {allowed}\n", ("Allow", allowed)))
        if method not in READ_ONLY:
            refused = await self._read_body(reader, environ)
            if refused is not None:
                return _response(method, refused)
        try:
            answer = await asyncio.get_running_loop().run_in_executor(
                self._executor, _call, self._app, environ
            )
        except Exception:
            _log.exception("%s: %s %s failed", self._name, method, environ["PATH_INFO"])
            answer = _plain(500, "internal error\n")
        return _response(method, answer)

    async def _read_body(self, reader: asyncio.StreamReader, environ: dict[str, Any]) -> _Answer | None:
        """Read the request body into environ["wsgi.input"]; the refusal to send instead, if any."""
        if "HTTP_TRANSFER_ENCODING" in environ:
            return _plain(501, "chunked request bodies are not supported; send a Content-Length\n")
        length_text = environ.get("CONTENT_LENGTH", "")
        if not length_text.isdigit():  # absent, negative, or several values joined by a comma
            return _plain(411, "a Content-Length header is required\n")
        length = int(length_text)
        if length > self._max_body:
            return _plain(413, f"request body larger than {self._max_body} bytes\n")
        async with asyncio.timeout(self._header_timeout):  # TimeoutError: the connection is dropped
            body = await reader.readexactly(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return None
