import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_the_suite_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_deploy_checks_are_clean_under_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marlin.settings",
        "DEBUG": "false",
        "SECRET_KEY": "production-like-secret-" + "k" * 50,
        "ALLOWED_HOSTS": "marlin.example.org",
    }
    env.pop("SECURE_SSL_REDIRECT", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "marlin.settings", "DEBUG": "false"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_prepared_statements_can_be_turned_off_and_a_bad_threshold_is_refused(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from core.env import env_int_or_off

    monkeypatch.delenv("DB_PREPARE_THRESHOLD", raising=False)
    assert env_int_or_off("DB_PREPARE_THRESHOLD", 1) == 1
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "OFF")
    assert env_int_or_off("DB_PREPARE_THRESHOLD", 1) is None
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "5")
    assert env_int_or_off("DB_PREPARE_THRESHOLD", 1) == 5
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "soon")
    with pytest.raises(ImproperlyConfigured, match="DB_PREPARE_THRESHOLD must be an integer"):
        env_int_or_off("DB_PREPARE_THRESHOLD", 1)
