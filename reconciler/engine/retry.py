"""What to do with a failed send (SPEC 6.8), decided from the channel's classification alone.

- retryable (timeouts, 5xx, 429, 130429): back off exponentially with jitter, up to
  `retry.max_attempts` attempts of that step; then fail with the last code;
- pair_rate (131056): that recipient alone, again after at least 6 s (or the server's hint);
- permanent: fail now, with the code;
- circuit (131048, 190, ...): the send was refused and nothing was delivered: the recipient stays
  claimable and the channel's breaker opens (reconciler.engine.breaker).

The sending guarantee (SPEC 6.5) has the last word on errors whose outcome is unknown: a timeout
or a connection dropped after the request went out may have been accepted by the API. Under
`at_most_once` such a recipient becomes `unknown` and is never sent again; `at_least_once`
retries it. A connection that was never established (nothing sent) is retried under both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from flowspec import models, timeparse
from reconciler.channels import PAIR_RATE_RETRY_AFTER, ChannelError

Verdict = Literal["retry", "fail", "unknown", "circuit"]

# A connection that never came up (refused, DNS, TLS handshake), as the channel's client
# (reconciler.channels.http1.NotConnected) and aiohttp name it: the request was not sent, so a
# retry cannot duplicate a message.
_NOT_SENT_MARKERS = ("NotConnected", "ClientConnectorError", "ClientConnectorDNSError",
                     "Cannot connect to host")


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0  # seconds until the recipient may be claimed again (retry)
    code: str | None = None
    message: str | None = None


def backoff(retry: models.Retry, failures: int, rng: random.Random) -> float:
    """Delay before the attempt after `failures` failed ones: initial * multiplier^(failures-1),
    capped at max_delay, then jittered (full: uniform in [0, d]; equal: d/2 + uniform(0, d/2))."""
    initial = timeparse.parse_duration(retry.initial_delay).total_seconds()
    cap = timeparse.parse_duration(retry.max_delay).total_seconds()
    exponent = max(0, failures - 1)
    # multiplier ** exponent overflows a float long before it matters; the cap wins anyway.
    delay = cap if exponent > 1000 else min(cap, initial * retry.multiplier**exponent)
    if retry.jitter == "full":
        return rng.uniform(0.0, delay)
    if retry.jitter == "equal":
        return delay / 2 + rng.uniform(0.0, delay / 2)
    return delay


def outcome_unknown(error: ChannelError) -> bool:
    """Whether the API may have accepted the message although the call failed."""
    if error.code == "timeout":
        return True
    if error.code == "connection":
        return not any(marker in error.message for marker in _NOT_SENT_MARKERS)
    return False


def decide(
    error: ChannelError,
    *,
    attempt: int,
    retry: models.Retry,
    guarantee: str,
    rng: random.Random,
) -> Decision:
    """The verdict for a failed attempt number `attempt` (1 = the first) of one flow step."""
    if error.kind == "circuit":
        return Decision("circuit", code=error.code, message=error.message)
    if error.kind == "permanent":
        return Decision("fail", code=error.code, message=error.message)
    if guarantee == "at_most_once" and outcome_unknown(error):
        return Decision("unknown", code=error.code, message=error.message)
    if attempt >= retry.max_attempts:
        return Decision("fail", code=error.code, message=f"{error.message} (after {attempt} attempts)")
    if error.kind == "pair_rate":
        wait = max(PAIR_RATE_RETRY_AFTER, error.retry_after or 0.0)
        return Decision("retry", wait, error.code, error.message)
    delay = max(backoff(retry, attempt, rng), error.retry_after or 0.0)
    return Decision("retry", delay, error.code, error.message)
