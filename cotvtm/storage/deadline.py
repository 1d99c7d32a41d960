"""Bounds on S3 calls, enforced from outside the socket, by progress rather than by size.

botocore's ``read_timeout`` bounds each socket read, not a request: a server, proxy or
half-dead connection that trickles a byte now and then keeps a call alive forever. A deadline
sized by the bytes a call expects is no cure either, since that size is the server's word (a
server that declares 1 GiB and trickles would earn hours). And botocore's ``Expect:
100-continue`` handling spins at 100% of a core when a connection closes right after the
``100 Continue`` status line (``AWSConnection._consume_headers`` reads lines until a blank
one; at EOF each read returns b'' at once, and no timeout applies).

A client given to ``watch`` therefore:

- never sends ``Expect: 100-continue``: the header is dropped just before each send (it is not
  part of the SigV4 signature), so botocore sends the body at once and never enters that loop;
- counts every byte its connections send and receive, at the socket;
- makes every request inside a ``Call`` (``with bounded(uri, seconds, idle_s, pace):``). One
  watchdog thread enforces its bounds by shutting down the sockets of its connections, which
  makes a blocked read or write fail at once: an HTTP attempt that moved no byte for
  ``idle_s`` is cut and botocore retries it on a fresh connection; while the call is moving
  data (``moving()``: a read, a request body) it must move ``pace.floor()`` bytes in every
  ``pace.window_s``, else it is abandoned (``TooSlow``, naming the rate); once the whole call is
  older than ``seconds`` it fails with ``DeadlineExceeded``. An abandoned call's attempts are
  cut and its retries refused.

A call reaches the threads it starts (a transfer manager's, parallel ranged reads) through
``contextvars``: ``ContextExecutor`` runs each task in a copy of its submitter's context.
"""

from __future__ import annotations

import functools
import heapq
import http.client
import io
import itertools
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar, copy_context
from dataclasses import dataclass

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)

from cotvtm.storage.errors import DeadlineExceeded, TooSlow

log = logging.getLogger(__name__)

CLEANUP_S = 30.0
"""After a call is abandoned, how long the abort of its multipart upload may still take: parts
left behind are billed until a lifecycle rule removes them."""
PACE_TICKS = 6
"""Looks at a call's pace per window: a stall is seen at most a sixth of a window late."""
SEND_BLOCK = 64 * 1024
"""Bytes handed to the socket at a time, so that a large body's progress is seen as it goes
(a single ``sendall`` of it would count nothing until the last byte left)."""

_current: ContextVar[Call | None] = ContextVar("cotvtm_s3_call", default=None)


@dataclass(frozen=True)
class Pace:
    """The least rate at which a call's data must move: ``min_bytes_per_s`` over every ``window_s``."""

    min_bytes_per_s: float
    window_s: float

    def floor(self) -> float:
        """Bytes each window must see."""
        return self.min_bytes_per_s * self.window_s

    def rate(self) -> str:
        return rate_text(self.min_bytes_per_s)


def rate_text(bytes_per_s: float) -> str:
    """``65536`` -> ``64 KiB/s``."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if bytes_per_s >= size:
            return f"{bytes_per_s / size:.3g} {unit}/s"
    return f"{bytes_per_s:.3g} B/s"


class Watchdog:
    """One daemon thread that runs actions at their time. With nothing due it waits on a
    condition (no polling); a cancelled action is skipped when its time comes."""

    def __init__(self):
        self._heap: list[list] = []  # [when, sequence, action or None once cancelled]
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def at(self, when: float, action: Callable[[], None]) -> list:
        """Run ``action`` at ``when`` (time.monotonic); returns a handle for ``cancel``."""
        entry = [when, next(self._order), action]
        with self._wake:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="s3-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()
        return entry

    @staticmethod
    def cancel(entry: list) -> None:
        entry[2] = None

    def _next(self) -> Callable[[], None]:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay <= 0:
                    action = heapq.heappop(self._heap)[2]
                    if action is not None:
                        return action
                    continue
                self._wake.wait(delay)

    def _run(self) -> None:
        while True:
            action = self._next()
            try:
                action()
            except Exception:  # noqa: BLE001 - one failed action must not stop the others
                log.exception("S3 deadline action failed")


WATCHDOG = Watchdog()
os.register_at_fork(after_in_child=WATCHDOG.__init__)  # a forked child has no watchdog thread


def _cut(connection) -> None:
    """Shut the connection's socket down: a read or write blocked on it in another thread
    fails at once (closing it would not wake that thread)."""
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class Call:
    """One S3 call's bounds, the connections its attempts are using and the bytes they moved."""

    def __init__(self, uri: str, seconds: float, idle_s: float, pace: Pace | None = None):
        self.uri, self.seconds, self.idle_s, self.pace = uri, seconds, min(idle_s, seconds), pace
        start = time.monotonic()
        self.deadline = start + seconds
        self.expired = False
        self.reason: str | None = None  # why the call was abandoned before its deadline
        self.cleanup_until = self.deadline + CLEANUP_S
        self.moved = 0  # bytes its attempts sent and received
        self._movers, self._moving_since = 0, None  # blocks inside moving(); since when some are
        self._samples: deque = deque([(start, 0)], maxlen=PACE_TICKS + 1)  # (time, moved) a tick apart
        self._lock = threading.Lock()
        self._closed = False
        self._attempts: dict[int, tuple[object, list]] = {}  # id(connection) -> (connection, timer)
        self._timer = WATCHDOG.at(self.deadline, self._expire)
        self._ticker = self._next_tick(start) if pace is not None else None

    def attach(self, connection) -> None:
        """``connection`` starts an HTTP attempt of this call: cut it once idle for ``idle_s``."""
        token = object()
        with self._lock:
            previous = self._attempts.pop(id(connection), None)
            if previous is not None:
                WATCHDOG.cancel(previous[1])
            connection.call, connection.attempt, connection.active = self, token, time.monotonic()
            self._attempts[id(connection)] = (connection, WATCHDOG.at(self._due(connection),
                                                                      lambda: self._idle(connection, token)))

    def count(self, nbytes: int) -> None:
        with self._lock:
            self.moved += nbytes

    def start_moving(self) -> None:
        """Data must keep moving from now until the matching ``stop_moving``: the pace applies."""
        with self._lock:
            self._movers += 1
            if self._movers == 1:
                self._moving_since = time.monotonic()

    def stop_moving(self) -> None:
        with self._lock:
            self._movers -= 1
            if not self._movers:
                self._moving_since = None

    @contextmanager
    def moving(self):
        self.start_moving()
        try:
            yield
        finally:
            self.stop_moving()

    def _due(self, connection) -> float:
        """When the attempt on ``connection`` is cut if it moves nothing more."""
        due = connection.active + self.idle_s
        return min(due, self.cleanup_until) if self.expired else due

    def _idle(self, connection, token: object) -> None:
        """Cut an attempt that moved nothing for ``idle_s``; look again later at one that did."""
        if connection.attempt is not token:  # since reused by another attempt or call
            return
        due = self._due(connection)
        if time.monotonic() >= due:
            _cut(connection)
            return
        with self._lock:
            if id(connection) in self._attempts and not self._closed:
                self._attempts[id(connection)] = (connection, WATCHDOG.at(due, lambda: self._idle(connection, token)))

    def _next_tick(self, last: float) -> list:
        when = last + self.pace.window_s / PACE_TICKS
        return WATCHDOG.at(when, lambda: self._tick(when))

    def _tick(self, now: float) -> None:
        """Abandon the call if its data moved slower than its pace over the last window."""
        with self._lock:
            if self.expired or self._closed:
                return
            self._samples.append((now, self.moved))
            self.reason = self._too_slow()
            if self.reason is None:
                self._ticker = self._next_tick(now)
                return
        self._expire()

    def _too_slow(self) -> str | None:
        """Why the last window was too slow, or None (not a whole window of moving data yet, or fast enough)."""
        since, before = self._samples[0]
        if len(self._samples) <= PACE_TICKS or self._moving_since is None or self._moving_since > since:
            return None
        moved = self.moved - before
        if moved >= self.pace.floor():
            return None
        return (f"S3 transfer abandoned: {moved} bytes moved in the last {self.pace.window_s:g} s, under the "
                f"minimum rate of {self.pace.rate()} ({self.pace.floor():.0f} bytes per {self.pace.window_s:g} s): "
                "the server or the network is too slow; run again")

    def _expire(self) -> None:
        """Abandon the call (its deadline passed, or its pace failed): cut its attempts."""
        with self._lock:
            self.expired = True
            self.cleanup_until = min(self.cleanup_until, time.monotonic() + CLEANUP_S)
            connections = [connection for connection, _ in self._attempts.values()]
        for connection in connections:
            if connection.call is self:
                _cut(connection)

    def refuse(self, operation: str) -> None:
        """Before each send: once abandoned only the abort of a multipart upload may go, briefly."""
        if self.expired and not (operation == "AbortMultipartUpload" and time.monotonic() < self.cleanup_until):
            raise self.error()

    def error(self) -> DeadlineExceeded:
        if self.reason is not None:
            return TooSlow(self.uri, self.reason)
        return DeadlineExceeded(self.uri, f"S3 call not finished within its deadline of {round(self.seconds, 1):g} s "
                                          f"(an attempt idle for {round(self.idle_s, 1):g} s is cut and retried): "
                                          "the server or the network stalled; run again")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for timer in [self._timer, self._ticker, *(timer for _, timer in self._attempts.values())]:
                if timer is not None:
                    WATCHDOG.cancel(timer)
            self._attempts.clear()


@contextmanager
def bounded(uri: str, seconds: float, idle_s: float | None = None, pace: Pace | None = None):
    """Run the S3 requests made inside the block (in this thread, and in threads started through
    ``ContextExecutor``) under one ``Call``. Whatever fails once the call was abandoned fails as
    its ``DeadlineExceeded`` (or ``TooSlow``)."""
    call = Call(uri, seconds, idle_s if idle_s is not None else seconds, pace)
    token = _current.set(call)
    try:
        yield call
    except Exception as exc:
        if call.expired and not isinstance(exc, DeadlineExceeded):
            raise call.error() from exc
        raise
    finally:
        _current.reset(token)
        call.close()


def moving():
    """A block in which the current call's data must keep moving at its pace (a read, a
    request body); nothing outside a paced call."""
    call = _current.get()
    return call.moving() if call is not None and call.pace is not None else nullcontext()


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitting thread's context, so that
    they stay under the ``Call`` that started them."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(copy_context().run, fn, *args, **kwargs)


class _CountedIO(io.RawIOBase):
    """A socket's reading end that reports each byte it receives."""

    def __init__(self, raw, moved: Callable[[int], None]):
        super().__init__()
        self._raw, self._moved = raw, moved

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        count = self._raw.readinto(buffer)
        if count:
            self._moved(count)
        return count

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _CountedSocket:
    """What an HTTP response is built on: ``http.client`` only asks it for ``makefile``."""

    def __init__(self, sock, moved: Callable[[int], None]):
        self._sock, self._moved = sock, moved

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_CountedIO(self._sock.makefile(mode, buffering=0), self._moved))


def _counted_response(sock, *args, moved: Callable[[int], None], **kwargs) -> http.client.HTTPResponse:
    return http.client.HTTPResponse(_CountedSocket(sock, moved), *args, **kwargs)


class _Bounded:
    """A botocore connection whose every request is attached to the current ``Call``, and whose
    bytes, sent and received, count as that call's progress. A request with a body keeps its
    call's data moving until the answer's headers are in."""

    call: Call | None = None
    attempt: object | None = None
    active: float = 0.0  # when it last moved a byte
    _sending: Call | None = None  # the call kept moving by this connection's request

    def __init__(self, *args, **kwargs):
        self.response_class = functools.partial(_counted_response, moved=self._moved)  # before AWSConnection keeps it
        super().__init__(*args, **kwargs)

    def _moved(self, count: int) -> None:
        self.active = time.monotonic()
        call = self.call
        if call is not None:
            call.count(count)

    def request(self, method, url, body=None, headers=None, *args, **kwargs):
        self._sent()
        call = _current.get()
        if call is not None:
            call.attach(self)
            if body and call.pace is not None:
                self._sending = call
                call.start_moving()
        try:
            return super().request(method, url, body, headers, *args, **kwargs)
        except BaseException:
            self._sent()
            raise

    def getresponse(self, *args, **kwargs):
        try:
            return super().getresponse(*args, **kwargs)
        finally:
            self._sent()

    def close(self):
        self._sent()
        super().close()

    def _sent(self) -> None:
        """The request's body is sent and its answer's headers are in (or it failed)."""
        call, self._sending = self._sending, None
        if call is not None:
            call.stop_moving()

    def send(self, data):
        """Bytes in blocks of SEND_BLOCK, each counted once the socket took it."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return super().send(data)
        view = memoryview(data).cast("B")
        for start in range(0, len(view), SEND_BLOCK):
            block = view[start: start + SEND_BLOCK]
            super().send(block)
            self._moved(len(block))
        return None


class BoundedHTTPConnection(_Bounded, AWSHTTPConnection):
    pass


class BoundedHTTPSConnection(_Bounded, AWSHTTPSConnection):
    pass


class BoundedHTTPConnectionPool(AWSHTTPConnectionPool):
    ConnectionCls = BoundedHTTPConnection


class BoundedHTTPSConnectionPool(AWSHTTPSConnectionPool):
    ConnectionCls = BoundedHTTPSConnection


def _before_send(request, event_name: str = "", **kwargs) -> None:
    """The last look at a signed request: drop the Expect header; refuse once the call was abandoned."""
    if "Expect" in request.headers:
        del request.headers["Expect"]
    call = _current.get()
    if call is not None:
        call.refuse(event_name.rsplit(".", 1)[-1])


def watch(client):
    """Put ``client``'s requests under the current ``Call`` and drop its Expect headers.

    botocore has no public hook for the connection class, so the pool classes of the client's
    HTTP layer (one mapping that all its pool managers share; pools are made at first use) are
    replaced before its first request. A botocore laid out otherwise fails here, not later.
    """
    client.meta.events.register("before-send.s3", _before_send)
    try:
        pools = client._endpoint.http_session._pool_classes_by_scheme
    except AttributeError as exc:
        raise RuntimeError(f"this botocore's HTTP layer has no pool classes to bound ({exc})") from exc
    pools.update(http=BoundedHTTPConnectionPool, https=BoundedHTTPSConnectionPool)
    return client
