import pytest

pytestmark = pytest.mark.django_db


def test_token_is_exchanged_for_username_and_password(api, make_user):
    make_user("reviewer", username="rita")
    response = api.post(
        "/api/v1/auth/token/", {"username": "rita", "password": "correct horse battery staple"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/me/").json()["username"] == "rita"


def test_token_refuses_a_wrong_password_in_the_error_format(api, make_user):
    make_user(username="rita")
    response = api.post("/api/v1/auth/token/", {"username": "rita", "password": "nope"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "non_field_errors" in error["details"]


def test_login_is_throttled_with_429(api, make_user):
    make_user(username="rita")
    statuses = [
        api.post("/api/v1/auth/token/", {"username": "rita", "password": "guess"}).status_code
        for _ in range(7)
    ]
    assert statuses[:5] == [400] * 5
    assert statuses[-1] == 429
    response = api.post("/api/v1/auth/token/", {"username": "rita", "password": "guess"})
    assert response.json()["error"]["code"] == "throttled"
    assert response.json()["error"]["details"]["retry_after_seconds"] > 0


def test_me_lists_the_callers_roles(api, make_user, django_assert_num_queries):
    user = make_user("reviewer", "author")
    api.as_user(user)
    with django_assert_num_queries(2):  # token + user, then the user's groups
        response = api.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json() == {
        "id": user.id,
        "username": user.username,
        "roles": ["author", "reviewer"],
    }


def test_me_needs_authentication(api):
    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_deactivated_user_has_no_roles(make_user):
    user = make_user("lead", is_active=False)
    assert user.roles == frozenset()
