"""Render the offline agents' text from their Jinja2 templates under prompts/.

A template defines one `{% block %}` per field (e.g. `motivation`, `plan`); Python passes
typed facts and never composes prose itself. List fields are rendered one item per line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.prompting import template_environment
from prompts import PROMPTS_DIR


def render_blocks(template_name: str, blocks: tuple[str, ...], directory: Path = PROMPTS_DIR,
                  **context: Any) -> dict[str, str]:
    """Each named block of the template rendered with `context`, whitespace-trimmed."""
    template = template_environment(directory).get_template(template_name)
    missing = [name for name in blocks if name not in template.blocks]
    if missing:
        raise ValueError(f"template {directory / template_name} must define blocks {list(blocks)}; missing {missing}")
    render_context = template.new_context(context)
    return {name: _squeeze("".join(template.blocks[name](render_context))) for name in blocks}


def as_lines(text: str) -> list[str]:
    """A list field from its rendered block: one item per non-empty line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _squeeze(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    squeezed: list[str] = []
    for line in lines:
        if line or (squeezed and squeezed[-1]):
            squeezed.append(line)
    return "\n".join(squeezed)
