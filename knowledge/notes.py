"""A user's own notes and papers (`archlab knowledge add PATH`) as searchable insights.

Files are split into chunks small enough to embed well (by Markdown heading, then by
paragraphs up to ~1500 characters). A chunk's id is a hash of its content, so adding the same
file twice stores it once; adding an edited file replaces the chunks that changed.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.records import Insight

if TYPE_CHECKING:
    from knowledge.archive import Archive
    from knowledge.vectors import VectorStore

SOURCE = "user"
CHUNK_CHARS = 1500
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})
SUFFIXES = TEXT_SUFFIXES | {".pdf"}
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Chunk:
    title: str
    text: str


@dataclass
class NotesImport:
    """What `import_notes` did, for the CLI to print."""

    files: list[str] = field(default_factory=list)
    added: int = 0          # new chunks stored and indexed
    unchanged: int = 0      # chunks already present
    removed: int = 0        # chunks of an earlier version of a file, dropped
    skipped: list[str] = field(default_factory=list)  # "<file>: <why>"


def _paragraph_chunks(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Greedy packing of paragraphs up to `limit` characters; a longer paragraph is cut."""
    pieces: list[str] = []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        while len(paragraph) > limit:
            cut = paragraph.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            pieces.append(paragraph)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 2 + len(piece) <= limit:
            chunks[-1] += "\n\n" + piece
        else:
            chunks.append(piece)
    return chunks


def split_markdown(text: str, name: str) -> list[Chunk]:
    """One chunk per heading section (long sections split further), titled by the heading."""
    headings = list(_MARKDOWN_HEADING.finditer(text))
    sections = [(name, text[:headings[0].start() if headings else len(text)])]
    for heading, following in zip(headings, headings[1:] + [None]):
        sections.append((f"{name}: {heading.group(1)}", text[heading.end():following.start() if following else len(text)]))
    chunks = []
    for title, body in sections:
        parts = _paragraph_chunks(body)
        chunks += [Chunk(title if len(parts) == 1 else f"{title} ({i + 1}/{len(parts)})", part)
                   for i, part in enumerate(parts)]
    return chunks


def split_plain(text: str, name: str) -> list[Chunk]:
    parts = _paragraph_chunks(text)
    return [Chunk(name if len(parts) == 1 else f"{name} ({i + 1}/{len(parts)})", part)
            for i, part in enumerate(parts)]


def read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        return "\n\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    except PyPdfError as error:
        raise ValueError(f"unreadable PDF ({error})") from error


def chunks_of(path: Path) -> list[Chunk]:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return split_plain(read_pdf(path), path.stem)
    text = path.read_text(encoding="utf-8", errors="replace")
    return split_markdown(text, path.stem) if suffix != ".txt" else split_plain(text, path.stem)


def note_files(path: Path) -> list[Path]:
    """The file itself, or the supported files under a folder (recursively, sorted)."""
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"{path}: unsupported note type {path.suffix!r}; use one of {sorted(SUFFIXES)}")
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    raise FileNotFoundError(f"{path}: no such file or folder")


def _insight(chunk: Chunk, origin: Path, index: int, kind: str) -> Insight:
    digest = hashlib.sha256(f"{chunk.title}\0{chunk.text}".encode()).hexdigest()[:20]
    return Insight(id=f"{SOURCE}:{digest}", title=chunk.title, text=chunk.text, source=SOURCE,
                   metadata={"path": str(origin), "chunk": index, "kind": kind})


def import_notes(path: str | Path, archive: Archive, store: VectorStore) -> NotesImport:
    """Store and index Markdown, text or PDF notes (a file or a folder of them)."""
    report = NotesImport()
    earlier: dict[str, set[str]] = {}
    for ins in archive.insights(source=SOURCE):
        earlier.setdefault(ins.metadata.get("path", ""), set()).add(ins.id)
    for file in note_files(Path(path)):
        origin = file.resolve()
        try:
            chunks = chunks_of(file)
        except (OSError, ValueError) as error:  # one unreadable file must not stop the others
            report.skipped.append(f"{file}: {error}")
            continue
        if not chunks:
            report.skipped.append(f"{file}: no text found (a scanned PDF needs OCR first)")
            continue
        insights = list({ins.id: ins for ins in
                         (_insight(c, origin, i, file.suffix.lower().lstrip(".")) for i, c in enumerate(chunks))}.values())
        before = earlier.get(str(origin), set())
        fresh = {ins.id for ins in insights}
        outdated = sorted(before - fresh)
        archive.add_insights(insights)
        archive.delete_insights(outdated)
        store.index_insights(insights)
        store.delete_insights(outdated)
        report.files.append(str(file))
        report.added += len(fresh - before)
        report.unchanged += len(fresh & before)
        report.removed += len(outdated)
    return report
