"""A loopback TCP proxy in front of an S3 server that misbehaves on a fixed schedule.

Per new connection it either relays faithfully, answers 503 SlowDown without asking the
server, stalls before relaying, or cuts the server's response off half-way (a reset). Used
to show that the job survives what real object stores do under load.

``FaultyProxy(port, fault=dying)`` instead relays every connection until it has carried about
``life_bytes`` towards the client, then closes it: a long transfer over a network whose
connections do not last. ``bytes_down`` counts what the client was sent.

``fault=continue_then_close`` relays faithfully until the server answers ``100 Continue``; the
client then gets that status line alone and the connection closes (what a connection dying
right there looks like). ``continues`` counts those cuts, ``expects`` the requests that asked
for a 100 Continue. ``fault=trickling`` passes the server's answer on one byte every
``trickle_s`` seconds: every socket read succeeds, the answer never ends in useful time.

``fault=paced_bodies`` relays requests and answers one at a time (requests framed by
Content-Length, as GETs and HEADs are) and passes each GET's answer headers on at once, then
its body ``step_bytes`` every ``trickle_s`` seconds; with ``declare_bytes`` the headers
declare that Content-Length instead of the real one, and once the real body is out the
connection just stays open. ``fault=unsized_bodies`` passes each GET's answer on without its
Content-Length and closes the connection after the body, so only the close ends it.
"""

import asyncio
import socket
import struct
import threading
from collections import Counter

SLOWDOWN = (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
            b"Content-Length: 142\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message></Error>\n")
CONTINUE = b"HTTP/1.1 100 Continue\r\n"


def schedule(n: int) -> str:
    """What connection number ``n`` gets; most connections behave."""
    if n % 5 == 1:
        return "slowdown"
    if n % 7 == 3:
        return "reset"
    if n % 6 == 2:
        return "stall"
    return "relay"


def dying(n: int) -> str:
    """Every connection dies after carrying about ``life_bytes``."""
    return "dies"


def continue_then_close(n: int) -> str:
    """Every connection closes right after a 100 Continue status line."""
    return "continue-close"


def trickling(n: int) -> str:
    """Every answer comes one byte every ``trickle_s`` seconds."""
    return "trickle"


def paced_bodies(n: int) -> str:
    """Every GET's body comes ``step_bytes`` every ``trickle_s`` seconds, after prompt headers."""
    return "paced"


def unsized_bodies(n: int) -> str:
    """Every GET's answer comes without a Content-Length, ended by the connection's close."""
    return "unsized"


def _length(head: bytes) -> int:
    """The Content-Length of a request's or an answer's head (0 when it has none)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _with_length(head: bytes, length: int | None) -> bytes:
    """``head`` declaring ``length`` (None: no Content-Length, and the connection closes after)."""
    lines = [line for line in head[:-4].split(b"\r\n")
             if line.partition(b":")[0].strip().lower() not in (b"content-length", b"connection")]
    lines.append(b"Connection: close" if length is None else b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


class FaultyProxy:
    def __init__(self, upstream_port: int, stall_s: float = 1.0, fault=schedule, life_bytes: int = 1 << 20,
                 trickle_s: float = 1.0, step_bytes: int = 1, declare_bytes: int | None = None):
        self.upstream_port, self.stall_s, self.trickle_s = upstream_port, stall_s, trickle_s
        self.step_bytes, self.declare_bytes = step_bytes, declare_bytes
        self.fault, self.life_bytes = fault, life_bytes
        self.counts: Counter = Counter()
        self.bytes_down = 0
        self.expects = 0  # requests sent with "Expect: 100-continue"
        self.continues = 0  # connections closed right after a 100 Continue
        self._connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultyProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader, writer) -> None:
        self._connections += 1
        fault = self.fault(self._connections)
        self.counts[fault] += 1
        try:
            if fault == "slowdown":
                await reader.read(65536)
                writer.write(SLOWDOWN)
                await writer.drain()
                return
            if fault == "stall":
                await asyncio.sleep(self.stall_s)
            if fault in ("paced", "unsized"):
                await self._exchanges(reader, writer, unsized=fault == "unsized")
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            upload = asyncio.create_task(self._pipe(reader, up_writer, upstream=True))
            if fault == "trickle":
                await self._trickle(up_reader, writer)
            else:
                await self._pipe(up_reader, writer, cut_after=self._cut(fault), downstream=True,
                                 after_continue=fault == "continue-close")
            upload.cancel()
            up_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client gone, or the proxy stopping mid-answer
        finally:
            if fault == "reset":  # an abortive close: the client sees a connection reset
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()

    def _cut(self, fault: str) -> int | None:
        """Bytes a connection carries towards the client before it breaks (None: no limit).
        A dying connection lives 0.75 to 1.25 x life_bytes, varying from one to the next."""
        if fault == "reset":
            return 2048
        if fault == "dies":
            return int(self.life_bytes * (0.75 + 0.5 * ((self._connections * 7919) % 101) / 100))
        return None

    async def _pipe(self, reader, writer, cut_after: int | None = None, downstream: bool = False,
                    upstream: bool = False, after_continue: bool = False) -> None:
        sent = 0
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if upstream:
                self.expects += data.lower().count(b"\r\nexpect: 100-continue")
            if after_continue and CONTINUE in data:
                cut_after = sent + data.index(CONTINUE) + len(CONTINUE)
                self.continues += 1
            if cut_after is not None and sent + len(data) > cut_after:
                data = data[: max(cut_after - sent, 1)]
            writer.write(data)
            await writer.drain()
            sent += len(data)
            if downstream:
                self.bytes_down += len(data)
            if cut_after is not None and sent >= cut_after:
                return

    async def _trickle(self, reader, writer) -> None:
        while data := await reader.read(65536):
            for byte in data:
                writer.write(bytes([byte]))
                await writer.drain()
                self.bytes_down += 1
                await asyncio.sleep(self.trickle_s)

    async def _exchanges(self, reader, writer, unsized: bool) -> None:
        """Relay one request and its answer at a time, reshaping the answers to GETs."""
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            while True:
                try:
                    request = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection
                up_writer.write(request + await reader.readexactly(_length(request)))
                await up_writer.drain()
                head = await up_reader.readuntil(b"\r\n\r\n")
                body = b"" if request.startswith(b"HEAD ") else await up_reader.readexactly(_length(head))
                if not request.startswith(b"GET "):
                    writer.write(head + body)
                elif unsized:
                    writer.write(_with_length(head, None) + body)
                    await writer.drain()
                    return
                else:
                    await self._paced(writer, _with_length(head, self.declare_bytes or len(body)), body)
                await writer.drain()
        finally:
            up_writer.close()

    async def _paced(self, writer, head: bytes, body: bytes) -> None:
        """``head`` at once, then ``body`` step by step; short of a declared length, wait forever."""
        writer.write(head)
        await writer.drain()
        for start in range(0, len(body), self.step_bytes):
            await asyncio.sleep(self.trickle_s)
            writer.write(body[start: start + self.step_bytes])
            await writer.drain()
            self.bytes_down += len(body[start: start + self.step_bytes])
        if _length(head) > len(body):
            await asyncio.Event().wait()
