"""One task through all five roles in a real browser, against a live server and a real worker.

Headless Chromium (Debian's package) drives the pages; generation runs in a Celery worker process
against the fake model server. The author creates, generates, adds a follow-up and submits; three
reviewers score it (two agree, one does not); the arbiter resolves with a rubric revision; the
auditor finds every step in the task's history; the lead sees the leaderboard.

MARLIN_SCREENSHOTS=docs/screenshots also saves each role's main page there.
"""

import re

import pytest

from audit.models import AuditEvent
from reviews.models import Arbitration, ArbitrationState, Review
from rubrics.models import RubricRevision
from tasks.models import Task, TaskState
from tests.accounts.factories import UserFactory
from tests.harness.suite import on_test_database
from tests.harness.workers import Worker
from tests.security.world import PASSWORD
from tests.tasks.factories import RepositoryFactory
from tests.web.browser import VIEWPORT, chromium, screenshot_dir

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST_RETRIES = {"GENERATION_BACKOFF_BASE": "0.05", "GENERATION_BACKOFF_MAX": "0.2"}
TIMEOUT_MS = 60_000


@pytest.fixture
def people(db):
    made = {
        "author": UserFactory(username="ada", roles=["author"]),
        "arbiter": UserFactory(username="edsger", roles=["arbiter"]),
        "auditor": UserFactory(username="margaret", roles=["auditor"]),
        "lead": UserFactory(username="chief", roles=["lead"]),
    }
    for name in ("grace", "linus", "barbara"):
        made[name] = UserFactory(username=name, roles=["reviewer"])
    return made


@pytest.fixture
def web(live_server, settings):
    # The live server speaks plain HTTP on loopback: cookies must not require TLS there.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return live_server.url


def sign_in(browser, base, username):
    context = browser.new_context(viewport=VIEWPORT, base_url=base)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/app/")
    assert "/app/login/" in page.url  # anonymous visitors are sent to the login page
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/app/$"))
    return page


def shoot(page, name):
    folder = screenshot_dir()
    if folder is not None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def wait_until_generated(page, answers):
    page.locator("#task-state", has_text="draft").wait_for()
    page.locator(".candidate .diff .hl").nth(answers - 1).wait_for()


def author_creates_generates_and_submits(browser, base, campaign):
    page = sign_in(browser, base, "ada")
    page.get_by_role("link", name="New task").first.click()
    page.get_by_label("Campaign").select_option(str(campaign.pk))
    page.get_by_label("Search the catalogue").fill("mlflow")
    page.get_by_label("mlflow/mlflow").check()  # found through the htmx search
    page.get_by_label("Base commit (SHA)").fill("8c3f1e2d9b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d")
    page.get_by_label("Kind").select_option("security_fix")
    page.get_by_label("Title").fill("Fix a command injection in the pip install")
    page.get_by_label("Description").fill("Model requirements reach a shell.")
    page.get_by_label("Prompt", exact=True).fill(
        "Fix the command injection in the pip install of model dependencies, keeping "
        "every whitelisted pip option working."
    )
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r"/app/tasks/\d+/$"))
    task_id = int(re.search(r"/tasks/(\d+)/", page.url).group(1))

    page.get_by_role("button", name="Generate answers").click()
    # The progress bar polls (htmx) until the worker is done, then the page reloads itself.
    wait_until_generated(page, answers=2)
    page.get_by_label("Follow-up prompt").fill("Now add a regression test for the injection.")
    page.get_by_role("button", name="Add follow-up").click()
    page.get_by_role("button", name="Generate answers").click()
    wait_until_generated(page, answers=4)
    assert page.locator("article.candidate").count() == 4
    assert page.locator(".side-by-side").nth(0).locator("article.candidate").count() == 2
    shoot(page, "author-task")

    page.get_by_label("-2: A better").check()
    page.get_by_label("Why").fill("A blocks the injection and keeps the whitelisted options.")
    page.get_by_role("button", name="Submit for review").click()
    page.locator("#task-state", has_text="in_review").wait_for()
    page.context.close()
    return task_id


def reviewer_scores(browser, base, username, *, a, b, preference, check_draft=False):
    page = sign_in(browser, base, username)
    page.get_by_role("button", name="Start next review").first.click()
    page.wait_for_url(re.compile(r"/app/reviews/\d+/$"))
    assert page.locator("article.candidate").count() == 4  # two turns, A and B side by side
    timer = page.locator("#timer")
    first = timer.inner_text()
    page.wait_for_function(
        "t => document.getElementById('timer').textContent !== t", arg=first, timeout=5000
    )
    for select in page.locator("select[name^=score-]").all():
        slot = select.get_attribute("name").split("-")[2]
        select.select_option(str(a if slot == "A" else b))
    page.get_by_label("Rationale").fill(f"{username}: the better candidate blocks the injection.")
    if check_draft:
        # The draft survives a reload (localStorage); then the shortcuts pick preference and verdict.
        page.reload()
        page.get_by_text("Your unsaved draft was restored.").wait_for()
        assert page.get_by_label("Rationale").input_value().startswith(username)
        page.locator("body").click(position={"x": 5, "y": 5})
        for _ in range(abs(preference)):
            page.keyboard.press("[" if preference < 0 else "]")
        page.keyboard.press("a")
        assert page.locator(f"#preference-{preference}").is_checked()
        assert page.locator("#verdict-approve").is_checked()
        shoot(page, "reviewer-review")
    else:
        page.locator(f"#preference-{preference}").check()
        page.get_by_label("Approve").check()
    page.get_by_role("button", name="Submit review").click()
    page.get_by_text("Review submitted").wait_for()
    page.context.close()


def arbiter_resolves_with_a_revision(browser, base):
    page = sign_in(browser, base, "edsger")
    page.get_by_text("1 open disagreement").wait_for()
    page.get_by_role("link", name="Open disagreements").click()
    page.locator("table a").first.click()
    page.get_by_role("heading", name="The disagreement").wait_for()
    assert page.locator("article.review-card").count() == 3
    page.get_by_role("button", name="Claim this arbitration").click()
    page.get_by_text("You hold this arbitration now").wait_for()
    page.locator("#preference--1").check()
    page.get_by_label("Rationale", exact=True).fill("A closes the hole; B leaves a variant open.")
    page.get_by_label("Revise the rubric with this decision").check()
    security = page.get_by_label("Guidance for Security")
    security.fill(security.input_value() + " A security fix must name the attack it blocks.")
    preview = page.locator("#revision-preview")
    preview.locator(".hl").wait_for()  # the guidance diff, before anything is saved
    assert "must name the attack" in preview.inner_text()
    page.get_by_label("Why the rubric changes").fill("Reviewers disagreed on partial fixes.")
    shoot(page, "arbiter-arbitration")
    page.get_by_role("button", name="Save the decision").click()
    page.locator("#arbitration-state", has_text="resolved").wait_for()
    page.context.close()


def auditor_finds_every_step(browser, base, task_id):
    page = sign_in(browser, base, "margaret")
    page.goto(f"/app/audit/tasks/{task_id}/")
    entries = page.locator("li.entry")
    seen = {}
    for entry in entries.all():
        seen.setdefault(entry.get_attribute("data-action"), []).append(
            entry.locator(".actor").inner_text()
        )
    expected = {
        "task.created": ["ada"],
        "task.generation_started": ["ada", "ada"],
        "task.submitted": ["ada"],
        "review.submitted": ["grace", "linus", "barbara"],
        "task.escalated": ["barbara"],  # the last review closes the round
        "arbitration.claimed": ["edsger"],
        "arbitration.resolved": ["edsger"],
        "rubric.revised": ["edsger"],
        "task.resolved": ["edsger"],
    }
    for action, actors in expected.items():
        assert sorted(seen.get(action, [])) == sorted(actors), (action, seen.get(action))
    assert len(seen.get("candidate.generated", [])) == 4
    shoot(page, "auditor-history")
    # The trail outlives each test's data: filter to this test's reviewers (ids are never reused).
    for reviewer in ("grace", "linus", "barbara"):
        page.goto(f"/app/audit/?action=review.submitted&actor={reviewer}")
        assert page.locator("li.entry").count() == 1
    page.goto("/app/audit/")
    page.get_by_role("button", name="Verify the chain").click()
    page.get_by_text("The chain is intact").wait_for()
    page.locator("li.entry details summary").first.click()  # before and after, field by field
    shoot(page, "auditor-timeline")
    page.goto("/app/rubrics/")
    page.get_by_text("Version 1 → 2").wait_for()
    assert "must name the attack" in page.locator(".revision-entry .diff").inner_text()
    page.context.close()


def lead_sees_the_leaderboard(browser, base, campaign):
    page = sign_in(browser, base, "chief")
    page.get_by_role("link", name="Campaigns").first.click()
    page.get_by_role("link", name=campaign.name, exact=True).click()
    page.locator("svg.chart").wait_for()
    assert page.locator("svg.chart circle.point").count() == 2
    slugs = set(campaign.model_versions.values_list("slug", flat=True))
    ranked = {
        row.locator("td").nth(1).inner_text() for row in page.locator("#leaderboard tbody tr").all()
    }
    assert ranked == slugs
    shoot(page, "lead-campaign")
    page.context.close()


def test_one_task_through_all_five_roles_in_a_browser(web, people, live_campaign):
    RepositoryFactory(full_name="mlflow/mlflow", url="https://github.com/mlflow/mlflow")
    worker = Worker(env=on_test_database(FAST_RETRIES)).start()
    try:
        with chromium() as browser:
            task_id = author_creates_generates_and_submits(browser, web, live_campaign)
            reviewer_scores(browser, web, "grace", a=4, b=3, preference=-2, check_draft=True)
            reviewer_scores(browser, web, "linus", a=4, b=3, preference=-1)
            reviewer_scores(browser, web, "barbara", a=2, b=5, preference=2)
            assert Task.objects.get(pk=task_id).state == TaskState.IN_ARBITRATION
            arbiter_resolves_with_a_revision(browser, web)
            auditor_finds_every_step(browser, web, task_id)
            lead_sees_the_leaderboard(browser, web, live_campaign)
    finally:
        worker.stop()

    task = Task.objects.get(pk=task_id)
    assert task.state == TaskState.COMPLETED and task.outcome.method == "arbitration"
    assert Review.objects.filter(task=task).count() == 3
    arbitration = Arbitration.objects.get(task=task)
    assert arbitration.state == ArbitrationState.RESOLVED
    revision = RubricRevision.objects.get(arbitration_id=arbitration.pk)
    assert "must name the attack" in revision.to_version.criteria[1]["guidance"]
    # Every write came through the web pages, and the trail says so.
    origins = set(
        AuditEvent.objects.filter(object_type="tasks.task", object_id=str(task_id))
        .exclude(actor_id=None)
        .values_list("origin", flat=True)
    )
    assert origins == {"web"}
