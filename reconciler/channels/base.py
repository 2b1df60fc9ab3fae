"""The channel contract: what the engine hands a channel, what it gets back, and how errors are
classified (SPEC 6.8).

The engine decides retries, pair-rate delays and circuit breaking from `ChannelError.kind` alone;
channels never retry by themselves. A hidden retry inside a channel would be a second send the
database never recorded, which is exactly what SPEC 6.5 forbids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, Protocol, runtime_checkable

import aiohttp

from reconciler.channels.http1 import InvalidURL

ErrorKind = Literal["retryable", "pair_rate", "permanent", "circuit"]

# WhatsApp asks for roughly one message per 6 s to the same user (FACTS.md, "Pair rate").
PAIR_RATE_RETRY_AFTER: Final = 6.0


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one recipient, built by the flow runner from a send node."""

    idempotency_key: str  # "<recipient_id>:<node>": stable per (recipient, flow step)
    to: str  # E.164, e.g. "+5511999990001"
    kind: Literal["text", "template"]
    text: str | None = None
    template: str | None = None
    language: str | None = None
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelError:
    """Why a send failed, reduced to what the engine acts on.

    `code` is the API's `error.code` as a string ("131056"), or for failures without one
    "http_<status>", "timeout", "connection", "invalid_url", "bad_response", "client_error".
    """

    code: str
    kind: ErrorKind
    message: str
    retry_after: float | None = None  # seconds to wait at least before retrying this recipient


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    message_id: str | None  # the API's message id (wamid...) on success
    error: ChannelError | None

    @classmethod
    def success(cls, message_id: str) -> SendResult:
        return cls(True, message_id, None)

    @classmethod
    def failure(cls, error: ChannelError) -> SendResult:
        return cls(False, None, error)


@runtime_checkable
class Channel(Protocol):
    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message; the caller bounds how many it keeps in flight. Never raises for a
        failed send."""
        ...

    async def send_many(
        self, messages: Sequence[OutgoingMessage], *, concurrency: int
    ) -> list[SendResult]:
        """Send every message, at most `concurrency` at a time; results in input order.

        Never raises for a failed send: each failure is a `SendResult` with its `ChannelError`.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: ErrorKind
    summary: str
    retry_after: float | None = None


def _r(summary: str) -> _Rule:
    return _Rule("retryable", summary)


def _p(summary: str) -> _Rule:
    return _Rule("permanent", summary)


def _c(summary: str) -> _Rule:
    return _Rule("circuit", summary)


# The one classification table, keyed by `ChannelError.code`. Graph `error.code`s come first
# when the response carries one; the "http_*" rows apply only to bodies without a code (a proxy
# or load balancer answering), and the transport rows to requests that got no response at all.
#
# Kinds, and why:
# - retryable: transient on Meta's side or ours; retry with backoff (SPEC 6.8). Timeouts and
#   dropped connections are here although the message MAY have been accepted: the engine's
#   sending guard (SPEC 6.5) decides whether a retry is allowed, not the channel.
# - pair_rate: too many messages to this one user; retry that recipient alone after >= 6 s.
# - permanent: this message to this recipient will not succeed by retrying; fail it with the code.
#   131049 (per-user marketing cap) is here although Meta suggests retrying after 12-48 h: a
#   campaign moment is gone by then, so the recipient fails with a code an operator can see.
# - circuit: every further send from this number (or with this token) fails or hurts the number's
#   quality rating, so the Channel stops and nothing is lost until an operator resumes it.
#   Failing such errors per recipient would burn a whole audience on one expired token.
#
# Codes named by FACTS.md/SPEC.md are the contract; the others are from Meta's Cloud API error
# reference, kept so that a known code is never classified by its HTTP status alone.
RULES: Final[Mapping[str, _Rule]] = MappingProxyType(
    {
        # -- no response -------------------------------------------------------------------
        "timeout": _r("no response within the timeout (the message may have been accepted)"),
        "connection": _r("connection failed or dropped (the message may have been accepted)"),
        "invalid_url": _c("the channel's api_base_url is not a usable URL"),
        "bad_response": _r("success status without a message id in the body"),
        "client_error": _p("the request could not be made"),
        # -- HTTP status, when the body has no Graph error code ---------------------------------
        "http_401": _c("HTTP 401: the access token was rejected"),
        "http_403": _c("HTTP 403: the access token lacks permission"),
        "http_429": _r("HTTP 429: too many requests"),
        "http_5xx": _r("server error"),
        "http_4xx": _p("request rejected"),
        # -- Graph / Cloud API error.code ------------------------------------------------------
        "0": _c("authentication failed"),
        "1": _r("unknown API error"),
        "2": _r("API service temporarily unavailable"),
        "4": _r("application request limit reached"),
        "10": _c("permission denied"),
        "100": _p("invalid parameter"),
        "190": _c("access token expired or invalid"),
        "200": _c("API permission missing"),
        "368": _c("number temporarily blocked for policy violations"),
        "80007": _r("WhatsApp Business Account rate limit"),
        "130429": _r("throughput limit of the number reached"),
        "131000": _r("something went wrong on Meta's side"),
        "131005": _c("access denied"),
        "131008": _p("required parameter missing"),
        "131009": _p("parameter value not valid"),
        "131016": _r("service temporarily unavailable"),
        "131021": _p("recipient cannot be the sender"),
        "131026": _p("message undeliverable to this recipient"),
        "131030": _p("recipient not in the allowed list (test number)"),
        "131031": _c("business account locked"),
        "131042": _c("business eligibility / payment issue"),
        "131045": _c("phone number certificate problem"),
        "131047": _p("re-engagement required: more than 24 h since the user last replied"),
        "131048": _c("spam rate limit: messages from this number are being restricted"),
        "131049": _p("per-user marketing message cap reached"),
        "131050": _p("recipient stopped marketing messages"),
        "131051": _p("unsupported message type"),
        "131056": _Rule("pair_rate", "pair rate limit: too many messages to this recipient",
                        PAIR_RATE_RETRY_AFTER),
        "132000": _p("template parameter count mismatch"),
        "132001": _p("template does not exist in this language"),
        "132005": _p("template text too long after parameters"),
        "132007": _p("template format character policy violated"),
        "132012": _p("template parameter format mismatch"),
        "132015": _p("template paused"),
        "132016": _p("template disabled"),
        # 133010 is the *business* number not registered with the Cloud API (the 1330xx
        # registration family), not the recipient (that is 131026): nothing can be sent from it.
        "133010": _c("business phone number not registered"),
    }
)


def classify(
    http_status: int | None,
    api_code: int | None,
    exc: BaseException | None,
    *,
    detail: str = "",
    retry_after: float | None = None,
) -> ChannelError:
    """Map a failed send to a `ChannelError` via `RULES`.

    Precedence: an exception (no response), then the Graph `error.code`, then the HTTP status.
    Unknown codes fall back to their HTTP status class (5xx retryable, 401/403 circuit, other
    4xx permanent) but keep their own code, so an operator still sees "131999". `detail` is
    appended to the message (API text, never titles for decisions); `retry_after` is a server
    hint (Retry-After) that can only lengthen the table's minimum.
    """
    code, key = _code_and_key(http_status, api_code, exc)
    rule = RULES[key]
    hint = retry_after if rule.kind in ("retryable", "pair_rate") else None
    wait = max((v for v in (rule.retry_after, hint) if v is not None), default=None)
    message = rule.summary
    if key != code:
        message = f"{message} (code {code})"
    if detail:
        message = f"{message}: {detail}"
    return ChannelError(code, rule.kind, message, wait)


def _code_and_key(
    http_status: int | None, api_code: int | None, exc: BaseException | None
) -> tuple[str, str]:
    if exc is not None:
        return (key := _exception_key(exc)), key
    if api_code is not None and str(api_code) in RULES:
        return str(api_code), str(api_code)
    code = str(api_code) if api_code is not None else f"http_{http_status}"
    if http_status is None or 200 <= http_status < 300:
        return ("bad_response" if api_code is None else code), "bad_response"
    if f"http_{http_status}" in RULES:
        return code, f"http_{http_status}"
    return code, "http_5xx" if http_status >= 500 else "http_4xx"


def _exception_key(exc: BaseException) -> str:
    # TimeoutError first: it is an OSError, and aiohttp's ServerTimeoutError is both.
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.InvalidURL | InvalidURL):
        return "invalid_url"
    if isinstance(exc, OSError | aiohttp.ClientError):
        return "connection"
    return "client_error"

