"""A token bucket: how much unsolicited traffic one member (or one origin) may send.

Owns the rate arithmetic; time is passed in, so it is tested without sleeping.
Pure.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, now_s: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now_s

    def allow(self, now_s: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are enough; False (nothing taken) if not."""
        self._refill(now_s)
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True

    def left(self, now_s: float) -> float:
        """Tokens saved up now (nothing taken)."""
        self._refill(now_s)
        return self._tokens

    def charge(self, now_s: float, cost: float) -> None:
        """Take `cost` tokens after the fact (down to none): for what turned out costly."""
        self._refill(now_s)
        self._tokens = max(0.0, self._tokens - cost)

    def refund(self, now_s: float, amount: float) -> None:
        """Give back tokens taken for what turned out to cost nothing (up to `burst`)."""
        self._refill(now_s)
        self._tokens = min(self.burst, self._tokens + amount)

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._at)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._at = max(self._at, now_s)
