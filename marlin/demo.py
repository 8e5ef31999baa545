"""Demo data for `make run`: idempotent, so running it twice changes nothing."""

from django.db import transaction

from marlin.accounts.services import user_upsert
from tasks.models import Repository

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


@transaction.atomic
def seed_demo() -> str:
    created_users = 0
    for username, roles in DEMO_USERS.items():
        _, created = user_upsert(username=username, password=DEMO_PASSWORD, roles=roles)
        created_users += created
    created_repositories = 0
    for row in DEMO_REPOSITORIES:
        _, created = Repository.objects.get_or_create(
            full_name=row["full_name"], defaults={k: v for k, v in row.items() if k != "full_name"}
        )
        created_repositories += created
    return f"{created_users} users and {created_repositories} repositories created"
