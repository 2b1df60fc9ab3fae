"""State names (docs/engine.md, "Tables"): one place, the spec's words verbatim, for the
engine that writes them and for every reader (status, executions, progress, dashboard,
metrics). A leaf module outside `reconciler.engine`, so a reader does not import the engine."""

from __future__ import annotations

from typing import Final

# occurrences.status values the engine writes (apply owns pending | paused | inactive | cancelled)
OCC_PENDING: Final = "pending"
OCC_DISPATCHED: Final = "dispatched"
OCC_MISSED: Final = "missed"
OCC_SKIPPED_OVERLAP: Final = "skipped_overlap"
OCC_QUEUED: Final = "queued"

# occurrences.reason for the engine's own decisions
REASON_CATCHUP: Final = "catchup_window"  # more than catchup_window late (SPEC 6.2)
REASON_COALESCED: Final = "coalesced"  # a later occurrence of the same automation ran instead
REASON_OVERLAP: Final = "overlap"

# executions.status
EX_STARTING: Final = "starting"  # created by dispatch; fan-out not done
EX_RUNNING: Final = "running"
EX_WAITING_WINDOW: Final = "waiting_window"  # window closed or day blocked; resume_at set
EX_PAUSED_CIRCUIT: Final = "paused_circuit"  # the channel's breaker is open
EX_FINISHED: Final = "finished"  # every recipient terminal; stats final
EX_FAILED: Final = "failed"  # could not start at all (flow or channel missing); reason set
EX_ACTIVE: Final = (EX_STARTING, EX_RUNNING, EX_WAITING_WINDOW, EX_PAUSED_CIRCUIT)
EX_FANNED_OUT: Final = (EX_RUNNING, EX_WAITING_WINDOW, EX_PAUSED_CIRCUIT)
# An execution's stats columns hold its numbers (written by the fan-in, SPEC 6.9).
EX_FINAL: Final = (EX_FINISHED, EX_FAILED)

# recipients.status
R_PENDING: Final = "pending"
R_SENDING: Final = "sending"
R_SENT: Final = "sent"
R_DELIVERED: Final = "delivered"
R_READ: Final = "read"
R_COMPLETED: Final = "completed"
R_FAILED: Final = "failed"
R_UNKNOWN: Final = "unknown"
R_TERMINAL: Final = (R_COMPLETED, R_FAILED, R_UNKNOWN)
# How progress counts a recipient: sent once a message was accepted, failed when it ended so.
R_COUNTED_SENT: Final = (R_SENT, R_DELIVERED, R_READ, R_COMPLETED)
R_COUNTED_FAILED: Final = (R_FAILED, R_UNKNOWN)
# A recipient may be claimed in these when it has a current_node and next_attempt_at <= now.
R_CLAIMABLE: Final = (R_PENDING, R_SENT, R_DELIVERED, R_READ)

# messages.status
M_SENDING: Final = "sending"
M_SENT: Final = "sent"
M_FAILED: Final = "failed"
M_ACCEPTED: Final = ("sent", "delivered", "read")

# channel_circuits.state
CIRCUIT_OPEN: Final = "open"
CIRCUIT_CLOSED: Final = "closed"

# error codes the engine itself records
CODE_LEASE_EXPIRED: Final = "lease_expired"  # the worker died mid-send (SPEC 6.5)
CODE_NO_PHONE: Final = "no_phone"
CODE_UNKNOWN_CONTACT: Final = "unknown_contact"
