import factory

from rubrics.services import default_rubric
from tasks import services
from tasks.models import ModelVersion, Repository
from tests.accounts.factories import UserFactory


class RepositoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Repository

    full_name = factory.Sequence(lambda n: f"org/project-{n}")
    url = factory.LazyAttribute(lambda r: f"https://github.com/{r.full_name}")
    language = "Python"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    slug = factory.Sequence(lambda n: f"model-{n}")
    provider = ModelVersion.Provider.OPENAI
    model = factory.Sequence(lambda n: f"vendor-model-{n}")
    base_url = "http://127.0.0.1:9/v1"
    api_key_env = "MARLIN_TEST_PROVIDER_KEY"
    parameters = {
        "temperature": 0.2,
        "max_tokens": 2048,
        "seed": 7,
        "system_prompt": "You write code.",
    }


def make_campaign(*, model_versions=None, lead=None, **options):
    lead = lead or UserFactory(roles=["lead"])
    versions = model_versions or [ModelVersionFactory(), ModelVersionFactory()]
    rubric = default_rubric(actor=lead)
    return services.campaign_create(
        actor=lead,
        name=options.pop("name", "Campaign"),
        rubric_version=rubric.versions.get(number=1),
        model_versions=versions,
        **options,
    )


GOOD_PROMPT = "Fix the command injection in the pip install of model dependencies."
GOOD_RATIONALE = "Slot A blocks the injection and keeps the whitelisted options working."


def make_task(*, campaign=None, author=None, prompt=GOOD_PROMPT, **fields):
    campaign = campaign or make_campaign()
    author = author or UserFactory(roles=["author"])
    return services.task_create(
        actor=author,
        campaign=campaign,
        repository=fields.pop("repository", None) or RepositoryFactory(),
        base_commit=fields.pop("base_commit", "3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1"),
        kind=fields.pop("kind", "security_fix"),
        scenario=fields.pop(
            "scenario",
            {
                "title": "Block injection in pip install",
                "description": "Requirements reach a shell.",
                "url": "",
            },
        ),
        prompt=prompt,
    )
