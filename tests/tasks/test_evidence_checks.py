"""Evidence settings, test-count parsing, source URLs and the repository cache."""

import ast
from pathlib import Path

import pytest

from tasks import evidence
from tasks.evidence.checks import EvidenceConfig, count_tests, parse_config
from tasks.evidence.sources import SourceCache, SourceError, validate_source_url
from tests.tasks.evidence_repos import CALC, make_repo


def test_a_campaign_without_evidence_settings_runs_nothing():
    assert parse_config({}) is None
    assert parse_config(None) is None


def test_evidence_settings_are_checked():
    assert parse_config(
        {"test_command": ["pytest", "-q"], "linters": ["ruff", "ruff"], "timeout_seconds": 30}
    ) == EvidenceConfig(("pytest", "-q"), ("ruff",), 30)
    for bad, says in [
        ({"test_command": "pytest -q; rm -rf /"}, "list of non-empty strings"),
        ({"test_command": ["pytest", ""]}, "list of non-empty strings"),
        ({"test_command": ["pytest"], "linters": ["pylint"]}, "linters"),
        ({"test_command": ["pytest"], "timeout_seconds": 0}, "between"),
        ({"test_command": ["pytest"], "timeout_seconds": True}, "integer"),
        ({"test_command": ["pytest"], "shell": True}, "unknown evidence settings: shell"),
        ({"timeout_seconds": 10}, "name a test_command"),
        (["pytest"], "object"),
    ]:
        with pytest.raises(ValueError, match=says):
            parse_config(bad)


def test_counts_come_from_pytest_and_unittest_summaries():
    assert count_tests("...F\n1 failed, 3 passed, 2 warnings in 0.12s\n") == {
        "failed": 1,
        "passed": 3,
        "warnings": 2,
    }
    assert count_tests("===== 2 passed, 1 error in 1.00s =====") == {"passed": 2, "errors": 1}
    unittest_out = "F.E.\n------\nRan 4 tests in 0.010s\n\nFAILED (failures=1, errors=1)\n"
    assert count_tests(unittest_out) == {"failed": 1, "errors": 1, "passed": 2}
    assert count_tests("Ran 3 tests in 0.001s\n\nOK\n") == {"passed": 3}
    assert count_tests("make: *** [test] Error 2") == {}


def test_source_urls_are_git_urls_or_absolute_paths():
    for good in ["https://example.org/a/b.git", "file:///srv/repo", "/srv/repos/b", "ssh://h/r"]:
        assert validate_source_url(good) == good
    for bad in [
        "--upload-pack=touch x",
        "ext::sh -c touch% x",
        "repo",
        "https://a b",
        "/a\nb",
        "https://u:secret@h/r",
    ]:
        with pytest.raises(ValueError):
            validate_source_url(bad)


def test_the_cache_clones_once_fetches_new_commits_and_stays_within_its_bound(tmp_path):
    repo = make_repo(tmp_path / "repos")
    first = repo.commit
    cache = SourceCache(root=tmp_path / "cache", max_bytes=10**9)
    assert cache.checkout(source_url=repo.url, commit=first[:10], into=tmp_path / "w1") == first
    assert (tmp_path / "w1" / "calc.py").read_text() == CALC
    assert not (tmp_path / "w1" / ".git").exists()
    (mirror,) = (tmp_path / "cache").glob("*/mirror.git")
    cloned = mirror.stat().st_ino
    second = repo.commit_files({"calc.py": CALC + "# second\n"})
    assert cache.checkout(source_url=repo.url, commit=second, into=tmp_path / "w2") == second
    assert (tmp_path / "w2" / "calc.py").read_text().endswith("# second\n")
    assert mirror.stat().st_ino == cloned  # fetched into the same clone, not cloned again
    assert sorted(p.name for p in mirror.parent.glob("trees/*") if p.is_dir()) == sorted(
        [first, second]
    )
    with pytest.raises(SourceError, match="no commit"):
        cache.checkout(source_url=repo.url, commit="ab" * 20, into=tmp_path / "w3")
    with pytest.raises(SourceError, match="not a hexadecimal"):
        cache.checkout(source_url=repo.url, commit="HEAD --output=x", into=tmp_path / "w4")

    tight = SourceCache(root=tmp_path / "cache", max_bytes=1)
    assert tight.prune() > 0
    assert not [p for p in (tmp_path / "cache").glob("*/trees/*") if p.is_dir()]
    assert tight.checkout(source_url=repo.url, commit=first, into=tmp_path / "w5") == first


def test_no_evidence_module_can_reach_a_shell():
    for module in Path(evidence.__file__).parent.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "shell":
                pytest.fail(f"{module}: shell= in a subprocess call")
            if isinstance(node, ast.Attribute) and node.attr in {"system", "popen"}:
                pytest.fail(f"{module}: os.{node.attr}")
