"""SEARCH/REPLACE edits of a parent file: exact matches, the near-misses repaired when the repair
is unambiguous, and refusals that quote what the file really holds."""
from __future__ import annotations

import pytest

from agents.llm.edits import Edit, EditError, apply_edits

PARENT = """import torch


class Mixer(torch.nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.proj = torch.nn.Linear(d_model, d_model)
        self.out = torch.nn.Linear(d_model, d_model)

    def forward(self, x):
        y = self.proj(x)
        return self.out(y)
"""


def test_edits_apply_in_order_each_to_the_file_the_previous_left() -> None:
    edits = [
        Edit(search="        return self.out(y)\n", replace="        y = torch.tanh(y)\n        return self.out(y)\n"),
        Edit(search="        y = torch.tanh(y)\n", replace="        y = torch.sigmoid(y) * y\n"),
    ]
    applied = apply_edits(PARENT, edits)
    assert "        y = torch.sigmoid(y) * y\n        return self.out(y)\n" in applied.code
    assert applied.notes == ()


def test_a_uniformly_misindented_block_is_reindented_with_its_replacement() -> None:
    """Models often drop the class-level indentation of a method they copy."""
    search = "def forward(self, x):\n    y = self.proj(x)\n    return self.out(y)\n"
    replace = "def forward(self, x):\n    y = self.proj(x)\n    return self.out(y) + x\n"
    applied = apply_edits(PARENT, [Edit(search, replace)])
    assert applied.code.endswith("    def forward(self, x):\n        y = self.proj(x)\n        return self.out(y) + x\n")
    assert applied.notes == ("SEARCH block 1: matched lines 10-12 with every line indented 4 spaces deeper in the file; "
                             "re-indented its replacement the same way",)


def test_trailing_whitespace_differences_are_tolerated() -> None:
    applied = apply_edits(PARENT, [Edit("        y = self.proj(x)   \n", "        y = self.proj(x) * 2\n")])
    assert "        y = self.proj(x) * 2\n        return" in applied.code
    assert "trailing whitespace" in applied.notes[0]


def test_an_ambiguous_search_names_the_lines_it_matches() -> None:
    with pytest.raises(EditError) as failure:
        apply_edits(PARENT, [Edit(search="torch.nn.Linear(d_model, d_model)", replace="None")])
    assert str(failure.value) == ("SEARCH block 1 of 1 (first line `torch.nn.Linear(d_model, d_model)`) matches 2 places "
                                  "(lines 7 and 8 of the file): add neighbouring lines so that it matches exactly one")


def test_a_block_matching_only_without_whitespace_quotes_the_file_lines() -> None:
    jumbled = "    def forward(self, x):\n    y = self.proj(x)\n        return self.out(y)\n"  # not one uniform shift
    with pytest.raises(EditError) as failure:
        apply_edits(PARENT, [Edit(jumbled, "")])
    message = str(failure.value)
    assert "matches the file only if whitespace is ignored" in message
    assert "at lines 10-12:\n   10 |     def forward(self, x):\n   11 |         y = self.proj(x)\n" in message


def test_a_missing_block_quotes_the_closest_lines() -> None:
    with pytest.raises(EditError) as failure:
        apply_edits(PARENT, [Edit("        y = self.project(x)\n        return self.output(y)\n", "")])
    message = str(failure.value)
    assert "does not occur in the file. The closest is lines 11-12:" in message
    assert "   11 |         y = self.proj(x)" in message


def test_nothing_close_is_said_plainly_and_every_failing_edit_is_reported() -> None:
    edits = [Edit("completely unrelated text\n", ""), Edit("import torch", "import math\nimport torch"),
             Edit("self.proj", "self.p"), Edit("   \n", "x")]
    with pytest.raises(EditError) as failure:
        apply_edits(PARENT, edits)
    message = str(failure.value)
    assert "SEARCH block 1 of 4 (first line `completely unrelated text`) does not occur in the file, and nothing" in message
    assert "SEARCH block 3 of 4 (first line `self.proj`) matches 2 places (lines 8 and 12 of the file)" in message  # after edit 2 added a line
    assert "SEARCH block 4 of 4 (first line ``) is empty" in message
    assert "SEARCH block 2" not in message


def test_no_edits_is_an_error() -> None:
    with pytest.raises(EditError, match="no edits"):
        apply_edits(PARENT, [])
