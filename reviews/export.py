"""The preference data set of a campaign: one row per completed task and turn, streamed.

Columns follow what preference-training tools read without a conversion step (Hugging Face
`datasets`, TRL's DPO trainer, conversational format): `prompt` is the conversation so far as
messages, `chosen` and `rejected` are the assistant's answer as one message each. The
conversation so far is the one the chosen answer followed (each model version answers with its
own earlier answers as context). Ties are kept, marked `tie` with `margin` 0, slot A as `chosen`.
The preference is the task's (reviewers judge the whole conversation); scores are per turn.
`evidence_chosen` / `evidence_rejected` hold each answer's sandboxed checks (tests, linters), each
with the rubric criterion it bears on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import QuerySet

from reviews.models import Outcome
from tasks.evidence_services import PREFIX as EVIDENCE_PREFIX
from tasks.models import Campaign, Candidate, ValidatorResult
from tasks.validators import criterion_of

CHUNK = 1000  # outcomes per database round trip
ROW_GROUP = 2000  # rows per Parquet row group (1,000 measured a higher peak: 324 MB against 299)

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_SCORES = pa.list_(pa.struct([("criterion", pa.string()), ("score", pa.float64())]))
_EVIDENCE = pa.list_(
    pa.struct(
        [
            ("check", pa.string()),
            ("passed", pa.bool_()),
            ("message", pa.string()),
            ("bears_on", pa.string()),
        ]
    )
)
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
        ("evidence_chosen", _EVIDENCE),
        ("evidence_rejected", _EVIDENCE),
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
# Min/max statistics only where a reader can filter on them. On the text columns they would be
# copies of prompts and answers (up to 4 KB each, per column, per row group) that the writer
# holds until the footer is written: tens of MB over a million rows, for nothing.
STATISTICS = [
    f.name
    for f in SCHEMA
    if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)
]


OUTCOME_FIELDS = {
    "task": "task_id",
    "round": "round",
    "method": "method",
    "preference": "preference",
    "scores": "scores",
    "agreement": "agreement",
    "campaign": "task__campaign_id",
    "base_commit": "task__base_commit",
    "kind": "task__kind",
    "scenario_title": "task__scenario_title",
    "repository": "task__repository__full_name",
    "rubric": "rubric_version__rubric__slug",
    "rubric_version": "rubric_version__number",
}
ANSWER_FIELDS = (
    "pk",
    "turn__task_id",
    "turn__index",
    "turn__prompt",
    "slot__label",
    "slot__model_version__slug",
    "output",
)


def outcomes_for_export(*, campaign: Campaign) -> QuerySet:
    """The campaign's outcomes as plain tuples with what a row needs, in task order.

    Tuples, not model instances: building eight model instances per row would cost most of
    an export's time.
    """
    return (
        Outcome.objects.filter(task__campaign=campaign)
        .order_by("task_id")
        .values_list(*OUTCOME_FIELDS.values())
    )


Answer = tuple[str, str, list[dict[str, Any]]]  # model slug, output, evidence


def _answers(task_ids: list[int]) -> dict[int, list[tuple[int, str, dict[str, Answer]]]]:
    """Per task, its turns in order: (index, prompt, {slot label: answer})."""
    turns: dict[int, list[tuple[int, str, dict[str, Answer]]]] = {}
    answers = list(
        Candidate.objects.filter(turn__task_id__in=task_ids)
        .order_by("turn__task_id", "turn__index", "slot__label")
        .values_list(*ANSWER_FIELDS)
    )
    evidence = _evidence([answer[0] for answer in answers])
    for candidate_id, task_id, index, prompt, label, model, output in answers:
        task_turns = turns.setdefault(task_id, [])
        if not task_turns or task_turns[-1][0] != index:
            task_turns.append((index, prompt, {}))
        task_turns[-1][2][label] = (model, output, evidence.get(candidate_id, []))
    return turns


def _evidence(candidate_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The sandboxed checks' results (`evidence.*` validators) per candidate, by check name."""
    found: dict[int, list[dict[str, Any]]] = {}
    results = (
        ValidatorResult.objects.filter(
            candidate_id__in=candidate_ids, key__startswith=EVIDENCE_PREFIX
        )
        .order_by("candidate_id", "key")
        .values_list("candidate_id", "key", "passed", "message")
    )
    for candidate_id, key, passed, message in results:
        check = key.removeprefix(EVIDENCE_PREFIX)
        found.setdefault(candidate_id, []).append(
            {"check": check, "passed": passed, "message": message, "bears_on": criterion_of(key)}
        )
    return found


def _scores(scores: list[dict[str, Any]], turn: int, slot: str) -> list[dict[str, Any]]:
    return [
        {"criterion": s["criterion"], "score": float(s["score"])}
        for s in scores
        if s["turn"] == turn and s["slot"] == slot
    ]


def rows_of(
    outcome: dict[str, Any], turns: list[tuple[int, str, dict[str, Answer]]]
) -> Iterator[dict[str, Any]]:
    """One row per turn of the outcome's task (`outcome` keyed as OUTCOME_FIELDS)."""
    preference = float(outcome["preference"])
    chosen, rejected = ("B", "A") if preference > 0 else ("A", "B")
    agreement = json.dumps(outcome["agreement"], sort_keys=True)
    history: list[dict[str, str]] = []
    for index, prompt_text, answers in turns:
        if chosen not in answers or rejected not in answers:
            continue
        prompt = [*history, {"role": "user", "content": prompt_text}]
        yield {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": answers[chosen][1]}],
            "rejected": [{"role": "assistant", "content": answers[rejected][1]}],
            "prompt_text": prompt_text,
            "campaign": outcome["campaign"],
            "task": outcome["task"],
            "turn": index,
            "turns": len(turns),
            "round": outcome["round"],
            "chosen_slot": chosen,
            "rejected_slot": rejected,
            "chosen_model": answers[chosen][0],
            "rejected_model": answers[rejected][0],
            "tie": preference == 0,
            "preference": preference,
            "margin": abs(preference),
            "scores_chosen": _scores(outcome["scores"], index, chosen),
            "scores_rejected": _scores(outcome["scores"], index, rejected),
            "evidence_chosen": answers[chosen][2],
            "evidence_rejected": answers[rejected][2],
            "method": outcome["method"],
            "rubric": outcome["rubric"],
            "rubric_version": outcome["rubric_version"],
            "agreement": agreement,
            "repository": outcome["repository"],
            "base_commit": outcome["base_commit"],
            "kind": outcome["kind"],
            "scenario_title": outcome["scenario_title"],
        }
        history = [*prompt, {"role": "assistant", "content": answers[chosen][1]}]


def export_rows(outcomes: QuerySet, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    """Rows in task order; outcomes stream through a server-side cursor, `chunk` tasks at a
    time, each chunk's answers read in one query."""
    names = list(OUTCOME_FIELDS)
    batch: list[dict[str, Any]] = []
    for values in outcomes.iterator(chunk_size=chunk):
        batch.append(dict(zip(names, values, strict=True)))
        if len(batch) >= chunk:
            yield from _rows_of_batch(batch)
            batch = []
    if batch:
        yield from _rows_of_batch(batch)


def _rows_of_batch(batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    turns = _answers([outcome["task"] for outcome in batch])
    for outcome in batch:
        yield from rows_of(outcome, turns.get(outcome["task"], []))


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


def parquet_chunks(
    rows: Iterator[dict[str, Any]], rows_per_group: int = ROW_GROUP
) -> Iterator[bytes]:
    """Parquet, one row group per `rows_per_group` rows, each sent as soon as it is written."""
    spool = _Spool()
    with pq.ParquetWriter(
        pa.PythonFile(spool, mode="w"), SCHEMA, compression="zstd", write_statistics=STATISTICS
    ) as writer:
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
