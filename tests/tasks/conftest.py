import pytest

from tests.fakes.model_server import FakeModelServer
from tests.tasks.factories import ModelVersionFactory, make_campaign


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
