"""Helpers the role pages share: a candidate as a blind card, the rubric, score grids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString

from tasks.models import Candidate
from tasks.validators import criterion_of
from web.highlight import diff_html, prose_of


@dataclass
class CandidateCard:
    """What a page shows of one answer: its slot label, never its model (unless `revealed`)."""

    slot: str
    state: str
    prose: str
    diff: SafeString | None
    validators: list[Any]
    failed: bool
    attempts: int
    revealed: str = ""


@dataclass
class TurnView:
    index: int
    prompt: str
    cards: list[CandidateCard] = field(default_factory=list)
    new_this_round: bool = False


def card_for(candidate: Candidate, *, reveal: bool = False) -> CandidateCard:
    return CandidateCard(
        slot=candidate.slot.label,
        state=candidate.state,
        prose=prose_of(candidate.output, candidate.diff),
        diff=diff_html(candidate.diff) if candidate.diff else None,
        validators=list(candidate.validator_results.all()),
        # Raw provider errors can name the provider or its URL; only the fact is shown.
        failed=bool(candidate.error),
        attempts=candidate.attempts,
        revealed=candidate.slot.model_version.slug if reveal else "",
    )


def turn_views(turns: Any) -> list[TurnView]:
    """Prefetched turns (with `candidates`) as blind side-by-side columns."""
    return [TurnView(t.index, t.prompt, [card_for(c) for c in t.candidates.all()]) for t in turns]


@dataclass
class ScoreCell:
    name: str
    slot: str
    value: Any
    choices: list[int]


@dataclass
class ScoreRow:
    turn: int
    criterion: dict[str, Any]
    cells: list[ScoreCell]


def score_grid(
    turns: list[TurnView], criteria: list[dict[str, Any]], values: dict[str, Any]
) -> list[ScoreRow]:
    """One row per (turn, criterion), one select per slot, named as forms.scores_from reads."""
    rows = []
    for turn in turns:
        for criterion in criteria:
            choices = list(range(criterion["scale_min"], criterion["scale_max"] + 1))
            cells = []
            for card in turn.cards:
                name = f"score-{turn.index}-{card.slot}-{criterion['key']}"
                cells.append(ScoreCell(name, card.slot, values.get(name, ""), choices))
            rows.append(ScoreRow(turn.index, criterion, cells))
    return rows


def checks_by_criterion(turns: list[TurnView]) -> dict[str, list[tuple[int, str, Any]]]:
    """criterion key -> [(turn, slot, result)] for the checks (validators and evidence) that bear
    on it, so reviewers see them side by side."""
    found: dict[str, list[tuple[int, str, Any]]] = {}
    for turn in turns:
        for card in turn.cards:
            for result in card.validators:
                criterion = criterion_of(result.key)
                if criterion:
                    found.setdefault(criterion, []).append((turn.index, card.slot, result))
    return found


def rubric_rows(turns: list[TurnView], criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each criterion with the checks that bear on it, for `web/_rubric.html`."""
    checks = checks_by_criterion(turns)
    return [{"criterion": c, "checks": checks.get(c["key"], [])} for c in criteria]
