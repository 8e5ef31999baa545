"""The preference data set of a campaign: one row per completed task and turn, streamed.

Columns follow what preference-training tools read without a conversion step (Hugging Face
`datasets`, TRL's DPO trainer, conversational format): `prompt` is the conversation so far as
messages, `chosen` and `rejected` are the assistant's answer as one message each. The
conversation so far is the one the chosen answer followed (each model version answers with its
own earlier answers as context). Ties are kept, marked `tie` with `margin` 0, slot A as `chosen`.
The preference is the task's (reviewers judge the whole conversation); scores are per turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import Prefetch, QuerySet

from reviews.models import Outcome
from tasks.models import Campaign, Candidate, Turn

CHUNK = 500  # outcomes per database round trip and per Parquet row group

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_SCORES = pa.list_(pa.struct([("criterion", pa.string()), ("score", pa.float64())]))
SCHEMA = pa.schema(
    [
        ("prompt", _MESSAGES),
        ("chosen", _MESSAGES),
        ("rejected", _MESSAGES),
        ("prompt_text", pa.string()),
        ("campaign", pa.int64()),
        ("task", pa.int64()),
        ("turn", pa.int32()),
        ("turns", pa.int32()),
        ("round", pa.int32()),
        ("chosen_slot", pa.string()),
        ("rejected_slot", pa.string()),
        ("chosen_model", pa.string()),
        ("rejected_model", pa.string()),
        ("tie", pa.bool_()),
        ("preference", pa.float64()),
        ("margin", pa.float64()),
        ("scores_chosen", _SCORES),
        ("scores_rejected", _SCORES),
        ("method", pa.string()),
        ("rubric", pa.string()),
        ("rubric_version", pa.int32()),
        ("agreement", pa.string()),
        ("repository", pa.string()),
        ("base_commit", pa.string()),
        ("kind", pa.string()),
        ("scenario_title", pa.string()),
    ]
)
FIELDS = SCHEMA.names


def outcomes_for_export(*, campaign: Campaign) -> QuerySet[Outcome]:
    """The campaign's outcomes with everything a row needs, in a fixed number of queries."""
    candidates = Candidate.objects.select_related("slot__model_version").only(
        "id", "turn_id", "output", "slot__label", "slot__model_version__slug"
    )
    turns = Turn.objects.order_by("index").prefetch_related(
        Prefetch("candidates", queryset=candidates)
    )
    return (
        Outcome.objects.filter(task__campaign=campaign)
        .select_related("task__repository", "rubric_version__rubric")
        .prefetch_related(Prefetch("task__turns", queryset=turns))
        .order_by("task_id")
    )


def _scores(outcome: Outcome, turn: int, slot: str) -> list[dict[str, Any]]:
    return [
        {"criterion": s["criterion"], "score": float(s["score"])}
        for s in outcome.scores
        if s["turn"] == turn and s["slot"] == slot
    ]


def rows_of(outcome: Outcome) -> Iterator[dict[str, Any]]:
    """One row per turn of the outcome's task."""
    task = outcome.task
    tie = outcome.preference == 0
    chosen, rejected = ("B", "A") if outcome.preference > 0 else ("A", "B")
    turns = list(task.turns.all())
    history: list[dict[str, str]] = []
    for turn in turns:
        answers = {c.slot.label: c for c in turn.candidates.all()}
        if chosen not in answers or rejected not in answers:
            continue
        prompt = [*history, {"role": "user", "content": turn.prompt}]
        yield {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": answers[chosen].output}],
            "rejected": [{"role": "assistant", "content": answers[rejected].output}],
            "prompt_text": turn.prompt,
            "campaign": task.campaign_id,
            "task": task.pk,
            "turn": turn.index,
            "turns": len(turns),
            "round": outcome.round,
            "chosen_slot": chosen,
            "rejected_slot": rejected,
            "chosen_model": answers[chosen].slot.model_version.slug,
            "rejected_model": answers[rejected].slot.model_version.slug,
            "tie": tie,
            "preference": float(outcome.preference),
            "margin": abs(float(outcome.preference)),
            "scores_chosen": _scores(outcome, turn.index, chosen),
            "scores_rejected": _scores(outcome, turn.index, rejected),
            "method": outcome.method,
            "rubric": outcome.rubric_version.rubric.slug,
            "rubric_version": outcome.rubric_version.number,
            "agreement": json.dumps(outcome.agreement, sort_keys=True),
            "repository": task.repository.full_name,
            "base_commit": task.base_commit,
            "kind": task.kind,
            "scenario_title": task.scenario_title,
        }
        history = [*prompt, {"role": "assistant", "content": answers[chosen].output}]


def export_rows(outcomes: QuerySet[Outcome], chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    for outcome in outcomes.iterator(chunk_size=chunk):
        yield from rows_of(outcome)


def jsonl_chunks(rows: Iterator[dict[str, Any]], per_chunk: int = 200) -> Iterator[bytes]:
    """JSON Lines, a few hundred rows per chunk so the response streams without tiny writes."""
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(row, ensure_ascii=False))
        if len(lines) >= per_chunk:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


class _Spool:
    """A write-only file that hands back what was written since the last `drain`."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out


def parquet_chunks(rows: Iterator[dict[str, Any]], rows_per_group: int = CHUNK) -> Iterator[bytes]:
    """Parquet, one row group per `rows_per_group` rows, each sent as soon as it is written."""
    spool = _Spool()
    with pq.ParquetWriter(pa.PythonFile(spool, mode="w"), SCHEMA, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA))
                batch = []
                yield spool.drain()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=SCHEMA))
    yield spool.drain()
