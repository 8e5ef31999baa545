"""An oversized request body is refused with a clear 400, never a 500."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_an_oversized_body_is_a_400_in_the_error_format(api, make_user):
    client = api.as_user(make_user("lead"))
    response = client.post(
        "/api/v1/repositories/",
        {"full_name": "org/big", "url": "https://example.org/big", "language": "x" * 5000},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request_too_large"
