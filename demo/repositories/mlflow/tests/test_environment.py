import subprocess

import pytest

from mlflow.utils import environment


@pytest.fixture
def pip_arguments(tmp_path, monkeypatch):
    """Runs the install for real, with a `pip` that records its arguments instead of installing."""
    record = tmp_path / "pip-arguments"
    stub = tmp_path / "bin" / "pip"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nshift\nfor a in "$@"; do echo "$a"; done > "$PIP_RECORD"\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PIP_RECORD", str(record))
    monkeypatch.setenv("PATH", f"{stub.parent}:/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    real_run = subprocess.run

    def run(cmd, **kwargs):
        if isinstance(cmd, list) and cmd[:3] == ["python", "-m", "pip"]:
            cmd = ["pip", *cmd[3:]]
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(environment.subprocess, "run", run)
    return lambda: record.read_text().splitlines()


def test_a_requirement_cannot_run_a_command(pip_arguments, tmp_path):
    environment.install_model_dependencies(
        ["numpy; touch injected-1", "pandas $(touch injected-2)", "`touch injected-3`"]
    )
    assert not list(tmp_path.glob("injected-*"))


def test_whitelisted_pip_options_keep_working(pip_arguments):
    environment.install_model_dependencies(
        ["--index-url https://pypi.example.org/simple", "--prefer-binary", "numpy==1.26.4"]
    )
    assert pip_arguments() == [
        "--index-url",
        "https://pypi.example.org/simple",
        "--prefer-binary",
        "numpy==1.26.4",
    ]


def test_options_outside_the_whitelist_are_refused(pip_arguments):
    with pytest.raises(ValueError, match="--install-option"):
        environment.install_model_dependencies(["--install-option=--prefix=/opt", "numpy"])
