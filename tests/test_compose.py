"""The deployment files describe the whole stack: checked by reading them, no database needed."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> str:
    command = service.get("command", "")
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    return " ".join(command.split())


def test_compose_declares_every_service():
    services = _compose()["services"]
    for name in ("postgres", "redis", *APP_SERVICES):
        assert name in services, f"service {name} is missing"


def test_datastores_have_healthchecks_and_named_volumes():
    compose = _compose()
    services = compose["services"]
    top_level_volumes = compose.get("volumes") or {}
    for name in ("postgres", "redis"):
        service = services[name]
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        named = [
            volume.split(":", 1)[0]
            for volume in service.get("volumes", [])
            if isinstance(volume, str) and not volume.startswith((".", "/", "~"))
        ]
        assert named, f"{name} has no named volume"
        for volume in named:
            assert volume in top_level_volumes, f"volume {volume} is not declared at top level"
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert "ping" in str(services["redis"]["healthcheck"]["test"])


def test_web_runs_gunicorn_with_the_wsgi_app():
    command = _command(_compose()["services"]["web"])
    assert command.startswith("gunicorn ")
    assert "marlin.wsgi" in command


def test_worker_and_beat_run_celery():
    services = _compose()["services"]
    assert _command(services["worker"]).startswith("celery -A marlin.celery_app worker")
    assert _command(services["beat"]).startswith("celery -A marlin.celery_app beat")


def test_app_services_wait_for_healthy_datastores():
    services = _compose()["services"]
    for name in APP_SERVICES:
        depends_on = services[name].get("depends_on")
        assert isinstance(depends_on, dict), f"{name} must use the long depends_on form"
        for store in ("postgres", "redis"):
            assert depends_on.get(store, {}).get("condition") == "service_healthy", (
                f"{name} does not wait for {store} to be healthy"
            )


def test_ci_entry_point_runs_make_test():
    script = ROOT / ".ci" / "run"
    lines = [line.split("#", 1)[0].strip() for line in script.read_text().splitlines()]
    assert "make test" in lines
