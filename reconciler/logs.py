"""Logging for the long-running processes (`serve`, `worker`): text for people, JSON for machines.

`--log-format json` writes one JSON object per line on stderr, so a log shipper (Loki, Cloud
Logging, Datadog) indexes fields instead of parsing prose. Fields passed with
`logger.info("...", extra={"execution_id": 7})` become top-level keys in both formats.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's terminal-colour copy
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _timestamp(record: logging.LogRecord) -> str:
    # time.strftime, not datetime's: records emitted while the interpreter shuts down (an
    # aiohttp session's __del__) must still format.
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, the extras, and exc on errors."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(_extras(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2026-11-25T09:00:00.123Z info  flowspec.serve  message key=value ...`"""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{_timestamp(record)} {record.levelname.lower():<7} {record.name}  {record.getMessage()}"
        if extras:
            line += "  " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(fmt: LogFormat = "text", *, level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route every logger (ours, Huey's, uvicorn's) to one handler in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn installs its own handlers when given a log config; we give it none and let its
    # records propagate here so they share the format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "huey", "huey.consumer"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # Migrations run on first use; their step-by-step chatter is not the service's news.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
