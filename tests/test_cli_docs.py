"""The project's docs/: the configuration reference is generated (so it cannot drift) and every
link inside docs/ points at a file of the repository."""
from __future__ import annotations

import re
from pathlib import Path

from archlab.config_doc import render, undocumented

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_configuration_reference_matches_the_typed_config():
    assert not undocumented(), f"give these keys a trailing comment or a Field description: {undocumented()}"
    committed = (DOCS / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: run `archlab config-doc > docs/configuration.md`"


def test_docs_links_resolve_inside_the_repository():
    for page in DOCS.glob("*.md"):
        text = page.read_text()
        assert "DESIGN.md" not in text, f"{page.name} points outside the repository"
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert (page.parent / target).resolve().exists(), f"{page.name}: broken link {target}"
