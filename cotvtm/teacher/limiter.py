"""Requests-per-minute and tokens-per-minute limits, as token buckets.

Each bucket holds at most one second's worth of its budget (at least one request), so
requests are paced evenly instead of bursting a minute's quota at once: providers enforce
their per-minute limits over shorter windows too. A request larger than the bucket (a
big prompt under a small TPM) waits for a full bucket and then drives it negative, which
delays the requests after it by exactly its excess.

Tokens are estimated before the call (prompt characters / 4 + the completion limit, as
providers count it) and corrected with the real usage afterwards (``settle``).
"""

import asyncio
import time


class Bucket:
    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` (or a full bucket, if it is larger) is available."""
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate


class RateLimiter:
    """Blocks until a request of ``tokens`` fits both limits; either limit may be off (None)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.requests = Bucket(rpm) if rpm else None
        self.tokens = Bucket(tpm) if tpm else None
        self._lock: asyncio.Lock | None = None
        self.waited_s = 0.0

    async def acquire(self, tokens: float) -> None:
        if self.requests is None and self.tokens is None:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # first come, first served
            while True:
                now = time.monotonic()
                delay = 0.0
                for bucket, amount in ((self.requests, 1.0), (self.tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now)
                        delay = max(delay, bucket.wait(amount))
                if delay <= 0:
                    break
                self.waited_s += delay
                await asyncio.sleep(delay)
            if self.requests is not None:
                self.requests.level -= 1.0
            if self.tokens is not None:
                self.tokens.level -= tokens

    def settle(self, estimated: float, actual: float) -> None:
        """Give back (or take) the difference between the estimate and the real token count."""
        if self.tokens is not None:
            self.tokens.level = min(self.tokens.capacity, self.tokens.level + estimated - actual)


IMAGE_TOKENS = 85  # an image part sent at low detail, as OpenAI counts it


def estimate_tokens(messages: list[dict], max_tokens: int) -> int:
    """Prompt characters / 4 (an image part: ``IMAGE_TOKENS``) plus the completion limit: what
    rate limiters count up front."""
    total = 0
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, str):
            total += len(content) // 4
            continue
        for part in content:  # content parts: text and images
            total += len(part.get("text", "")) // 4 if part.get("type") == "text" else IMAGE_TOKENS
    return total + max(max_tokens, 0)
