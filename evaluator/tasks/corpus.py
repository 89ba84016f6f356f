"""The byte corpus of task `bytelm`: a documented default, or a user's text, and a deterministic split.

Default corpus: the `*.py` files of the running Python's standard library
(`sysconfig.get_paths()["stdlib"]`), skipping tests (directories `test`, `tests`, `idle_test`),
installed packages (`site-packages`), generated codec tables (`encodings`) and build-specific
files (directories `config-*`, files `_sysconfigdata*`), in sorted order of their path relative
to the stdlib directory, each file's bytes followed by one newline, cut at the budget's byte
count (the whole set is about 10 MB on Python 3.11).
Python versions ship different files, so the corpus hash goes into the metrics: two results
are comparable only when their `corpus_sha256` agree.

Split: the last `val_fraction` of the bytes is the validation set, the rest the training set.
"""
from __future__ import annotations

import hashlib
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SKIPPED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "__pycache__", "encodings"})
BINARY_PROBE_BYTES = 8192


class CorpusError(ValueError):
    """The corpus cannot be used; the message says which file and what to do."""


@dataclass(frozen=True)
class Corpus:
    data: np.ndarray        # uint8 bytes, training part then validation part
    split: int              # index of the first validation byte
    sha256: str
    source: str             # "python-stdlib-<version>" or the user's path
    files: int

    @property
    def train(self) -> np.ndarray:
        return self.data[: self.split]

    @property
    def val(self) -> np.ndarray:
        return self.data[self.split:]


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for folder, subfolders, names in os.walk(root):
        # Pruned in place, so site-packages is never walked.
        subfolders[:] = [d for d in subfolders if d not in SKIPPED_DIRS and not d.startswith("config-")]
        found += [Path(folder) / n for n in names if n.endswith(".py") and not n.startswith("_sysconfigdata")]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def user_files(path: Path) -> list[Path]:
    """A text file, or every non-hidden file under a folder, sorted by relative path."""
    if not path.exists():
        raise CorpusError(f"data path {path} does not exist; pass a text file or a folder of text files")
    if path.is_file():
        return [path]
    files = sorted((p for p in path.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)),
                   key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise CorpusError(f"data folder {path} holds no files; put text files in it")
    return files


def read_text_bytes(path: Path) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror}; check that the file is readable") from error
    nul = content.find(b"\0", 0, BINARY_PROBE_BYTES)
    if nul >= 0:
        raise CorpusError(f"{path} looks binary (a NUL byte at offset {nul}); bytelm wants text: "
                          "remove the file or point --data at text only")
    return content


def load_corpus(max_bytes: int, val_fraction: float, data_path: Path | None = None) -> Corpus:
    """Read files in order until `max_bytes`, then split off the validation tail."""
    files = stdlib_files() if data_path is None else user_files(Path(data_path))
    chunks, size, used = [], 0, 0
    for path in files:
        if size >= max_bytes:
            break
        content = read_text_bytes(path) + b"\n"
        chunks.append(content)
        size += len(content)
        used += 1
    blob = b"".join(chunks)[:max_bytes]
    if len(blob.strip()) == 0:
        raise CorpusError(f"the corpus from {data_path or 'the standard library'} is empty; give it some text")
    split = len(blob) - max(1, int(len(blob) * val_fraction))
    source = (f"python-stdlib-{sysconfig.get_python_version()}" if data_path is None
              else str(Path(data_path).resolve()))
    return Corpus(np.frombuffer(blob, dtype=np.uint8), split, hashlib.sha256(blob).hexdigest(), source, used)
