"""The cognition base loader and user notes (format errors, chunking, idempotent imports)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge.archive import Archive
from knowledge.cognition import (
    COGNITION_DIR, CognitionFormatError, index_cognition_base, load_cognition_base, load_entry,
)
from knowledge.embeddings import local_minilm
from knowledge.notes import CHUNK_CHARS, import_notes, split_markdown
from knowledge.vectors import VectorStore

FIXTURES = Path(__file__).parent / "fixtures" / "cognition"


@pytest.fixture(scope="session")
def embedder():
    """One model load for the whole session (local_minilm is a per-process cached instance)."""
    return local_minilm()


@pytest.fixture
def space(tmp_path, embedder):
    with Archive.open(tmp_path) as archive:
        yield archive, VectorStore(tmp_path / "chroma", embedder)


def write_entry(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_fixture_entries_load_as_typed_insights():
    entries = load_cognition_base(FIXTURES)
    assert [e.slug for e in entries] == ["delta-rule", "output-gate", "short-convolution"]
    delta = entries[0].to_insight()
    assert delta.id == "cognition:delta-rule" and delta.source == "cognition"
    assert delta.metadata["tags"] == ["associative recall", "fixed-size state", "overwrite"]
    assert delta.text.startswith("Problem: Linear attention only adds")
    assert "Pitfalls: Unnormalised keys" in delta.text


def test_the_shipped_cognition_base_is_well_formed():
    entries = load_cognition_base(COGNITION_DIR)
    assert len(entries) >= 40
    assert len({e.title for e in entries}) == len(entries)
    assert "delta-rule" in {e.slug for e in entries}


@pytest.mark.parametrize("broken, message", [
    (lambda t: t.replace("## Pitfalls", "## Caveats"), "unknown section '## Caveats'"),
    (lambda t: t.split("## Pitfalls")[0], "missing section '## Pitfalls'"),
    (lambda t: t.replace("tags: local mixing, convolution, induction\n", ""), "front matter lacks tags"),
    (lambda t: t.replace("---\n", "", 1), "must start with a front matter block"),
    (lambda t: t.replace("Local patterns such as bigrams are learned slowly.", ""), "'## When to try' is empty"),
])
def test_malformed_entries_name_the_file_and_the_fix(tmp_path, broken, message):
    text = (FIXTURES / "short-convolution.md").read_text()
    path = write_entry(tmp_path, "bad-entry.md", broken(text))
    with pytest.raises(CognitionFormatError, match="bad-entry.md") as error:
        load_entry(path)
    assert message in str(error.value)


def test_index_cognition_is_idempotent_and_follows_removed_files(tmp_path, space):
    archive, store = space
    directory = tmp_path / "cog"
    shutil.copytree(FIXTURES, directory)
    assert index_cognition_base(archive, store, directory) == 3
    assert index_cognition_base(archive, store, directory) == 3
    assert store.count("insights") == 6  # two keys per tagged entry: full text and headline
    (directory / "output-gate.md").unlink()
    index_cognition_base(archive, store, directory)
    assert {i.id for i in archive.insights(source="cognition")} == {"cognition:delta-rule",
                                                                    "cognition:short-convolution"}
    assert store.check_consistency(archive).ok


def test_markdown_notes_split_by_heading_and_size():
    long_section = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(12))
    chunks = split_markdown(f"Intro text.\n\n# First\nShort body.\n\n## Second\n{long_section}\n", "notes")
    assert [c.title for c in chunks[:2]] == ["notes", "notes: First"]
    assert chunks[2].title.startswith("notes: Second (1/")
    assert all(len(c.text) <= CHUNK_CHARS for c in chunks)
    assert "".join(c.text for c in chunks[2:]).count("Paragraph") == 12


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with one line of Helvetica text, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_notes_import_is_idempotent_and_replaces_edited_files(tmp_path, space):
    archive, store = space
    notes = tmp_path / "notes"
    write_entry(notes, "ideas.md", "# Gates\nGated decay helps forgetting.\n\n# Chunks\nChunked scans are fast.\n")
    write_entry(notes, "plain.txt", "Token shift mixes neighbours cheaply.")
    (notes / "paper.pdf").write_bytes(minimal_pdf("Sliding window attention keeps local precision"))
    write_entry(notes, "ignored.csv", "a,b")
    first = import_notes(notes, archive, store)
    assert (first.added, first.unchanged, len(first.files), first.skipped) == (4, 0, 3, [])
    again = import_notes(notes, archive, store)
    assert (again.added, again.unchanged, again.removed) == (0, 4, 0)
    assert len(archive.insights(source="user")) == 4
    write_entry(notes, "ideas.md", "# Gates\nGated decay helps forgetting.\n\n# Chunks\nChunks of 64 are best.\n")
    edited = import_notes(notes / "ideas.md", archive, store)
    assert (edited.added, edited.unchanged, edited.removed) == (1, 1, 1)
    assert len(archive.insights(source="user")) == 4
    assert store.check_consistency(archive).ok
    top = store.search("sliding window attention for local precision", k=1)[0]
    assert top.source == "user" and "Sliding window" in top.text
    with pytest.raises(ValueError, match="unsupported note type"):
        import_notes(notes / "ignored.csv", archive, store)


def test_unreadable_pdf_is_skipped_with_a_reason(tmp_path, space):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    report = import_notes(tmp_path / "broken.pdf", *space)
    assert report.added == 0 and report.skipped and "broken.pdf" in report.skipped[0]


@pytest.mark.slow
def test_search_over_the_cognition_base_finds_the_delta_rule(space):
    """Embeds the whole shipped cognition base (~60 entries): about 15 s on 2 cores."""
    archive, store = space
    index_cognition_base(archive, store)
    hits = store.search("improve recall with a fixed-size state", k=3)
    assert "cognition:delta-rule" in [h.id for h in hits]
    assert all(0 < h.score <= 1 for h in hits) and hits == sorted(hits, key=lambda h: -h.score)
