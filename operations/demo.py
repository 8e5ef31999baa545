"""Demo data for `make run`: idempotent, so running it twice changes nothing.

The model versions use the replay provider: their answers come from `demo/recordings/`, written
by `manage.py build_demo_recordings` from the answers in `demo/answers/`.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.services import user_upsert
from rubrics.services import default_rubric
from tasks import services
from tasks.models import Campaign, ModelVersion, Repository, Task
from tasks.providers import GenerationRequest, Message

DEMO_PASSWORD = "marlin-demo"
DEMO_USERS: dict[str, list[str]] = {
    "ada": ["author"],
    "grace": ["reviewer"],
    "linus": ["reviewer"],
    "barbara": ["reviewer"],
    "edsger": ["arbiter"],
    "margaret": ["auditor"],
    "lead": ["lead"],
}
DEMO_REPOSITORIES = [
    {
        "full_name": "mlflow/mlflow",
        "url": "https://github.com/mlflow/mlflow",
        "language": "Python",
        "license": "Apache-2.0",
        "default_branch": "master",
    },
    {
        "full_name": "apache/airflow",
        "url": "https://github.com/apache/airflow",
        "language": "Python",
        "license": "Apache-2.0",
    },
    {
        "full_name": "django/django",
        "url": "https://github.com/django/django",
        "language": "Python",
        "license": "BSD-3-Clause",
    },
    {
        "full_name": "pallets/flask",
        "url": "https://github.com/pallets/flask",
        "language": "Python",
        "license": "BSD-3-Clause",
    },
]
DEMO_PARAMETERS = {
    "temperature": 0.2,
    "max_tokens": 4096,
    "seed": 7,
    "system_prompt": "You are a senior engineer. Answer with a short explanation and a unified diff.",
}
DEMO_MODEL_VERSIONS = {
    "alpha": {"slug": "alpha-2026-10", "model": "alpha-2026-10"},
    "beta": {"slug": "beta-2026-09", "model": "beta-2026-09"},
}
DEMO_CAMPAIGN = "Demo: security and refactoring"
# The demo tasks' repositories: small excerpts shipped in demo/repositories/, each made into a
# one-commit git repository when the demo is seeded, so the candidates get real evidence.
DEMO_SOURCES = {"mlflow/mlflow": "mlflow", "apache/airflow": "airflow"}
DEMO_EVIDENCE = {
    "test_command": ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
    "linters": ["ruff", "bandit"],
    "timeout_seconds": 60,
}
# Fixed so that the same files always make the same commit.
_DEMO_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "Marlin demo",
    "GIT_AUTHOR_EMAIL": "demo@marlin.invalid",
    "GIT_AUTHOR_DATE": "2026-10-01T12:00:00+00:00",
    "GIT_COMMITTER_NAME": "Marlin demo",
    "GIT_COMMITTER_EMAIL": "demo@marlin.invalid",
    "GIT_COMMITTER_DATE": "2026-10-01T12:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}
DEMO_TASKS: list[dict[str, Any]] = [
    {
        "answers": "pip-injection",
        "repository": "mlflow/mlflow",
        "kind": "security_fix",
        "scenario": {
            "title": "Fix a command injection in the pip install of model dependencies",
            "description": "Model requirements reach a shell. Block injection while allowing every "
            "legitimate whitelisted pip option.",
            "url": "https://github.com/mlflow/mlflow/pulls",
        },
        "prompt": "install_model_dependencies() builds a shell command from the model's requirements. "
        "Fix the command injection so that no requirement can run a command, while every "
        "legitimate whitelisted pip option (index URLs, find-links, binary choices) keeps working.",
    },
    {
        "answers": "metadata-refactor",
        "repository": "apache/airflow",
        "kind": "refactor",
        "scenario": {
            "title": "Reorganise how the system stores execution metadata",
            "description": "Clearer structure for execution metadata, unchanged in behaviour.",
            "url": "https://github.com/apache/airflow/pulls",
        },
        "prompt": "Execution metadata is assembled as a loose dict in several places. Reorganise how "
        "it is stored so it is clearer and defined once, without changing the stored format or "
        "any behaviour.",
    },
]


def demo_request(model_key: str, prompt: str) -> GenerationRequest:
    """The exact request the generation job sends for a demo task's first turn."""
    return GenerationRequest(
        model=DEMO_MODEL_VERSIONS[model_key]["model"],
        messages=(Message(role="user", content=prompt),),
        system_prompt=DEMO_PARAMETERS["system_prompt"],
        temperature=DEMO_PARAMETERS["temperature"],
        max_tokens=DEMO_PARAMETERS["max_tokens"],
        seed=DEMO_PARAMETERS["seed"],
    )


def demo_repository(name: str) -> tuple[Path, str]:
    """The demo repository `name` as a git repository (built once); returns (path, commit)."""
    target = Path(settings.EVIDENCE_DIR) / "demo-repositories" / name
    if not (target / ".git").is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=target.parent))
        shutil.copytree(Path(settings.BASE_DIR) / "demo" / "repositories" / name, building / "tree")
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
            _git(building / "tree", *args)
        with contextlib.suppress(OSError):  # another process built it first: use theirs
            (building / "tree").rename(target)
        shutil.rmtree(building, ignore_errors=True)
    return target, _git(target, "rev-parse", "HEAD").strip()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(  # noqa: S603 (fixed arguments)
        ["git", *args],  # noqa: S607
        cwd=cwd,
        env={**os.environ, **_DEMO_COMMIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def demo_answer(task: dict[str, Any], model_key: str) -> str:
    path = Path(settings.BASE_DIR) / "demo" / "answers" / f"{task['answers']}.{model_key}.md"
    return path.read_text()


@transaction.atomic
def seed_demo() -> str:
    created_users = 0
    for username, roles in DEMO_USERS.items():
        _, created = user_upsert(username=username, password=DEMO_PASSWORD, roles=roles)
        created_users += created
    commits = {}
    for row in DEMO_REPOSITORIES:
        repository, _ = Repository.objects.get_or_create(
            full_name=row["full_name"], defaults={k: v for k, v in row.items() if k != "full_name"}
        )
        if repository.full_name in DEMO_SOURCES:
            path, commits[repository.full_name] = demo_repository(
                DEMO_SOURCES[repository.full_name]
            )
            if repository.source_url != str(path):
                Repository.objects.filter(pk=repository.pk).update(source_url=str(path))
    lead = User.objects.get(username="lead")
    rubric = default_rubric(actor=lead)
    versions = [
        ModelVersion.objects.get_or_create(
            slug=spec["slug"],
            defaults={"provider": "replay", "model": spec["model"], "parameters": DEMO_PARAMETERS},
        )[0]
        for spec in DEMO_MODEL_VERSIONS.values()
    ]
    campaign = Campaign.objects.filter(name=DEMO_CAMPAIGN).first() or services.campaign_create(
        actor=lead,
        name=DEMO_CAMPAIGN,
        rubric_version=rubric.versions.get(number=1),
        model_versions=versions,
        reviewers_per_task=3,
        evidence=DEMO_EVIDENCE,
    )
    author = User.objects.get(username="ada")
    created_tasks = 0
    for spec in DEMO_TASKS:
        if Task.objects.filter(
            campaign=campaign, scenario_title=spec["scenario"]["title"]
        ).exists():
            continue
        task = services.task_create(
            actor=author,
            campaign=campaign,
            repository=Repository.objects.get(full_name=spec["repository"]),
            base_commit=commits[spec["repository"]],
            kind=spec["kind"],
            scenario=spec["scenario"],
            prompt=spec["prompt"],
        )
        services.task_generate(task=task, actor=author)
        created_tasks += 1
    return f"{created_users} users and {created_tasks} tasks created (generation queued)"
