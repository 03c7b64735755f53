"""The review step of synthetic data: a reviewer's edits, then the dataset version.

The UI shows a job's candidates (`SyntheticData.state(name).candidates`: accepted and rejected,
each with its reason, ROUGE-L, most similar instruction and prompts), lets the reviewer accept,
reject or edit them, and calls `save_reviewed` with the edits. The CLI calls it with none.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from studio.data.synthetic_work import (
    ACCEPTED,
    REJECTED,
    Candidate,
    WorkState,
    discard_work,
    read_work,
    work_folder,
)
from studio.data.versions import save_rows
from studio.hosting import HostingPolicy
from studio.store import DatasetVersion, Store


@dataclass(frozen=True)
class Edit:
    """A reviewer's change to one candidate, named by its id ("r3-7").

    `accept`: True keeps a rejected candidate, False drops an accepted one, None leaves its
    status. `instruction`, `input`, `output`: new text (None keeps the generated text). A
    candidate rejected before its instance was written can be accepted only with an output."""

    candidate: str
    accept: bool | None = None
    instruction: str | None = None
    input: str | None = None
    output: str | None = None

    @property
    def edits_text(self) -> bool:
        return any(v is not None for v in (self.instruction, self.input, self.output))


def save_reviewed(
    store: Store,
    policy: HostingPolicy,
    datasets_dir: Path,
    name: str,
    edits: Sequence[Edit] = (),
) -> DatasetVersion:
    """Save job `name`'s accepted candidates, after the reviewer's `edits`, as the next version
    of dataset `name` (kind "synthetic") and end the job.

    Rows are instruction/input/output (the Alpaca shape Prompts, Compare and Tune read) followed
    by each row's provenance: candidate id, generator, round, ROUGE-L and most similar
    instruction, sampling seeds, context task ids, the exact prompts, the filter's reason if a
    reviewer overrode it, and `review` (generated, accepted-by-reviewer or edited). Every
    candidate, rejected ones included, is kept beside the rows (`candidates-<hash>.jsonl`), named
    in the lineage with the generator, seed file, count, filter and sampling settings, rejection
    counts by reason and the edits. All or nothing: on any failure the store and the work folder
    are as before. A public demo may not save datasets (every visitor shares them).
    """
    policy.check_shared_write("saving a synthetic dataset")
    state = read_work(work_folder(datasets_dir, name))
    reviewed = apply_edits(state.candidates, edits)
    rows = [_row(state, c, why) for c, why in reviewed if c.accepted]
    if not rows:
        raise ValueError(
            f"generation {name!r} has no accepted candidate to save. Fix: resume it "
            "(--resume) until some pass the filters, or accept candidates in the review"
        )
    folder = datasets_dir / name
    existed = folder.exists()
    kept = _write_candidates(folder, [c for c, _ in reviewed])
    try:
        version = save_rows(
            store, policy, datasets_dir, name, "synthetic", rows, _lineage(state, edits, kept)
        )
    except BaseException:
        kept.unlink(missing_ok=True)
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    discard_work(state.folder)
    return version


def apply_edits(
    candidates: Sequence[Candidate], edits: Sequence[Edit]
) -> list[tuple[Candidate, str]]:
    """Each candidate after the edits, with how the review left it ("generated" when
    untouched); ValueError naming the edit for an unknown or repeated id or an empty text."""
    by_id = {e.candidate: e for e in edits}
    known = {c.id for c in candidates}
    unknown = sorted(set(by_id) - known)
    if unknown or len(by_id) < len(edits):
        raise ValueError(
            f"the review names candidates {unknown or 'more than once'} that are not this "
            "job's candidates once each. Fix: review the job's current candidates"
        )
    return [_edited(c, by_id.get(c.id)) for c in candidates]


def _edited(c: Candidate, edit: Edit | None) -> tuple[Candidate, str]:
    if edit is None:
        return c, "generated"
    new = replace(
        c,
        instruction=c.instruction if edit.instruction is None else edit.instruction.strip(),
        input=c.input if edit.input is None else edit.input.strip(),
        output=c.output if edit.output is None else edit.output.strip(),
    )
    accept = c.accepted if edit.accept is None else edit.accept
    if accept and (not new.instruction or not new.output):
        raise ValueError(
            f"candidate {c.id} cannot be accepted without an instruction and an output. Fix: "
            "write them in the review, or leave it rejected"
        )
    new = replace(new, status=ACCEPTED if accept else REJECTED, input=new.input or "")
    if accept != c.accepted:
        return new, "accepted-by-reviewer" if accept else "rejected-by-reviewer"
    return new, "edited" if edit.edits_text else "generated"


def _row(state: WorkState, c: Candidate, review: str) -> dict[str, Any]:
    return {
        "instruction": c.instruction,
        "input": c.input or "",
        "output": c.output,
        "candidate_id": c.id,
        "generator": state.settings.generator,
        "round": c.round,
        "rouge_l": round(c.rouge_l, 4),
        "most_similar": c.most_similar,
        "most_similar_id": c.most_similar_id,
        "instruction_seed": c.instruction_seed,
        "instance_seed": c.instance_seed,
        "instruction_context": c.instruction_context,
        "instance_context": c.instance_context,
        "instruction_prompt": c.instruction_prompt,
        "instance_prompt": c.instance_prompt,
        "filter_reason": c.reason,
        "review": review,
    }


def _lineage(state: WorkState, edits: Sequence[Edit], candidates_file: Path) -> dict[str, Any]:
    settings = state.settings
    rejected = Counter(c.reason for c in state.candidates if not c.accepted)
    return {
        "source": f"self-instruct by {settings.generator}",
        "generator": settings.generator,
        "seed_tasks": settings.seed_tasks,
        "seed_tasks_hash": state.seed_hash,
        "count": settings.count,
        "candidates": len(state.candidates),
        "accepted_by_filters": len(state.accepted),
        "rejected": dict(sorted(rejected.items(), key=lambda kv: str(kv[0]))),
        "rounds": state.rounds,
        "settings": settings.model_dump(),
        "review": [asdict(e) for e in edits],
        "candidates_file": str(candidates_file),
    }


def _write_candidates(folder: Path, candidates: Sequence[Candidate]) -> Path:
    """Every candidate of the job as JSONL beside the dataset's rows (named by content hash),
    written atomically; the caller removes it if the save then fails."""
    text = "".join(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in candidates)
    final = folder / f"candidates-{hashlib.sha256(text.encode()).hexdigest()[:16]}.jsonl"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".writing-", suffix=".jsonl")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, final)
    return final
