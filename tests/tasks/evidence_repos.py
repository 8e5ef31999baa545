"""Small local git repositories and candidate diffs for the evidence tests, and a test workplace."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tasks.evidence.checks import EvidenceConfig
from tasks.evidence.collect import Workplace
from tasks.evidence.sandbox import Limits, Sandbox
from tasks.evidence.sources import SourceCache

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}
PYTEST = ["python", "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
CALC = "def add(a, b):\n    return a + b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV, "HOME": str(cwd)},
    )
    return done.stdout


@dataclass
class LocalRepo:
    path: Path
    commit: str

    @property
    def url(self) -> str:
        return str(self.path)

    def commit_files(self, files: dict[str, str], message: str = "more") -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        self.commit = git(self.path, "rev-parse", "HEAD").strip()
        return self.commit

    def diff(self, changes: dict[str, str | None]) -> str:
        """The unified diff (as git writes it) of these changes to the base commit."""
        scratch = self.path.parent / f"{self.path.name}-scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        git(self.path.parent, "clone", "-q", str(self.path), str(scratch))
        git(scratch, "checkout", "-q", self.commit)
        for name, content in changes.items():
            target = scratch / name
            if content is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
        git(scratch, "add", "-A")
        diff = git(scratch, "diff", "--cached")
        shutil.rmtree(scratch)
        return diff


def make_repo(root: Path, files: dict[str, str] | None = None) -> LocalRepo:
    """A repository whose one test passes at its only commit."""
    path = root / "origin"
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    repo = LocalRepo(path, "")
    repo.commit_files(files or {"calc.py": CALC, "test_calc.py": TEST_CALC}, "base")
    return repo


def workplace_for(root: Path, **limits) -> Workplace:
    settings = {"wall_seconds": 60, "cpu_seconds": 60, "output_bytes": 64 * 1024, **limits}
    return Workplace(
        sandbox=Sandbox(
            toolchain=[sys.prefix, sys.base_prefix],
            path=[f"{sys.prefix}/bin", "/usr/local/bin", "/usr/bin", "/bin"],
            env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        ),
        cache=SourceCache(root=root / "cache", max_bytes=64 * 1024**2),
        work_root=root / "work",
        limits=Limits(**settings),
    )


def config(timeout_seconds: int = 60, **fields) -> EvidenceConfig:
    return EvidenceConfig(
        test_command=tuple(fields.get("test_command", PYTEST)),
        linters=tuple(fields.get("linters", ())),
        timeout_seconds=timeout_seconds,
    )
