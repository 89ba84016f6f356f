"""A person's review decision on a candidate, and how it changes the experiment."""
from __future__ import annotations

import ast
import hashlib
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, model_validator

from knowledge.novelty import code_hash, structure_hash
from knowledge.records import Insight, Stage
from sandbox.screen import screen_source
from evaluator.families.mixer import ALLOWED_IMPORTS

if TYPE_CHECKING:  # `archlab review` builds decisions without the evaluator's (torch's) start-up
    from agents.lab import Lab


class ReviewDecision(BaseModel):
    action: Literal["approve", "reject", "replace", "idea"]
    note: str = ""          # reject: why; idea: the idea for the researcher; replace: what the file tries
    code: str = ""          # replace: the new candidate file
    name: str = ""          # replace: the person's name for the design

    @model_validator(mode="after")
    def _complete(self) -> "ReviewDecision":
        if self.action == "replace" and not self.code.strip():
            raise ValueError("a replace decision needs the new code")
        if self.action == "idea" and not self.note.strip():
            raise ValueError("an idea decision needs the idea's text")
        return self


def docstring_of(code: str) -> str:
    """A candidate file's own description: its module docstring, else its Mixer class's ("" if none)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Mixer"]
    return (ast.get_docstring(tree) or (ast.get_docstring(classes[0]) if classes else "") or "").strip()


def pending_decision(lab: Lab, exp_id: str) -> dict | None:
    """The oldest decision `archlab review` recorded for this experiment that is not applied yet."""
    events = lab.archive.events(experiment_id=exp_id)
    decisions = [e for e in events if e.kind == "review_decision"]
    applied = [e for e in events if e.kind == "review_applied"]
    return decisions[len(applied)].data if len(decisions) > len(applied) else None


def apply_review(lab: Lab, exp_id: str, decision: ReviewDecision) -> None:
    """approve → train it; reject → finished with the note; replace → the person's code is
    screened and trained; idea → the idea is archived and the experiment is proposed anew."""
    _apply(lab, exp_id, decision)
    lab.log(exp_id, "review_applied", decision.action, note=decision.note)


def _apply(lab: Lab, exp_id: str, decision: ReviewDecision) -> None:
    if decision.action == "approve":
        lab.update(exp_id, stage=Stage.APPROVED)
    elif decision.action == "reject":
        lab.update(exp_id, stage=Stage.REJECTED, reason=f"rejected in review: {decision.note}")
    elif decision.action == "replace":
        report = screen_source(decision.code, ALLOWED_IMPORTS)
        if not report.passed:
            lab.update(exp_id, stage=Stage.FAILED, status="invalid", reason=f"replacement code refused: {report.reason}")
            return
        (lab.experiment_dir(exp_id) / "candidate.py").write_text(decision.code)
        current = lab.archive.get_experiment(exp_id)  # already the person's after a crash mid-way: keep it
        lab.update(exp_id, stage=Stage.APPROVED,
                   **(replaced_design(current.name, decision) if current.proposer != "person" else {}))
    else:
        idea_id = "idea-" + hashlib.sha256(f"{exp_id}:{decision.note}".encode()).hexdigest()[:12]
        lab.archive.add_insight(Insight(id=idea_id, title="A person's idea", text=decision.note, source="person",
                                        run=lab.run, experiment_id=exp_id))
        lab.update(exp_id, stage=Stage.PROPOSED, motivation="", plan="", code="", code_hash="", structure_hash="")


def replaced_design(proposal_name: str, decision: ReviewDecision) -> dict:
    """The fields of an experiment whose proposal a person's file replaced: the file is what is
    trained, so it carries the person's name and note, and no genome (the file is outside the
    offline design space; the analysts compare its code with the parent's)."""
    note = decision.note.strip() or docstring_of(decision.code) or "a person's file, given in review"
    return {"name": decision.name or f"{proposal_name or 'candidate'}-person", "motivation": note,
            "plan": f"a person's file, given in review in place of the proposal {proposal_name or '(unnamed)'}",
            "proposer": "person", "genome": None, "code": decision.code,
            "code_hash": code_hash(decision.code), "structure_hash": structure_hash(decision.code)}
