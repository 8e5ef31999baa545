"""Deciding a closed round: verdict majority first, then the rubric version's disagreement policy.

Pure functions over plain data, so the rules are tested without a database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

ScoreKey = tuple[int, str, str]  # (turn, slot, criterion)


@dataclass(frozen=True)
class ReviewData:
    preference: int
    verdict: str
    scores: list[dict[str, Any]]


@dataclass(frozen=True)
class RoundDecision:
    kind: str  # "changes_requested", "rejected", "consensus" or "disagreement"
    preference: float
    scores: list[dict[str, Any]]
    agreement: dict[str, Any]
    disagreement: dict[str, Any] = field(default_factory=dict)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def scores_by_key(scores: list[dict[str, Any]]) -> dict[ScoreKey, int]:
    return {(s["turn"], s["slot"], s["criterion"]): s["score"] for s in scores}


def mean_scores(reviews: list[ReviewData]) -> list[dict[str, Any]]:
    collected: dict[ScoreKey, list[int]] = defaultdict(list)
    for review in reviews:
        for key, score in scores_by_key(review.scores).items():
            collected[key].append(score)
    return [
        {"turn": turn, "slot": slot, "criterion": criterion, "score": round(mean(values), 3)}
        for (turn, slot, criterion), values in sorted(collected.items())
    ]


def decide_round(reviews: list[ReviewData], policy: dict[str, Any]) -> RoundDecision:
    """The round's result. Verdicts decide by strict majority; otherwise the policy decides.

    Ties in preference: 0 is its own sign, so a tie and a preference for A disagree when the
    policy requires signs to agree; all ties agree.
    """
    count = len(reviews)
    verdicts = Counter(r.verdict for r in reviews)
    preferences = [r.preference for r in reviews]
    collected: dict[ScoreKey, list[int]] = defaultdict(list)
    for review in reviews:
        for key, score in scores_by_key(review.scores).items():
            collected[key].append(score)
    spreads = {key: max(values) - min(values) for key, values in collected.items()}
    threshold = policy.get("max_score_spread", 1)
    over = [
        {
            "turn": t,
            "slot": s,
            "criterion": c,
            "scores": collected[(t, s, c)],
            "spread": spread,
            "threshold": threshold,
        }
        for (t, s, c), spread in sorted(spreads.items())
        if spread > threshold
    ]
    signs = sorted({_sign(p) for p in preferences})
    signs_agree = len(signs) == 1
    agreement = {
        "reviews": count,
        "verdicts": dict(verdicts),
        "preferences": preferences,
        "preference_signs_agree": signs_agree,
        "preference_spread": max(preferences) - min(preferences),
        "max_score_spread": max(spreads.values(), default=0),
        "criteria_over_threshold": len(over),
    }
    final_preference = round(mean(preferences), 3)
    final_scores = mean_scores(reviews)
    if verdicts["request_changes"] * 2 > count:
        return RoundDecision("changes_requested", final_preference, final_scores, agreement)
    if verdicts["reject"] * 2 > count:
        return RoundDecision("rejected", final_preference, final_scores, agreement)
    preference_disagrees = policy.get("preference_sign_must_agree", True) and not signs_agree
    if not preference_disagrees and not over:
        return RoundDecision("consensus", final_preference, final_scores, agreement)
    disagreement = {
        "preference": {
            "values": preferences,
            "signs_agree": signs_agree,
            "spread": agreement["preference_spread"],
            "disagrees": bool(preference_disagrees),
        },
        "criteria": over,
    }
    return RoundDecision("disagreement", final_preference, final_scores, agreement, disagreement)


# Failing evidence that contradicts the top score on the criterion it bears on. Lint findings are
# left out: a style nit does not make a top maintainability score wrong.
CONTRADICTING_EVIDENCE = {"evidence.apply", "evidence.tests", "evidence.bandit"}


def evidence_conflicts(
    reviews: list[tuple[int, list[dict[str, Any]]]],
    failing: dict[tuple[int, str], list[dict[str, Any]]],
    criteria: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Scores at the top of their criterion's scale given to a candidate whose evidence on that
    criterion failed. `reviews` are (review id, scores); `failing` maps (turn, slot) to the
    candidate's failed evidence results {"key", "message", "bears_on"}."""
    top = {c["key"]: c["scale_max"] for c in criteria}
    conflicts = []
    for review_id, scores in reviews:
        for score in scores:
            if score["score"] < top.get(score["criterion"], float("inf")):
                continue
            for evidence in failing.get((score["turn"], score["slot"]), []):
                if evidence["key"] in CONTRADICTING_EVIDENCE and (
                    evidence["bears_on"] == score["criterion"]
                ):
                    conflicts.append(
                        {
                            "review": review_id,
                            "turn": score["turn"],
                            "slot": score["slot"],
                            "criterion": score["criterion"],
                            "score": score["score"],
                            "evidence": evidence["key"],
                            "message": evidence["message"],
                        }
                    )
    return conflicts
