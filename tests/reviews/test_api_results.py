"""Leaderboard, agreement, export and rerun through the API, from reviews to results."""

import io
import json

import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reviews import export
from tasks.models import Campaign, Task, TaskState
from tests.reviews.helpers import reviewers
from tests.reviews.results_helpers import judged_task, slot_models
from tests.tasks.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db

RESULTS = ["leaderboard", "agreement", "export"]


@pytest.fixture
def lead(make_user):
    return make_user("lead")


@pytest.fixture
def auditor(make_user):
    return make_user("auditor")


def get(api, user, campaign, what, **params):
    return api.as_user(user).get(f"/api/v1/campaigns/{campaign.pk}/{what}/", params)


def body(response):
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("what", RESULTS)
@pytest.mark.parametrize("role", ["author", "reviewer", "arbiter"])
def test_results_are_for_leads_and_auditors_only(api, make_user, live_campaign, what, role):
    response = get(api, make_user(role), live_campaign, what)
    assert response.status_code == 403
    assert response.json()["error"]["code"]


@pytest.mark.parametrize("what", RESULTS)
def test_results_of_an_unknown_campaign_are_404(api, lead, what):
    assert get(api, lead, Campaign(pk=999_999), what).status_code == 404


def test_leaderboard_maps_slots_back_to_model_versions(api, auditor, live_campaign):
    people = reviewers(3)
    tasks = [
        judged_task(api, live_campaign, (-2, -1, -3), people=people),  # A wins
        judged_task(api, live_campaign, (-1, -1, -2), people=people),  # A wins
        judged_task(api, live_campaign, (0, 0, 0), people=people),  # tie
    ]
    assert all(t.state == TaskState.COMPLETED for t in tasks)
    winners = [slot_models(t)["A"] for t in tasks[:2]]
    response = get(api, auditor, live_campaign, "leaderboard")
    assert response.status_code == 200
    board = response.json()
    assert "Davidson" in board["method"] and board["judgments"] == 3
    assert board["bootstrap_rounds"] == 200 and board["rubric"]["slug"] == "code-change"
    rows = {row["model_version"]: row for row in board["ranking"]}
    slugs = sorted(live_campaign.model_versions.values_list("slug", flat=True))
    assert sorted(rows) == slugs
    for slug in slugs:
        wins = winners.count(slug)
        losses = 2 - wins
        assert (rows[slug]["wins"], rows[slug]["ties"], rows[slug]["losses"]) == (wins, 1, losses)
        assert rows[slug]["judgments"] == 3
        low, high = rows[slug]["rating_ci95"]
        assert low <= rows[slug]["rating"] <= high
        criteria = rows[slug]["criteria"]
        assert set(criteria) == {"correctness", "security", "reliability", "maintainability"}
        # score_sheet gives slot A 4 and slot B 3 in every review.
        slots = [slot_models(t) for t in tasks]
        expected = [4 if s["A"] == slug else 3 for s in slots]
        assert criteria["security"]["n"] == 3
        assert criteria["security"]["mean"] == pytest.approx(sum(expected) / 3, abs=1e-3)
    assert sum(p["judgments"] for p in board["pairs"]) == 6  # each judgment from both sides


def test_leaderboard_and_agreement_take_a_fixed_number_of_queries(api, lead, live_campaign):
    people = reviewers(3)

    def count(what):
        client = api.as_user(lead)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/campaigns/{live_campaign.pk}/{what}/")
            if what == "export":
                body(response)
        assert response.status_code == 200
        return len(queries)

    judged_task(api, live_campaign, (-2, -1, -3), people=people)
    first = {what: count(what) for what in RESULTS}
    judged_task(api, live_campaign, (1, 2, 1), people=people)
    judged_task(api, live_campaign, (-2, 2, -1), people=people, turns=2)
    assert {what: count(what) for what in RESULTS} == first
    # export: token+user, roles, campaign, outcomes, answers, their evidence
    assert first == {"leaderboard": 6, "agreement": 7, "export": 6}


def test_agreement_reports_reliability_bias_and_reviewers(api, lead, live_campaign):
    people = reviewers(3)
    judged_task(api, live_campaign, (-2, -1, -3), people=people)
    judged_task(api, live_campaign, (-1, -1, -1), people=people)
    judged_task(api, live_campaign, (-2, 2, -1), people=people, arbiter_preference=-2)
    response = get(api, lead, live_campaign, "agreement")
    assert response.status_code == 200
    figures = response.json()
    security = figures["criteria"]["security"]
    # Every reviewer scored A 4 and B 3: perfect agreement.
    assert security["exact_agreement"] == 1.0 and security["units"] == 6
    assert security["krippendorff_alpha_interval"] == 1.0
    assert figures["preference_sign"]["rounds"] == 3
    assert figures["preference_sign"]["unanimous"] == 2
    assert figures["arbitration"] == {
        "rounds_closed": 3,
        "arbitrations": 1,
        "rate": 0.3333,
        "outcomes": 3,
        "outcomes_by_arbitration": 1,
    }
    bias = figures["position_bias"]["outcomes"]
    assert (bias["a_wins"], bias["b_wins"], bias["ties"]) == (3, 0, 0)
    assert bias["p_value"] == 0.25
    assert figures["position_bias"]["reviews"]["a_wins"] == 8
    by_name = {r["reviewer"]: r for r in figures["reviewers"]}
    dissenter = by_name[people[1].username]
    assert (dissenter["reviews"], dissenter["agrees_with_outcome"], dissenter["overruled"]) == (
        3,
        2,
        1,
    )
    assert by_name[people[0].username]["overruled"] == 0
    assert by_name[people[0].username]["agreement_with_outcome"] == 1.0


def test_export_jsonl_has_one_row_per_task_and_turn(api, auditor, live_campaign):
    people = reviewers(3)
    preferring_a = judged_task(api, live_campaign, (-2, -1, -3), people=people, turns=2)
    preferring_b = judged_task(api, live_campaign, (2, 1, 3), people=people)
    tie = judged_task(api, live_campaign, (0, 0, 0), people=people)
    response = get(api, auditor, live_campaign, "export", format="jsonl")
    assert response.status_code == 200 and response["Content-Type"] == "application/jsonl"
    rows = [json.loads(line) for line in body(response).decode().splitlines()]
    assert [(r["task"], r["turn"]) for r in rows] == [
        (preferring_a.pk, 1),
        (preferring_a.pk, 2),
        (preferring_b.pk, 1),
        (tie.pk, 1),
    ]
    first, second, b_row, tie_row = rows
    models = slot_models(preferring_a)
    assert (first["chosen_slot"], first["chosen_model"], first["rejected_model"]) == (
        "A",
        models["A"],
        models["B"],
    )
    assert first["prompt"] == [{"role": "user", "content": first["prompt_text"]}]
    assert [m["role"] for m in second["prompt"]] == ["user", "assistant", "user"]
    assert second["prompt"][1] == first["chosen"][0]  # the chosen model's own earlier answer
    assert first["chosen"][0]["role"] == "assistant" and first["chosen"][0]["content"]
    assert first["margin"] == 2 and first["tie"] is False and first["method"] == "consensus"
    assert {s["criterion"]: s["score"] for s in first["scores_chosen"]}["security"] == 4
    assert {s["criterion"]: s["score"] for s in first["scores_rejected"]}["security"] == 3
    assert (b_row["chosen_slot"], b_row["preference"]) == ("B", 2)
    assert tie_row["tie"] is True and tie_row["margin"] == 0
    assert (first["rubric"], first["rubric_version"], first["campaign"]) == (
        "code-change",
        1,
        live_campaign.pk,
    )
    assert json.loads(first["agreement"])["preference_signs_agree"] is True


def test_export_rows_are_the_same_whatever_the_chunk_size(api, auditor, live_campaign):
    people = reviewers(3)
    judged_task(api, live_campaign, (-2, -1, -3), people=people, turns=2)
    judged_task(api, live_campaign, (2, 1, 3), people=people)
    judged_task(api, live_campaign, (0, 0, 0), people=people, turns=3)
    streamed = [
        json.loads(line)
        for line in body(get(api, auditor, live_campaign, "export")).decode().splitlines()
    ]
    outcomes = export.outcomes_for_export(campaign=live_campaign)
    for chunk in (1, 2):
        rows = list(export.export_rows(outcomes, chunk=chunk))
        assert json.loads(json.dumps(rows)) == streamed
    assert len(streamed) == 6


def test_export_parquet_reads_back_with_pyarrow(api, lead, live_campaign):
    people = reviewers(3)
    judged_task(api, live_campaign, (-2, -1, -3), people=people, turns=2)
    judged_task(api, live_campaign, (0, 0, 0), people=people)
    response = get(api, lead, live_campaign, "export", format="parquet")
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(body(response)))
    assert table.num_rows == 3
    assert {"prompt", "chosen", "rejected", "tie", "margin", "chosen_model"} <= set(
        table.column_names
    )
    rows = table.to_pylist()
    assert rows[1]["prompt"][0]["role"] == "user" and len(rows[1]["prompt"]) == 3
    assert rows[2]["tie"] is True


def test_export_refuses_an_unknown_format(api, lead, live_campaign):
    response = get(api, lead, live_campaign, "export", format="csv")
    assert response.status_code == 400
    assert "format" in response.json()["error"]["details"]


def test_an_empty_campaign_has_empty_results(api, lead, live_campaign):
    board = get(api, lead, live_campaign, "leaderboard").json()
    assert board["judgments"] == 0 and all(r["judgments"] == 0 for r in board["ranking"])
    assert get(api, lead, live_campaign, "agreement").json()["criteria"] == {}
    assert body(get(api, lead, live_campaign, "export")) == b""
    parquet = body(get(api, lead, live_campaign, "export", format="parquet"))
    assert pq.read_table(io.BytesIO(parquet)).num_rows == 0


# Rerun


def test_a_rerun_copies_the_prompts_of_completed_tasks_for_new_model_versions(
    api, lead, live_campaign
):
    people = reviewers(3)
    two_turns = judged_task(api, live_campaign, (-2, -1, -3), people=people, turns=2)
    one_turn = judged_task(api, live_campaign, (1, 1, 1), people=people)
    new_versions = [ModelVersionFactory(), ModelVersionFactory()]
    response = api.as_user(lead).post(
        f"/api/v1/campaigns/{live_campaign.pk}/rerun/",
        {"name": "Rerun", "model_versions": [v.slug for v in new_versions]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["rerun_of"] == live_campaign.pk and created["name"] == "Rerun"
    assert sorted(created["model_versions"]) == sorted(v.slug for v in new_versions)
    assert created["rubric_version"] == 1
    rerun = Campaign.objects.get(pk=created["id"])
    assert rerun.rubric_version_id == live_campaign.rubric_version_id
    copies = {t.source_task_id: t for t in Task.objects.filter(campaign=rerun)}
    assert set(copies) == {two_turns.pk, one_turn.pk}
    for source in (two_turns, one_turn):
        copy = copies[source.pk]
        assert (copy.state, copy.round, copy.author_id) == ("draft", 1, source.author_id)
        assert list(copy.turns.values_list("index", "prompt")) == list(
            source.turns.values_list("index", "prompt")
        )
        assert set(copy.slots.values_list("model_version__slug", flat=True)) == {
            v.slug for v in new_versions
        }
    assert sorted(
        Task.objects.filter(campaign=rerun, slots__label="A").values_list(
            "slots__model_version", flat=True
        )
    ) == sorted(v.pk for v in new_versions)  # balanced: each model version is A once
    family = get(api, lead, rerun, "leaderboard", scope="family").json()
    assert family["campaigns"] == [live_campaign.pk, rerun.pk] and family["judgments"] == 2


def test_only_a_lead_reruns_and_with_two_model_versions(api, make_user, lead, live_campaign):
    version = ModelVersionFactory()
    url = f"/api/v1/campaigns/{live_campaign.pk}/rerun/"
    refused = api.as_user(make_user("auditor")).post(
        url, {"name": "x", "model_versions": [version.slug]}, format="json"
    )
    assert refused.status_code == 403
    too_few = api.as_user(lead).post(
        url, {"name": "x", "model_versions": [version.slug]}, format="json"
    )
    assert too_few.status_code == 400


def test_the_export_command_writes_the_same_rows_to_a_file(api, live_campaign, tmp_path):
    from django.core.management import call_command

    people = reviewers(3)
    judged_task(api, live_campaign, (-2, -1, -3), people=people, turns=2)
    judged_task(api, live_campaign, (1, 1, 2), people=people)
    output = tmp_path / "preferences.parquet"
    call_command("export_preferences", live_campaign.pk, output, quiet=True)
    table = pq.read_table(output)
    assert table.num_rows == 3 and table.column("chosen_slot").to_pylist() == ["A", "A", "B"]
    jsonl = tmp_path / "preferences.jsonl"
    call_command("export_preferences", live_campaign.pk, jsonl, quiet=True)
    assert len(jsonl.read_text().splitlines()) == 3
