"""The supervised trading bot and the paper exchange it trades on offline."""
from __future__ import annotations

__version__ = "0.1.0"
