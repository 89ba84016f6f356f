"""How a run stops: Ctrl-C sets one shared event; a step that sees it raises StopRequested.

In its own module so that low-level parts (the LLM client's backoff) can stop promptly
without importing the loop.
"""
from __future__ import annotations


class StopRequested(Exception):
    """The run is stopping (Ctrl-C or budget): the step in flight is abandoned, not recorded as failed."""
