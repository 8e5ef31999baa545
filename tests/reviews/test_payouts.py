"""Work log and payouts: earned with the event that earns it, approved and paid by a lead."""

import pytest
from django_fsm import TransitionNotAllowed

from audit.models import AuditEvent
from reviews.models import Arbitration, WorkLog
from reviews.services import arbitration_send_back
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, task_in_review
from tests.reviews.results_helpers import judged_task
from tests.reviews.test_api_reviews import review_round
from tests.tasks.factories import make_campaign

pytestmark = pytest.mark.django_db


def entries(**filters):
    return sorted(
        WorkLog.objects.filter(**filters).values_list("kind", "person_id", "amount_cents")
    )


def test_a_consensus_pays_each_reviewer_and_the_author_at_the_campaign_rates(api, live_campaign):
    people = reviewers(3)
    task = judged_task(api, live_campaign, (-2, -1, -3), people=people)
    assert entries(task=task) == sorted(
        [("authored", task.author_id, 28000)] + [("review", p.pk, 6000) for p in people]
    )
    review_entry = WorkLog.objects.get(kind="review", person=people[0])
    assert review_entry.time_spent_seconds == 1800
    assert review_entry.elapsed_seconds is not None and review_entry.review.reviewer == people[0]
    assert review_entry.state == "earned" and review_entry.campaign == live_campaign
    assert (
        AuditEvent.objects.filter(object_type="reviews.worklog", action="worklog.earned").count()
        == 4
    )


def test_an_arbitration_pays_the_arbiter_and_the_author_once(api, live_campaign):
    task = judged_task(api, live_campaign, (-2, 2, -1))
    arbitration = Arbitration.objects.get(task=task)
    kinds = [kind for kind, _, _ in entries(task=task)]
    assert kinds == ["arbitration", "authored", "review", "review", "review"]
    arbiter_entry = WorkLog.objects.get(kind="arbitration")
    assert (arbiter_entry.person_id, arbiter_entry.amount_cents, arbiter_entry.arbitration) == (
        arbitration.arbiter_id,
        8000,
        arbitration,
    )


def test_a_send_back_pays_the_arbiter_but_not_yet_the_author(api, live_campaign):
    task = task_in_review(live_campaign)
    task = review_round(
        api, task, reviewers(3), [review_body(task, preference=p) for p in (-2, 2, -1)]
    )
    arbiter = UserFactory(roles=["arbiter"])
    arbitration_send_back(
        arbitration=Arbitration.objects.get(task=task), actor=arbiter, rationale="Needs a test."
    )
    assert [kind for kind, _, _ in entries(task=task)] == [
        "arbitration",
        "review",
        "review",
        "review",
    ]


def test_a_rejected_task_pays_its_reviewers_only(api, live_campaign):
    campaign = make_campaign(
        model_versions=list(live_campaign.model_versions.all()),
        author_rate_cents=100,
        review_rate_cents=10,
    )
    task = task_in_review(campaign)
    review_round(api, task, reviewers(3), [review_body(task, verdict="reject")] * 3)
    assert entries(task=task, kind="authored") == []
    assert [amount for _, _, amount in entries(task=task)] == [10, 10, 10]


def test_everyone_sees_their_own_work_and_a_lead_sees_all_with_totals(
    api, make_user, live_campaign
):
    people = reviewers(3)
    task = judged_task(api, live_campaign, (-2, -1, -3), people=people)
    judged_task(api, live_campaign, (-1, -1, -1), people=people)
    own = api.as_user(people[0]).get("/api/v1/payouts/").json()
    assert [e["person"] for e in own["results"]] == [people[0].username] * 2
    assert own["totals"]["amount_cents"] == 12000 and own["totals"]["earned_cents"] == 12000
    assert own["totals"]["time_spent_seconds"] == 3600
    assert api.as_user(task.author).get("/api/v1/payouts/").json()["totals"]["entries"] == 1

    lead = make_user("lead")
    everything = api.as_user(lead).get("/api/v1/payouts/").json()
    assert everything["count"] == 8 and everything["totals"]["amount_cents"] == 6 * 6000 + 2 * 28000
    by_person = {row["username"]: row for row in everything["by_person"]}
    assert by_person[people[1].username]["amount_cents"] == 12000
    assert len(everything["by_month"]) == 1 and everything["by_month"][0]["entries"] == 8

    mine = api.as_user(lead).get("/api/v1/payouts/", {"person": people[2].pk, "kind": "review"})
    assert mine.json()["count"] == 2 and mine.json()["totals"]["amount_cents"] == 12000
    other = api.as_user(lead).get("/api/v1/payouts/", {"campaign": live_campaign.pk + 1000})
    assert other.json()["count"] == 0 and other.json()["totals"]["amount_cents"] == 0
    huge = api.as_user(lead).get("/api/v1/payouts/", {"campaign": 10**30})
    assert huge.status_code == 400
    # A person's filter never widens what a non-lead sees.
    peek = api.as_user(people[0]).get("/api/v1/payouts/", {"person": people[1].pk}).json()
    assert peek["count"] == 0


def test_a_lead_approves_then_pays_and_nobody_else_may(api, make_user, live_campaign):
    people = reviewers(3)
    judged_task(api, live_campaign, (-2, -1, -3), people=people)
    entry = WorkLog.objects.get(person=people[0])
    lead_user = make_user("lead")
    lead = api.as_user(lead_user)
    assert lead.post(f"/api/v1/payouts/{entry.pk}/pay/").status_code == 409
    approved = lead.post(f"/api/v1/payouts/{entry.pk}/approve/")
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved" and approved.json()["approved_at"]
    assert approved.json()["transitions"] == ["pay"]
    assert lead.post(f"/api/v1/payouts/{entry.pk}/approve/").status_code == 409
    paid = lead.post(f"/api/v1/payouts/{entry.pk}/pay/").json()
    assert paid["state"] == "paid" and paid["transitions"] == []
    listed = lead.get("/api/v1/payouts/", {"state": "paid"}).json()
    assert [e["id"] for e in listed["results"]] == [entry.pk]
    assert listed["totals"]["paid_cents"] == 6000
    actions = list(
        AuditEvent.objects.filter(object_type="reviews.worklog", object_id=str(entry.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["worklog.earned", "worklog.approved", "worklog.paid"]

    other = WorkLog.objects.get(person=people[1])
    reviewer = api.as_user(people[1])
    assert reviewer.post(f"/api/v1/payouts/{other.pk}/approve/").status_code == 403
    # One client: as_user switches its credentials back to the lead.
    assert api.as_user(lead_user).post("/api/v1/payouts/999999/approve/").status_code == 404


def test_the_state_is_never_assigned_by_hand(api, live_campaign):
    judged_task(api, live_campaign, (-2, -1, -3))
    entry = WorkLog.objects.first()
    with pytest.raises(AttributeError):
        entry.state = "paid"
    with pytest.raises(TransitionNotAllowed):
        entry.pay(at=None)
