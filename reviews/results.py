"""Reads for campaign results: the database aggregates, the pure modules do the statistics.

Every function runs a fixed number of queries, whatever the number of tasks and reviews: the
counting happens in PostgreSQL (GROUP BY over outcomes, reviews and their JSON scores), and only
aggregated rows reach Python.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from reviews import leaderboard as lb
from reviews import reliability
from reviews.models import Arbitration, Outcome, Review
from tasks.models import Campaign, ModelVersion, Task, TaskSlot

_TABLES = {
    "outcome": Outcome._meta.db_table,
    "review": Review._meta.db_table,
    "arbitration": Arbitration._meta.db_table,
    "task": Task._meta.db_table,
    "slot": TaskSlot._meta.db_table,
    "user": get_user_model()._meta.db_table,
}


def _rows(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql.format(**_TABLES), params)
        return cursor.fetchall()


def campaign_family(campaign: Campaign) -> list[int]:
    """The campaign and its reruns (and theirs) sharing its rubric version, ids in order.

    Walks from the first campaign of the chain down; one query per generation.
    """
    root = campaign
    while root.rerun_of_id is not None:
        root = Campaign.objects.only("id", "rerun_of_id", "rubric_version_id").get(
            pk=root.rerun_of_id
        )
    found = [root.pk]
    frontier = [root.pk]
    while frontier:
        frontier = list(
            Campaign.objects.filter(
                rerun_of_id__in=frontier, rubric_version_id=campaign.rubric_version_id
            ).values_list("pk", flat=True)
        )
        found.extend(frontier)
    if root.rubric_version_id != campaign.rubric_version_id:
        found = [pk for pk in found if pk != root.pk] or [campaign.pk]
    return sorted(set(found))


PAIR_COUNTS_SQL = """
    SELECT sa.model_version_id, sb.model_version_id,
           COUNT(*) FILTER (WHERE o.preference < 0),
           COUNT(*) FILTER (WHERE o.preference = 0),
           COUNT(*) FILTER (WHERE o.preference > 0)
    FROM {outcome} o
    JOIN {task} t ON t.id = o.task_id
    JOIN {slot} sa ON sa.task_id = o.task_id AND sa.label = 'A'
    JOIN {slot} sb ON sb.task_id = o.task_id AND sb.label = 'B'
    WHERE t.campaign_id = ANY(%s)
    GROUP BY 1, 2
"""


def pair_counts(campaign_ids: list[int]) -> list[lb.PairCount]:
    """Per (model at slot A, model at slot B): outcomes won by A, tied, won by B."""
    rows = _rows(PAIR_COUNTS_SQL, [campaign_ids])
    return [lb.PairCount(a, b, wins, ties, losses) for a, b, wins, ties, losses in rows]


def criterion_aggregates(campaign_ids: list[int]) -> list[tuple[int, str, int, float, float]]:
    """Per (model version, criterion): count, mean and sample sd of the outcomes' scores."""
    # jsonb_to_recordset parses each score once into typed columns instead of three ->> reads.
    return _rows(
        """
        SELECT s.model_version_id, e.criterion, COUNT(*), AVG(e.score), STDDEV_SAMP(e.score)
        FROM {outcome} o
        JOIN {task} t ON t.id = o.task_id
        JOIN {slot} s ON s.task_id = o.task_id
        CROSS JOIN LATERAL jsonb_to_recordset(o.scores) AS e(slot text, criterion text, score float)
        WHERE t.campaign_id = ANY(%s) AND e.slot = s.label
        GROUP BY 1, 2
        """,
        [campaign_ids],
    )


def campaign_leaderboard(
    *, campaign: Campaign, scope: str = "campaign", rounds: int = 200, seed: int = 0
) -> dict[str, Any]:
    """The leaderboard of one campaign, or of its family of reruns (same rubric version)."""
    ids = campaign_family(campaign) if scope == "family" else [campaign.pk]
    slugs = dict(
        ModelVersion.objects.filter(campaigns__in=ids).distinct().values_list("pk", "slug")
    )
    counts = lb.counts_from_pairs(pair_counts(ids), keys=sorted(slugs, key=slugs.get))
    table = lb.leaderboard(counts, labels=slugs, rounds=rounds, seed=seed)
    criteria: dict[str, dict[str, Any]] = {slugs.get(pk, pk): {} for pk in counts.keys}
    for model_pk, criterion, n, mean, sd in criterion_aggregates(ids):
        criteria.setdefault(slugs.get(model_pk, model_pk), {})[criterion] = lb.mean_ci(n, mean, sd)
    for row in table["ranking"]:
        row["criteria"] = criteria.get(row["model_version"], {})
    return {
        "campaign": campaign.pk,
        "scope": scope,
        "campaigns": ids,
        "rubric": {
            "slug": campaign.rubric_version.rubric.slug,
            "version": campaign.rubric_version.number,
        },
        "pairs_method": "each completed task is one judgment: its final preference between the "
        "model versions at slots A and B (model versions take turns at A; with more than two "
        "slots the others count in the criterion means only)",
        "criteria_method": "mean of the final (outcome) scores per turn and slot; 95% Student-t "
        "interval; n is the number of scored answers. One rubric version, so the means compare "
        "across groups and campaigns",
        **table,
    }


def campaign_agreement(*, campaign: Campaign) -> dict[str, Any]:
    """Inter-rater agreement, arbitration rate, position bias and per-reviewer figures."""
    cells = _rows(
        """
        SELECT e->>'criterion', r.task_id, r.round, e->>'turn', e->>'slot',
               (e->>'score')::float, COUNT(*)
        FROM {review} r
        JOIN {task} t ON t.id = r.task_id
        CROSS JOIN LATERAL jsonb_array_elements(r.scores) e
        WHERE t.campaign_id = %s
        GROUP BY 1, 2, 3, 4, 5, 6
        """,
        [campaign.pk],
    )
    by_criterion: dict[str, list[tuple[Any, float, int]]] = {}
    for criterion, task_id, round_, turn, slot, score, count in cells:
        by_criterion.setdefault(criterion, []).append(((task_id, round_, turn, slot), score, count))
    criteria = {}
    for criterion, rows in sorted(by_criterion.items()):
        matrix, domain = reliability.value_counts_matrix(rows)
        criteria[criterion] = {
            "units": int((matrix.sum(axis=1) >= 2).sum()),
            "judgments": int(matrix.sum()),
            "krippendorff_alpha_interval": reliability.alpha_interval(matrix, domain),
            "exact_agreement": reliability.exact_agreement(matrix),
        }

    rounds = _rows(
        """
        SELECT r.task_id, r.round, ARRAY_AGG(r.preference ORDER BY r.id)
        FROM {review} r JOIN {task} t ON t.id = r.task_id
        WHERE t.campaign_id = %s
        GROUP BY 1, 2
        """,
        [campaign.pk],
    )
    closed = [prefs for _, _, prefs in rounds if len(prefs) >= campaign.reviewers_per_task]

    ((a_wins, ties, b_wins, outcomes, by_arbitration, opened, reviews_a, reviews_t, reviews_b),) = (
        _rows(
            """
            SELECT COUNT(*) FILTER (WHERE o.preference < 0),
                   COUNT(*) FILTER (WHERE o.preference = 0),
                   COUNT(*) FILTER (WHERE o.preference > 0),
                   COUNT(*),
                   COUNT(*) FILTER (WHERE o.method = 'arbitration'),
                   (SELECT COUNT(*) FROM {arbitration} a JOIN {task} t ON t.id = a.task_id
                    WHERE t.campaign_id = %s),
                   (SELECT COUNT(*) FILTER (WHERE r.preference < 0) FROM {review} r
                    JOIN {task} t ON t.id = r.task_id WHERE t.campaign_id = %s),
                   (SELECT COUNT(*) FILTER (WHERE r.preference = 0) FROM {review} r
                    JOIN {task} t ON t.id = r.task_id WHERE t.campaign_id = %s),
                   (SELECT COUNT(*) FILTER (WHERE r.preference > 0) FROM {review} r
                    JOIN {task} t ON t.id = r.task_id WHERE t.campaign_id = %s)
            FROM {outcome} o JOIN {task} t ON t.id = o.task_id
            WHERE t.campaign_id = %s
            """,
            [campaign.pk] * 5,
        )
    )

    people = _rows(
        """
        SELECT r.reviewer_id, u.username, COUNT(*),
               COUNT(o.id),
               COUNT(*) FILTER (WHERE o.id IS NOT NULL AND SIGN(r.preference) = SIGN(o.preference)),
               COUNT(*) FILTER (WHERE a.state = 'resolved'),
               COUNT(*) FILTER (WHERE a.state = 'resolved'
                                AND SIGN(r.preference) <> SIGN(a.preference))
        FROM {review} r
        JOIN {task} t ON t.id = r.task_id
        JOIN {user} u ON u.id = r.reviewer_id
        LEFT JOIN {outcome} o ON o.task_id = r.task_id AND o.round = r.round
        LEFT JOIN {arbitration} a ON a.task_id = r.task_id AND a.round = r.round
        WHERE t.campaign_id = %s
        GROUP BY 1, 2
        ORDER BY 2
        """,
        [campaign.pk],
    )
    return {
        "campaign": campaign.pk,
        "criteria": criteria,
        "criteria_method": "Krippendorff's alpha (interval level, the krippendorff package) and "
        "exact agreement (share of pairs of reviewers giving the same score) over units = "
        "(task, round, turn, slot) scored by two or more reviewers",
        "preference_sign": reliability.preference_sign_agreement([prefs for _, _, prefs in rounds]),
        "arbitration": {
            "rounds_closed": len(closed),
            "arbitrations": opened,
            "rate": round(opened / len(closed), 4) if closed else None,
            "outcomes": outcomes,
            "outcomes_by_arbitration": by_arbitration,
        },
        "position_bias": {
            "outcomes": reliability.position_bias(a_wins, b_wins, ties),
            "reviews": reliability.position_bias(reviews_a, reviews_b, reviews_t),
        },
        "reviewers": [
            {
                "reviewer": username,
                "id": reviewer_id,
                "reviews": n,
                "with_outcome": with_outcome,
                "agrees_with_outcome": agree,
                "agreement_with_outcome": round(agree / with_outcome, 4) if with_outcome else None,
                "arbitrated": arbitrated,
                "overruled": overruled,
            }
            for reviewer_id, username, n, with_outcome, agree, arbitrated, overruled in people
        ],
    }
