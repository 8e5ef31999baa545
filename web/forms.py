"""HTML form fields to the request bodies the API's input serializers check.

The web pages validate input with the same serializers as the REST API, so a rule (a prompt's
length, a score's scale, a verdict's choices) is written once.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import QueryDict

_SCORE_FIELD = re.compile(r"^score-(?P<turn>\d+)-(?P<slot>[A-H])-(?P<criterion>[\w-]+)$")


def integer_or_raw(value: str | None) -> Any:
    """An integer when the text is one; otherwise the text, for the serializer to refuse."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value


def scores_from(data: QueryDict) -> list[dict[str, Any]]:
    """`score-<turn>-<slot>-<criterion>` fields (and `comment-…` beside them) as score items."""
    items = []
    for name, value in data.items():
        match = _SCORE_FIELD.match(name)
        if not match or value == "":
            continue
        item = {
            "turn": int(match["turn"]),
            "slot": match["slot"],
            "criterion": match["criterion"],
            "score": integer_or_raw(value),
        }
        comment = data.get(f"comment-{match['turn']}-{match['slot']}-{match['criterion']}", "")
        if comment:
            item["comment"] = comment
        items.append(item)
    return items


def without_empty(body: dict[str, Any]) -> dict[str, Any]:
    """Drops absent values, so the serializer reports a missing field rather than a null one."""
    return {key: value for key, value in body.items() if value is not None}


def task_body(data: QueryDict) -> dict[str, Any]:
    return without_empty(
        {
            "campaign": integer_or_raw(data.get("campaign")),
            "repository": integer_or_raw(data.get("repository")),
            "base_commit": data.get("base_commit", ""),
            "kind": data.get("kind", ""),
            "scenario": {
                "title": data.get("title", ""),
                "description": data.get("description", ""),
                "url": data.get("url", ""),
            },
            "prompt": data.get("prompt", ""),
        }
    )


def review_body(data: QueryDict) -> dict[str, Any]:
    return without_empty(
        {
            "scores": scores_from(data),
            "preference": integer_or_raw(data.get("preference")),
            "rationale": data.get("rationale", ""),
            "verdict": data.get("verdict") or None,
            "comments": data.get("comments", ""),
            "time_spent_seconds": integer_or_raw(data.get("time_spent_seconds")),
        }
    )


def revision_from(data: QueryDict, criteria: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The optional rubric revision of a resolve form: edited guidance, a policy change, why."""
    if data.get("revise") != "on":
        return None
    revised = [
        {**criterion, "guidance": data.get(f"guidance-{criterion['key']}", criterion["guidance"])}
        for criterion in criteria
    ]
    revision: dict[str, Any] = {"rationale": data.get("revision_rationale", "")}
    if revised != criteria:
        revision["criteria"] = revised
    spread = data.get("max_score_spread", "")
    if spread != "":
        revision["policy"] = {"max_score_spread": integer_or_raw(spread)}
    return revision


def resolve_body(data: QueryDict, criteria: list[dict[str, Any]]) -> dict[str, Any]:
    return without_empty(
        {
            "decision": data.get("decision") or None,
            "preference": integer_or_raw(data.get("preference")),
            "scores": scores_from(data) or None,
            "rationale": data.get("rationale", ""),
            "rubric_revision": revision_from(data, criteria),
        }
    )
