"""Reading the coder's plain-text answer: one ```python block with the whole file, or
SEARCH/REPLACE blocks; the near-misses real models produce, tolerated or refused with a reason."""
from __future__ import annotations

import pytest

from agents.llm.code_blocks import CodeFormatError, TruncatedAnswer, parse_code_answer
from agents.llm.edits import Edit

FILE = "import torch\n\n\nclass Mixer(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
USAGE = "mixer = Mixer(64, 4)\ny = mixer(torch.randn(2, 8, 64))\n"


def test_one_python_block_with_prose_around_it() -> None:
    answer = parse_code_answer(f"Sure! Here is the file:\n\n```python\n{FILE}```\n\nIt keeps the state small.\n")
    assert (answer.mode, answer.code) == ("full", FILE)
    assert answer.notes == ("2 line(s) of prose around the code ignored",)


def test_a_bare_fence_and_a_missing_closing_fence_on_a_finished_reply() -> None:
    assert parse_code_answer(f"```\n{FILE}```").code == FILE
    unclosed = parse_code_answer(f"```python\n{FILE}")
    assert unclosed.code == FILE and unclosed.notes == ("the closing fence was missing",)


def test_a_file_without_any_fence_is_taken_only_if_it_parses_and_defines_a_class() -> None:
    assert parse_code_answer(FILE).notes == ("the file came without a fence",)
    with pytest.raises(CodeFormatError, match="no ```python block"):
        parse_code_answer("I would implement a gated running mean with a learned decay.")


def test_two_blocks_keep_the_one_whole_file_beside_a_usage_fragment() -> None:
    answer = parse_code_answer(f"The file:\n```python\n{FILE}```\nUse it like this:\n```python\n{USAGE}```\n")
    assert answer.code == FILE
    assert answer.notes == ("2 python blocks (lines 2-9, lines 11-14); kept the only one that is a whole file (lines 2-9)",)


def test_two_whole_files_are_ambiguous() -> None:
    second = FILE.replace("return x", "return 2 * x")
    with pytest.raises(CodeFormatError) as failure:
        parse_code_answer(f"First try:\n```python\n{FILE}```\nBetter:\n```python\n{second}```\n")
    assert str(failure.value) == ("the answer holds 2 ```python blocks (lines 2-9, lines 11-18) and 2 of them are whole "
                                  "files: send exactly one block with the complete file, or SEARCH/REPLACE blocks")


def test_only_other_languages_are_named() -> None:
    with pytest.raises(CodeFormatError, match=r"no ```python block \(found only ```json blocks\)"):
        parse_code_answer('```json\n{"mode": "full", "code": "import torch"}\n```')


def test_search_replace_blocks_fenced_or_bare_with_a_filename_line() -> None:
    text = ("candidate.py\n```python\n<<<<<<< SEARCH\n        return x\n=======\n        return x * 2\n>>>>>>> REPLACE\n```\n"
            "<<<<<<< SEARCH\nimport torch\n=======\nimport math\nimport torch\n>>>>>>> REPLACE\n")
    answer = parse_code_answer(text)
    assert answer.mode == "edit"
    assert answer.edits == (Edit("        return x\n", "        return x * 2\n"),
                            Edit("import torch\n", "import math\nimport torch\n"))
    assert answer.notes == ("1 line(s) of prose around the code ignored",)


def test_an_empty_replace_deletes() -> None:
    answer = parse_code_answer("<<<<<<< SEARCH\n        return x\n=======\n>>>>>>> REPLACE\n")
    assert answer.edits == (Edit("        return x\n", ""),)


def test_a_block_without_its_divider_or_end_says_which_and_where() -> None:
    with pytest.raises(CodeFormatError, match=r"block 1 \(answer line 2\) lacks its ======= divider"):
        parse_code_answer("Fix:\n<<<<<<< SEARCH\n        return x\n>>>>>>> REPLACE\n")
    with pytest.raises(CodeFormatError, match=r"block 2 \(answer line 6\) lacks its >>>>>>> REPLACE line"):
        parse_code_answer("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\nd\n")


def test_edits_and_a_whole_file_together_are_refused() -> None:
    with pytest.raises(CodeFormatError, match="both 1 SEARCH/REPLACE block"):
        parse_code_answer(f"<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\nOr the whole file:\n```python\n{FILE}```\n")


def test_a_reply_cut_off_inside_the_code_is_truncated_not_used() -> None:
    with pytest.raises(TruncatedAnswer) as failure:
        parse_code_answer(f"Here:\n```python\n{FILE[:50]}", truncated=True)
    assert str(failure.value) == ("the answer was cut off at the output token limit inside the ```python block "
                                  "(answer lines 2-7; the file ends mid-way at `d`)")  # cut mid-word, as a token limit cuts
    with pytest.raises(TruncatedAnswer, match="inside SEARCH/REPLACE block 1 .* before its >>>>>>> REPLACE line"):
        parse_code_answer("<<<<<<< SEARCH\na\n=======\nb", truncated=True)


def test_a_cut_off_after_the_closing_fence_loses_only_prose() -> None:
    answer = parse_code_answer(f"```python\n{FILE}```\nThis design keeps a running", truncated=True)
    assert answer.code == FILE
