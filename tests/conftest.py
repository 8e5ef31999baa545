import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.accounts.factories import UserFactory
from tests.fakes.model_server import FakeModelServer
from tests.tasks.factories import ModelVersionFactory, make_campaign


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # Throttle counters live in Redis and would otherwise carry over between tests.
    cache.clear()
    yield


@pytest.fixture
def make_user(db):
    def make(*roles: str, **fields):
        return UserFactory(roles=list(roles), **fields)

    return make


@pytest.fixture
def api():
    """An API client; `api.as_user(user)` authenticates it with the user's token."""

    client = APIClient()

    def as_user(user):
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    client.as_user = as_user
    return client


@pytest.fixture
def fake_models():
    with FakeModelServer() as server:
        yield server


@pytest.fixture
def live_campaign(db, fake_models, monkeypatch):
    """A campaign whose two model versions (one per wire format) answer from the fake server."""
    monkeypatch.setenv("MARLIN_TEST_PROVIDER_KEY", "sk-test-secret-never-shown-0123456789")
    versions = [
        ModelVersionFactory(
            provider="openai", model="gpt-fake-1", base_url=fake_models.openai_base_url
        ),
        ModelVersionFactory(
            provider="anthropic",
            model="claude-fake-1",
            base_url=fake_models.anthropic_base_url,
            parameters={"max_tokens": 2048, "system_prompt": "You write code."},  # no temperature
        ),
    ]
    return make_campaign(model_versions=versions)
