import pytest

from tests.harness.servers import RedisServer


@pytest.mark.django_db
def test_liveness_answers_without_authentication(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_checks_database_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.integration
@pytest.mark.django_db
def test_readiness_is_503_while_the_broker_is_down_and_200_when_it_is_back(
    client, settings, tmp_path
):
    broker = RedisServer(tmp_path)
    settings.CELERY_BROKER_URL = broker.url
    broker.start()
    try:
        assert client.get("/readyz").status_code == 200

        broker.stop()
        response = client.get("/readyz")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "not_ready"
        assert "broker" in error["message"]
        assert set(error["details"]["failing"]) == {"broker"}

        broker.start()  # on the same port
        assert client.get("/readyz").status_code == 200
    finally:
        broker.stop()
