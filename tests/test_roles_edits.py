"""Search/replace edits of a parent file, and the coder's answer turned into a file."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.answers import CandidateCode, python_fence_as_full_file
from agents.edits import Edit, EditError, apply_edits

PARENT = """import torch


class Mixer(torch.nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.proj = torch.nn.Linear(d_model, d_model)
        self.out = torch.nn.Linear(d_model, d_model)

    def forward(self, x):
        return self.out(self.proj(x))
"""


def test_edits_apply_in_order() -> None:
    edits = [
        Edit(search="        return self.out(self.proj(x))", replace="        y = self.proj(x)\n        return self.out(y)"),
        Edit(search="        y = self.proj(x)", replace="        y = torch.tanh(self.proj(x))"),  # sees the first edit
    ]
    result = apply_edits(PARENT, edits)
    assert "y = torch.tanh(self.proj(x))\n        return self.out(y)" in result
    assert result.count("def forward") == 1


def test_an_ambiguous_search_block_is_refused_with_a_hint() -> None:
    with pytest.raises(EditError, match="occurs 2 times; include more surrounding lines"):
        apply_edits(PARENT, [Edit(search="torch.nn.Linear(d_model, d_model)", replace="None")])


def test_a_missing_search_block_is_refused() -> None:
    with pytest.raises(EditError, match="edit 1 of 1 .*does not occur in the file"):
        apply_edits(PARENT, [Edit(search="self.gate = None", replace="")])


def test_a_block_that_differs_only_in_indentation_gets_a_specific_hint() -> None:
    wrongly_indented = "    def forward(self, x):\n    return self.out(self.proj(x))"
    with pytest.raises(EditError, match="only if whitespace is ignored"):
        apply_edits(PARENT, [Edit(search=wrongly_indented, replace="")])


def test_every_failing_edit_is_reported() -> None:
    edits = [
        Edit(search="nothing like this", replace=""),
        Edit(search="import torch", replace="import math\nimport torch"),
        Edit(search="super().__init__()\n", replace="x"),
        Edit(search="self.proj", replace="self.p"),
    ]
    with pytest.raises(EditError) as failure:
        apply_edits(PARENT, edits)
    message = str(failure.value)
    assert "edit 1 of 4" in message and "edit 4 of 4" in message
    assert "edit 2 of 4" not in message and "edit 3 of 4" not in message


def test_no_edits_is_an_error() -> None:
    with pytest.raises(EditError, match="no edits"):
        apply_edits(PARENT, [])


def test_candidate_code_full_and_edit_modes() -> None:
    full = CandidateCode.model_validate({"mode": "full", "code": "```python\nprint(1)\n```"})
    assert full.apply_to(None) == "print(1)"
    edit = CandidateCode.model_validate({"mode": "edit", "edits": [{"search": "import torch", "replace": "import math\nimport torch"}]})
    assert edit.apply_to(PARENT).startswith("import math\nimport torch\n")
    with pytest.raises(EditError, match="need a base file"):
        edit.apply_to(None)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"mode": "full", "code": "  "}, "complete file"),
        ({"mode": "edit", "edits": []}, "non-empty"),
        ({"mode": "patch", "code": "x"}, "'full' or 'edit'"),
        ({"mode": "edit", "edits": [{"search": "", "replace": "x"}]}, "at least 1 character"),
    ],
)
def test_candidate_code_refuses_incomplete_answers(answer: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CandidateCode.model_validate(answer)


def test_a_lone_python_block_is_salvaged_as_a_full_file() -> None:
    assert python_fence_as_full_file("Here:\n```python\nimport torch\n```\n") == {"mode": "full", "code": "import torch\n"}
    assert python_fence_as_full_file("```python\na\n```\n```python\nb\n```") is None
    assert python_fence_as_full_file("no code") is None
