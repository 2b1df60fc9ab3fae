"""Failed sends: backoff with jitter, pair rate, permanent failures, circuit, and the guarantee."""

from __future__ import annotations

import random
import socket

import pytest

from flowspec import models
from reconciler.channels import ChannelError, classify
from reconciler.engine.retry import backoff, decide, outcome_unknown

RETRY = models.Retry(max_attempts=5, initial_delay="30s", max_delay="10m", multiplier=2.0, jitter="none")


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """Without jitter: 30 s, 60 s, 120 s ... capped at max_delay."""
    rng = random.Random(1)
    assert [backoff(RETRY, k, rng) for k in (1, 2, 3, 4, 5, 6, 50, 5000)] == [
        30, 60, 120, 240, 480, 600, 600, 600]


def test_full_jitter_stays_within_the_delay_and_is_reproducible_with_a_seed() -> None:
    """Full jitter draws uniformly in [0, delay]; the same seed gives the same delays."""
    full = RETRY.model_copy(update={"jitter": "full"})
    a = [backoff(full, k, random.Random(3)) for k in range(1, 8)]
    b = [backoff(full, k, random.Random(3)) for k in range(1, 8)]
    assert a == b
    assert all(0 <= d <= min(600, 30 * 2 ** (k - 1)) for k, d in zip(range(1, 8), a, strict=True))
    equal = RETRY.model_copy(update={"jitter": "equal"})
    assert all(15 <= backoff(equal, 1, random.Random(s)) <= 30 for s in range(20))


def err(code: int | None = None, *, http: int | None = None, exc: BaseException | None = None) -> ChannelError:
    return classify(http, code, exc)


@pytest.mark.parametrize("code", [130429, 131000])
def test_retryable_errors_retry_until_max_attempts_then_fail_with_the_code(code: int) -> None:
    """Throughput 130429 and 5xx answers are retried with backoff; the 5th attempt fails."""
    rng = random.Random(0)
    d = decide(err(code, http=400 if code == 130429 else 500), attempt=1, retry=RETRY,
               guarantee="at_most_once", rng=rng)
    assert d.verdict == "retry" and d.delay == 30
    last = decide(err(code, http=400), attempt=5, retry=RETRY, guarantee="at_most_once", rng=rng)
    assert last.verdict == "fail" and last.code == str(code)


def test_pair_rate_waits_at_least_six_seconds() -> None:
    """131056 retries that recipient after at least 6 s (the server's hint may lengthen it)."""
    d = decide(err(131056, http=400), attempt=1, retry=RETRY, guarantee="at_most_once",
               rng=random.Random(0))
    assert d.verdict == "retry" and d.delay >= 6


@pytest.mark.parametrize("code", [131026, 132001, 131047, 100])
def test_permanent_errors_fail_at_once(code: int) -> None:
    """Undeliverable, missing template, re-engagement and bad parameters fail on the first try."""
    d = decide(err(code, http=400), attempt=1, retry=RETRY, guarantee="at_least_once",
               rng=random.Random(0))
    assert d.verdict == "fail" and d.code == str(code)


@pytest.mark.parametrize("code", [131048, 190])
def test_stop_sending_errors_open_the_circuit(code: int) -> None:
    """Spam-rate limit and an expired token mean "stop sending from this number"."""
    d = decide(err(code, http=400), attempt=1, retry=RETRY, guarantee="at_most_once",
               rng=random.Random(0))
    assert d.verdict == "circuit"


def test_a_timeout_is_unknown_under_at_most_once_and_retried_under_at_least_once() -> None:
    """The API may have accepted a timed-out request: at_most_once never re-sends it."""
    timeout = err(exc=TimeoutError())
    assert outcome_unknown(timeout)
    assert decide(timeout, attempt=1, retry=RETRY, guarantee="at_most_once",
                  rng=random.Random(0)).verdict == "unknown"
    assert decide(timeout, attempt=1, retry=RETRY, guarantee="at_least_once",
                  rng=random.Random(0)).verdict == "retry"


def test_a_connection_never_established_is_retried_under_both_guarantees() -> None:
    """Connection refused (as the real channel reports it): nothing was sent, so even
    at_most_once retries; a connection dropped after the request is an unknown outcome."""
    import aiohttp

    from reconciler.channels import OutgoingMessage, WhatsAppCloudChannel

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = WhatsAppCloudChannel(f"http://127.0.0.1:{port}/v21.0", "1", "token-123456")
    [result] = channel.send_many_sync([OutgoingMessage("1:0", "+5511900000000", "text", text="hi")])
    assert result.error is not None and result.error.code == "connection"
    refused = result.error
    assert not outcome_unknown(refused)
    assert decide(refused, attempt=1, retry=RETRY, guarantee="at_most_once",
                  rng=random.Random(0)).verdict == "retry"
    exc = aiohttp.ServerDisconnectedError()
    dropped = classify(None, None, exc, detail=f"{type(exc).__name__}: {exc}")
    assert outcome_unknown(dropped)
