"""The cognition base: curated design knowledge as Markdown files in `knowledge/cognition/`.

Each file is one entry: a front matter block (title, source, tags) and four sections saying
what problem an idea addresses, when to try it, how it is built and what goes wrong. Entries
become insights (source "cognition") stored in the archive, so a rebuilt vector store still
has them, and indexed in the vector store for retrieval.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.records import Insight

if TYPE_CHECKING:
    from knowledge.archive import Archive
    from knowledge.vectors import VectorStore

COGNITION_DIR = Path(__file__).resolve().parent / "cognition"
SOURCE = "cognition"
FIELDS = ("title", "source", "tags")
SECTIONS = ("Problem", "When to try", "How it is built", "Pitfalls")
_HEADING = re.compile(r"^## (.+?)\s*$", re.MULTILINE)


class CognitionFormatError(ValueError):
    """An entry does not follow the format; the message names the file and what to fix."""


@dataclass(frozen=True)
class CognitionEntry:
    slug: str                        # the file name without .md, unique
    title: str
    source: str                      # paper(s) and year
    tags: tuple[str, ...]
    problem: str
    when_to_try: str
    how_built: str
    pitfalls: str

    @property
    def insight_id(self) -> str:
        return f"{SOURCE}:{self.slug}"

    def to_insight(self) -> Insight:
        """Problem and when-to-try come first: they are what a query describes, and the
        embedding model reads only the first ~256 word pieces."""
        text = (f"Problem: {self.problem}\n\nWhen to try: {self.when_to_try}\n\n"
                f"How it is built: {self.how_built}\n\nPitfalls: {self.pitfalls}")
        return Insight(id=self.insight_id, title=self.title, text=text, source=SOURCE,
                       metadata={"paper": self.source, "tags": list(self.tags), "file": f"{self.slug}.md"})


def _front_matter(path: Path, text: str) -> tuple[dict[str, str], str]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise CognitionFormatError(f"{path}: must start with a front matter block: a '---' line, "
                                   "then 'title: ...', 'source: ...', 'tags: a, b', then '---'")
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise CognitionFormatError(f"{path}: the front matter block is not closed by a '---' line") from None
    fields = {}
    for number, line in enumerate(lines[1:end], start=2):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise CognitionFormatError(f"{path}:{number}: front matter lines are 'key: value', got {line!r}")
        fields[key.strip()] = value.strip()
    missing = [f for f in FIELDS if not fields.get(f)]
    if missing:
        raise CognitionFormatError(f"{path}: front matter lacks {', '.join(missing)} (needs {', '.join(FIELDS)})")
    return fields, "\n".join(lines[end + 1:])


def _sections(path: Path, body: str) -> dict[str, str]:
    headings = list(_HEADING.finditer(body))
    if body[:headings[0].start() if headings else len(body)].strip():
        raise CognitionFormatError(f"{path}: text before the first '## ' section; put it in a section")
    sections: dict[str, str] = {}
    for heading, following in zip(headings, headings[1:] + [None]):
        name = heading.group(1)
        if name not in SECTIONS:
            raise CognitionFormatError(f"{path}: unknown section '## {name}' (sections: {', '.join(SECTIONS)})")
        if name in sections:
            raise CognitionFormatError(f"{path}: section '## {name}' appears twice")
        sections[name] = body[heading.end():following.start() if following else len(body)].strip()
    for name in SECTIONS:
        if name not in sections:
            raise CognitionFormatError(f"{path}: missing section '## {name}' "
                                       f"(each entry needs {', '.join('## ' + s for s in SECTIONS)})")
        if not sections[name]:
            raise CognitionFormatError(f"{path}: section '## {name}' is empty")
    return sections


def load_entry(path: Path) -> CognitionEntry:
    fields, body = _front_matter(path, path.read_text(encoding="utf-8"))
    sections = _sections(path, body)
    tags = tuple(tag.strip() for tag in fields["tags"].split(",") if tag.strip())
    return CognitionEntry(slug=path.stem, title=fields["title"], source=fields["source"], tags=tags,
                          problem=sections["Problem"], when_to_try=sections["When to try"],
                          how_built=sections["How it is built"], pitfalls=sections["Pitfalls"])


def load_cognition_base(directory: Path = COGNITION_DIR) -> list[CognitionEntry]:
    """Every entry of the directory, sorted by file name; the first malformed file raises."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no cognition base at {directory}")
    return [load_entry(path) for path in sorted(directory.glob("*.md"))]


def index_cognition_base(archive: Archive, store: VectorStore, directory: Path = COGNITION_DIR) -> int:
    """Store the entries as insights and index them; idempotent and cheap when nothing changed.

    Entries whose file was removed are dropped from both. Returns the number of entries.
    """
    insights = [entry.to_insight() for entry in load_cognition_base(directory)]
    current = {ins.id for ins in insights}
    gone = [ins.id for ins in archive.insights(source=SOURCE) if ins.id not in current]
    archive.add_insights(insights)
    archive.delete_insights(gone)
    store.index_insights(insights)
    store.delete_insights(gone)
    return len(insights)
