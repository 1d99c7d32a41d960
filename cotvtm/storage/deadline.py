"""Deadlines for S3 calls, enforced from outside the socket.

botocore's ``read_timeout`` bounds each socket read, not a request: a server, proxy or
half-dead connection that trickles a byte now and then keeps a call alive forever. And
botocore's ``Expect: 100-continue`` handling spins at 100% of a core when a connection closes
right after the ``100 Continue`` status line (``AWSConnection._consume_headers`` reads lines
until a blank one; at EOF each read returns b'' at once, and no timeout applies).

A client given to ``watch`` therefore:

- never sends ``Expect: 100-continue``: the header is dropped just before each send (it is not
  part of the SigV4 signature), so botocore sends the body at once and never enters that loop;
- makes every request inside a ``Call`` (``with bounded(uri, seconds, attempt_s):``). One
  watchdog thread enforces its bounds by shutting down the sockets of its connections, which
  makes a blocked read or write fail at once: an HTTP attempt older than ``attempt_s`` is cut
  and botocore retries it on a fresh connection; once the whole call is older than ``seconds``
  its attempts are cut, its retries refused, and it fails with ``DeadlineExceeded``.

A call reaches the threads it starts (a transfer manager's, parallel ranged reads) through
``contextvars``: ``ContextExecutor`` runs each task in a copy of its submitter's context.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)

from cotvtm.storage.errors import DeadlineExceeded

log = logging.getLogger(__name__)

CLEANUP_S = 30.0
"""After a call's deadline, how long the abort of its multipart upload may still take: parts
left behind are billed until a lifecycle rule removes them."""

_current: ContextVar[Call | None] = ContextVar("cotvtm_s3_call", default=None)


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
    """One S3 call's bounds, and the connections its attempts are using."""

    def __init__(self, uri: str, seconds: float, attempt_s: float):
        self.uri, self.seconds, self.attempt_s = uri, seconds, min(attempt_s, seconds)
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._attempts: dict[int, tuple[object, list]] = {}  # id(connection) -> (connection, timer)
        self._timer = WATCHDOG.at(self.deadline, self._expire)

    def allow(self, seconds: float) -> None:
        """Push the deadline back: the call turned out to move more data than it was sized for."""
        with self._lock:
            if self.expired or seconds <= 0:
                return
            WATCHDOG.cancel(self._timer)
            self.seconds += seconds
            self.deadline += seconds
            self._timer = WATCHDOG.at(self.deadline, self._expire)

    def attach(self, connection) -> None:
        """``connection`` starts an HTTP attempt of this call: bound it by ``attempt_s``."""
        token = object()
        limit = self.deadline + (CLEANUP_S if self.expired else 0.0)
        with self._lock:
            previous = self._attempts.pop(id(connection), None)
            if previous is not None:
                WATCHDOG.cancel(previous[1])
            connection.call, connection.attempt = self, token
            timer = WATCHDOG.at(min(time.monotonic() + self.attempt_s, limit),
                                lambda: self._cut_attempt(connection, token))
            self._attempts[id(connection)] = (connection, timer)

    def _cut_attempt(self, connection, token: object) -> None:
        if connection.attempt is token:  # not since reused by another attempt or call
            _cut(connection)

    def _expire(self) -> None:
        with self._lock:
            if time.monotonic() < self.deadline:  # pushed back while this timer was already due
                return
            self.expired = True
            connections = [connection for connection, _ in self._attempts.values()]
        for connection in connections:
            if connection.call is self:
                _cut(connection)

    def refuse(self, operation: str) -> None:
        """Before each send: once expired only the abort of a multipart upload may go, briefly."""
        if self.expired and not (operation == "AbortMultipartUpload"
                                 and time.monotonic() < self.deadline + CLEANUP_S):
            raise self.error()

    def error(self) -> DeadlineExceeded:
        return DeadlineExceeded(self.uri, f"S3 call not finished within its deadline of {round(self.seconds, 1):g} s "
                                          f"(each attempt cut after {round(self.attempt_s, 1):g} s): the server "
                                          "or the network stalled; run again")

    def close(self) -> None:
        with self._lock:
            WATCHDOG.cancel(self._timer)
            for _, timer in self._attempts.values():
                WATCHDOG.cancel(timer)
            self._attempts.clear()


@contextmanager
def bounded(uri: str, seconds: float, attempt_s: float | None = None):
    """Run the S3 requests made inside the block (in this thread, and in threads started through
    ``ContextExecutor``) under one ``Call``. Whatever fails once the deadline has passed fails as
    ``DeadlineExceeded``."""
    call = Call(uri, seconds, attempt_s if attempt_s is not None else seconds)
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


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitting thread's context, so that
    they stay under the ``Call`` that started them."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(copy_context().run, fn, *args, **kwargs)


class _Bounded:
    """A botocore connection whose every request is attached to the current ``Call``."""

    call: Call | None = None
    attempt: object | None = None

    def request(self, method, url, body=None, headers=None, *args, **kwargs):
        call = _current.get()
        if call is not None:
            call.attach(self)
        return super().request(method, url, body, headers, *args, **kwargs)


class BoundedHTTPConnection(_Bounded, AWSHTTPConnection):
    pass


class BoundedHTTPSConnection(_Bounded, AWSHTTPSConnection):
    pass


class BoundedHTTPConnectionPool(AWSHTTPConnectionPool):
    ConnectionCls = BoundedHTTPConnection


class BoundedHTTPSConnectionPool(AWSHTTPSConnectionPool):
    ConnectionCls = BoundedHTTPSConnection


def _before_send(request, event_name: str = "", **kwargs) -> None:
    """The last look at a signed request: drop the Expect header; refuse once the call expired."""
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
