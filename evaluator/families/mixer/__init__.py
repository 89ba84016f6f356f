"""Family `mixer`: the contract text and the static rules derived from it."""
from __future__ import annotations

from pathlib import Path

CLASS_NAME = "Mixer"
ALLOWED_IMPORTS = frozenset({"torch", "math", "typing", "functools", "dataclasses", "einops", "__future__"})


def contract_text() -> str:
    """The contract as shown to people and included verbatim in the agents' prompts."""
    return (Path(__file__).with_name("CONTRACT.md")).read_text()
