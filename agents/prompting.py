"""Render the Jinja2 templates under prompts/ into chat messages.

A role's template defines `{% block system %}` and `{% block user %}`; Python only passes
typed context. StrictUndefined turns a missing or misspelt field into an error instead of
a silently empty prompt.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from prompts import PROMPTS_DIR

MESSAGE_BLOCKS = ("system", "user")


def template_environment(directory: Path) -> jinja2.Environment:
    """Plain-text templates: no autoescaping, block tags leave no blank lines, and a missing or
    misspelt field is an error rather than an empty string."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(directory), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


class PromptError(Exception):
    """A template could not be rendered from the context given (missing field, syntax error)."""


class Prompts:
    """The templates of one directory (the project's prompts/ unless a user points elsewhere)."""

    def __init__(self, directory: Path = PROMPTS_DIR) -> None:
        if not directory.is_dir():
            raise PromptError(f"prompt directory {directory} does not exist")
        self.directory = directory
        self._env = template_environment(directory)

    def messages(self, template: str, **context: Any) -> list[dict[str, str]]:
        """Chat messages from the template's `system` and `user` blocks."""
        loaded = self._load(template)
        missing = [name for name in MESSAGE_BLOCKS if name not in loaded.blocks]
        if missing:
            raise PromptError(f"template {template} must define blocks {list(MESSAGE_BLOCKS)}; missing {missing}")
        render_context = loaded.new_context(context)
        try:
            return [
                {"role": name, "content": "".join(loaded.blocks[name](render_context)).strip() + "\n"}
                for name in MESSAGE_BLOCKS
            ]
        except jinja2.UndefinedError as error:
            raise PromptError(f"template {template}: {error} (the context passed lacks this field)") from error

    def text(self, template: str, **context: Any) -> str:
        """A whole template as one text (for a single follow-up message)."""
        try:
            return self._load(template).render(**context).strip() + "\n"
        except jinja2.UndefinedError as error:
            raise PromptError(f"template {template}: {error} (the context passed lacks this field)") from error

    def _load(self, template: str) -> jinja2.Template:
        try:
            return self._env.get_template(template)
        except jinja2.TemplateNotFound as error:
            raise PromptError(f"no template {template} in {self.directory}") from error
        except jinja2.TemplateSyntaxError as error:
            raise PromptError(f"template {template}, line {error.lineno}: {error.message}") from error
