"""Helpers the role pages share: a candidate as a blind card, the rubric, score grids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString

from tasks.models import Candidate
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


# Which rubric criterion each candidate check bears on, so reviewers see them side by side.
VALIDATOR_CRITERION = {
    "output_present": "correctness",
    "diff_parses": "correctness",
    "no_secrets": "security",
    "output_size": "maintainability",
}


def checks_by_criterion(turns: list[TurnView]) -> dict[str, list[tuple[int, str, Any]]]:
    """criterion key -> [(turn, slot, validator result)] for the checks that bear on it."""
    found: dict[str, list[tuple[int, str, Any]]] = {}
    for turn in turns:
        for card in turn.cards:
            for result in card.validators:
                key = VALIDATOR_CRITERION.get(result.key, "")
                found.setdefault(key, []).append((turn.index, card.slot, result))
    return found
