"""flowspec: declarative scheduled WhatsApp campaign automations, compiled from YAML.

Public API: load a config root, validate it, compile a plan. Everything else is internal.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
