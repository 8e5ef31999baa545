"""Building tasks that are in review, and complete score sheets for them."""

from reviews import services as review_services
from tasks import services as task_services
from tests.accounts.factories import UserFactory
from tests.tasks.factories import GOOD_RATIONALE, make_task
from tests.tasks.test_services_tasks import generate_inline

CRITERIA = ["correctness", "security", "reliability", "maintainability"]


def task_in_review(campaign, *, turns=1, author=None):
    task = make_task(campaign=campaign, author=author)
    for n in range(2, turns + 1):
        task_services.turn_add(
            task=task, actor=task.author, prompt=f"Follow-up number {n}, with tests please."
        )
    task_services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    return review_services.task_submit(
        task=task, actor=task.author, preference=1, rationale=GOOD_RATIONALE
    )


def score_sheet(task, *, a=4, b=3, turns=None, override=None, slots=("A", "B")):
    """Every criterion for each of `slots` of every turn (slot A `a`, the others `b`);
    `override` replaces single entries."""
    turn_numbers = turns or list(task.turns.values_list("index", flat=True))
    sheet = [
        {"turn": turn, "slot": slot, "criterion": criterion, "score": a if slot == "A" else b}
        for turn in turn_numbers
        for slot in slots
        for criterion in CRITERIA
    ]
    for item in sheet:
        item.update((override or {}).get((item["turn"], item["slot"], item["criterion"]), {}))
    return sheet


def review_body(task, *, preference=-2, verdict="approve", **sheet_options):
    return {
        "scores": score_sheet(task, **sheet_options),
        "preference": preference,
        "rationale": "A handles the edge cases and keeps the options working.",
        "verdict": verdict,
        "comments": "Looks right to me.",
        "time_spent_seconds": 1800,
    }


def reviewers(n):
    return [UserFactory(roles=["reviewer"]) for _ in range(n)]
