import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.accounts.factories import UserFactory


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
