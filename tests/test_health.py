import shutil
import socket
import subprocess
import time

import pytest
import redis


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(port: int, workdir) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    for _ in range(100):
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis did not start")


@pytest.mark.integration
@pytest.mark.django_db
def test_readiness_is_503_while_the_broker_is_down_and_200_when_it_is_back(
    client, settings, tmp_path
):
    port = _free_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    broker = _start_redis(port, tmp_path)
    try:
        assert client.get("/readyz").status_code == 200

        broker.terminate()
        broker.wait(timeout=10)
        response = client.get("/readyz")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "not_ready"
        assert "broker" in error["message"]
        assert set(error["details"]["failing"]) == {"broker"}

        broker = _start_redis(port, tmp_path)
        assert client.get("/readyz").status_code == 200
    finally:
        broker.terminate()
        broker.wait(timeout=10)
