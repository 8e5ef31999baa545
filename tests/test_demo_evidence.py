"""The demo tasks' shipped repositories give their candidates real evidence."""

import pytest
from django.core.management import call_command

from operations.demo import DEMO_EVIDENCE, DEMO_SOURCES, DEMO_TASKS, demo_answer, demo_repository
from tasks.diffs import extract_diff
from tasks.evidence.checks import parse_config
from tasks.evidence.collect import collect
from tasks.models import Campaign, Repository, Task
from tests.tasks.evidence_repos import workplace_for


def test_the_same_shipped_files_always_make_the_same_commit(settings, tmp_path):
    settings.EVIDENCE_DIR = tmp_path / "one"
    first = {name: demo_repository(name)[1] for name in DEMO_SOURCES.values()}
    settings.EVIDENCE_DIR = tmp_path / "two"
    assert {name: demo_repository(name)[1] for name in DEMO_SOURCES.values()} == first
    assert demo_repository("mlflow") == (
        tmp_path / "two" / "demo-repositories" / "mlflow",
        first["mlflow"],
    )


def test_the_demo_answers_get_the_evidence_a_reviewer_should_see(settings, tmp_path):
    settings.EVIDENCE_DIR = tmp_path
    workplace = workplace_for(tmp_path / "evidence")
    verdicts = {}
    for spec in DEMO_TASKS:
        path, commit = demo_repository(DEMO_SOURCES[spec["repository"]])
        for model in ("alpha", "beta"):
            _, findings = collect(
                source_url=str(path),
                base_commit=commit,
                diff=extract_diff(demo_answer(spec, model)),
                config=parse_config(DEMO_EVIDENCE),
                workplace=workplace,
            )
            verdicts[spec["answers"], model] = {f.key: (f.passed, f.message) for f in findings}
    assert verdicts["pip-injection", "alpha"] == {
        "evidence.apply": (True, "The change applies to the base commit."),
        "evidence.ruff": (True, "ruff: no issues."),
        "evidence.bandit": (True, "bandit: no medium or high severity issues."),
        "evidence.tests": (True, "Tests pass (3 passed)."),
    }
    # Quoting closes the injection but still runs a shell and breaks the whitelisted options.
    beta = verdicts["pip-injection", "beta"]
    assert beta["evidence.tests"] == (False, "Tests fail (2 failed, 1 passed).")
    assert beta["evidence.bandit"] == (False, "bandit: 1 medium or high severity issue.")
    for model in ("alpha", "beta"):  # both refactors keep the behaviour
        assert verdicts["metadata-refactor", model]["evidence.tests"] == (
            True,
            "Tests pass (2 passed).",
        )


@pytest.mark.django_db
def test_seeding_points_the_demo_repositories_at_their_sources(settings, tmp_path):
    settings.EVIDENCE_DIR = tmp_path
    call_command("seed_demo")
    for full_name, name in DEMO_SOURCES.items():
        path, commit = demo_repository(name)
        assert Repository.objects.get(full_name=full_name).source_url == str(path)
        assert Task.objects.get(repository__full_name=full_name).base_commit == commit
    assert Campaign.objects.get().evidence == DEMO_EVIDENCE
