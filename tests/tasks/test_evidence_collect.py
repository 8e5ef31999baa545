"""Candidates' changes applied and tested in the sandbox, on small local git repositories."""

import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tasks.evidence.collect import collect
from tests.tasks.evidence_repos import CALC, PYTEST, config, make_repo, workplace_for


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repos")


@pytest.fixture
def workplace(tmp_path):
    return workplace_for(tmp_path / "evidence")


def run(repo, workplace, changes=None, *, diff=None, **options):
    diff = diff if diff is not None else repo.diff(changes)
    sha, findings = collect(
        source_url=repo.url,
        base_commit=repo.commit,
        diff=diff,
        config=config(**options),
        workplace=workplace,
    )
    assert sha in (None, repo.commit)
    return {f.key: f for f in findings}


def test_a_change_that_makes_the_tests_pass(repo, workplace):
    found = run(
        repo,
        workplace,
        {
            "calc.py": CALC + "\n\ndef sub(a, b):\n    return a - b\n",
            "test_sub.py": "from calc import sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n",
        },
    )
    assert found["evidence.apply"].passed
    tests = found["evidence.tests"]
    assert tests.passed, tests.details["output"]
    assert tests.details["counts"] == {"passed": 2}
    assert tests.details["exit_code"] == 0 and tests.details["command"] == PYTEST
    assert tests.message == "Tests pass (2 passed)."
    assert tests.details["bears_on"] == "correctness"


def test_a_change_that_breaks_the_tests(repo, workplace):
    found = run(repo, workplace, {"calc.py": "def add(a, b):\n    return a - b\n"})
    assert found["evidence.apply"].passed
    tests = found["evidence.tests"]
    assert not tests.passed
    assert tests.details["counts"] == {"failed": 1}
    assert tests.details["exit_code"] == 1 and tests.details["stopped_by"] is None
    assert "assert -1 == 5" in tests.details["output"]


def test_a_change_that_does_not_apply_fails_cleanly_and_runs_nothing(repo, workplace):
    diff = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n"
        " def multiply(a, b):\n-    return a / b\n+    return a * b\n"
    )
    found = run(repo, workplace, diff=diff)
    assert set(found) == {"evidence.apply"}
    applied = found["evidence.apply"]
    assert not applied.passed
    assert applied.message == "The change does not apply to the base commit."
    assert "patch does not apply" in applied.details["output"]


def test_a_change_reaching_outside_the_tree_does_not_apply(repo, workplace, tmp_path):
    diff = "--- /dev/null\n+++ b/../../escaped.txt\n@@ -0,0 +1 @@\n+out\n"
    found = run(repo, workplace, diff=diff)
    assert not found["evidence.apply"].passed
    assert set(found) == {"evidence.apply"}
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_missing_commit_or_an_empty_diff_is_reported_not_raised(repo, workplace):
    missing = collect(
        source_url=repo.url,
        base_commit="0" * 40,
        diff=repo.diff({"calc.py": CALC + "# more\n"}),
        config=config(),
        workplace=workplace,
    )
    assert missing[0] is None
    assert not missing[1][0].passed and missing[1][0].details["stage"] == "checkout"
    found = run(repo, workplace, diff="")
    assert found["evidence.apply"].message == "The answer holds no diff."


def test_a_change_that_loops_forever_is_stopped_at_the_wall_time(repo, workplace):
    started = time.monotonic()
    found = run(
        repo,
        workplace,
        {"test_loop.py": "def test_loop():\n    while True:\n        pass\n"},
        timeout_seconds=2,
    )
    tests = found["evidence.tests"]
    assert not tests.passed
    assert tests.details["stopped_by"] == "wall_time"
    assert tests.message == "Stopped at the wall-time limit (2 s)."
    assert 2 <= tests.details["duration_seconds"] < 5
    assert time.monotonic() - started < 15


def test_a_change_that_opens_network_connections_is_refused(repo, workplace):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    probe = (
        "import socket\n\n\ndef test_network():\n"
        f"    for host in ('127.0.0.1', '10.11.12.13', '1.1.1.1'):\n"
        "        try:\n"
        f"            socket.create_connection((host, {port}), timeout=3)\n"
        "            print('CONNECTED', host)\n"
        "        except OSError as exc:\n"
        "            print('REFUSED', host, type(exc).__name__, exc.errno)\n"
    )
    try:
        found = run(repo, workplace, {"test_network.py": probe})
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the host's port
    finally:
        listener.close()
    output = found["evidence.tests"].details["output"]
    assert "CONNECTED" not in output
    assert "REFUSED 127.0.0.1 ConnectionRefusedError" in output  # the sandbox's own loopback
    assert "REFUSED 10.11.12.13 OSError 101" in output  # ENETUNREACH: no route out at all
    assert "REFUSED 1.1.1.1 OSError 101" in output


def test_a_change_that_writes_outside_its_work_tree_is_refused(repo, workplace, tmp_path):
    host_target = tmp_path / "escaped.txt"
    probe = (
        "import os\n\n\ndef test_escape():\n"
        f"    for path in ({str(host_target)!r}, '/usr/escaped.txt', '/etc/escaped.txt',\n"
        "                 '../escaped.txt', os.path.expanduser('~/../escaped.txt')):\n"
        "        try:\n"
        "            with open(path, 'w') as handle:\n"
        "                handle.write('x')\n"
        "            print('WROTE', path)\n"
        "        except OSError as exc:\n"
        "            print('REFUSED', path, exc.strerror)\n"
        "    with open('inside.txt', 'w') as handle:\n"
        "        handle.write('the work tree itself is writable')\n"
        "    print('WROTE INSIDE')\n"
    )
    found = run(repo, workplace, {"test_escape.py": probe})
    output = found["evidence.tests"].details["output"]
    assert found["evidence.tests"].passed, output
    assert "WROTE INSIDE" in output
    assert "WROTE /" not in output and "WROTE ." not in output
    assert output.count("REFUSED") == 5
    assert not host_target.exists()
    assert not Path("/usr/escaped.txt").exists() and not Path("/etc/escaped.txt").exists()
    assert not list((tmp_path / "evidence").rglob("escaped.txt"))


def _sandbox_processes(uid_base: int, count: int) -> Counter:
    """Processes per sandbox uid (other sandboxes on the machine hold other uids)."""
    found: Counter = Counter()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uid = int(status.split("\nUid:\t", 1)[1].split("\t", 1)[0])
        if uid_base <= uid < uid_base + count:
            found[uid] += 1
    return found


def test_a_change_that_forks_without_end_is_held_to_the_process_limit(tmp_path, repo):
    workplace = workplace_for(tmp_path / "evidence", processes=12)
    bomb = (
        "import os\n\n\ndef test_bomb():\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    )
    sandbox = workplace.sandbox
    before = _sandbox_processes(sandbox.uid_base, sandbox.uid_count)
    peak: Counter = Counter()
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak.update(  # keeps each uid's highest count
                {
                    uid: n - peak[uid]
                    for uid, n in _sandbox_processes(sandbox.uid_base, sandbox.uid_count).items()
                    if n > peak[uid] and uid not in before
                }
            )
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        found = run(repo, workplace, {"test_bomb.py": bomb}, timeout_seconds=3)
    finally:
        done.set()
        watcher.join()
    tests = found["evidence.tests"]
    assert tests.details["stopped_by"] == "wall_time"
    ((uid, most),) = peak.most_common(1)
    assert 1 < most <= 12  # it did fork, and never past the limit
    assert _sandbox_processes(sandbox.uid_base, sandbox.uid_count)[uid] == 0  # all gone after


def test_a_change_that_prints_gigabytes_is_cut(repo, workplace):
    flood = (
        "import sys\n\n\ndef test_flood():\n"
        "    chunk = 'x' * (1024 * 1024)\n"
        "    for _ in range(4096):\n"  # 4 GiB
        "        sys.stdout.write(chunk)\n"
    )
    started = time.monotonic()
    found = run(repo, workplace, {"test_flood.py": flood})
    tests = found["evidence.tests"]
    assert not tests.passed
    assert tests.details["stopped_by"] == "output_size"
    assert tests.message == "Stopped: the output passed its size limit."
    assert tests.details["output_bytes"] <= 64 * 1024 + 64 * 1024
    assert len(tests.details["output"]) <= 8000
    assert time.monotonic() - started < 20


def test_ruff_and_bandit_report_on_the_changed_files_only(repo, workplace):
    repo.commit_files({"legacy.py": "import os\nimport subprocess\n"})  # not the change's fault
    risky = (
        "import os\nimport subprocess\n\n\n"
        "def install(requirement):\n"
        "    subprocess.call('pip install ' + requirement, shell=True)\n"
    )
    lint_only = {"linters": ["ruff", "bandit"], "test_command": []}
    found = run(repo, workplace, {"install.py": risky}, **lint_only)
    assert "evidence.tests" not in found
    ruff = found["evidence.ruff"]
    assert not ruff.passed
    assert ruff.details["files"] == ["install.py"]
    assert ruff.details["codes"] == {"F401": 1}
    assert ruff.message == "ruff: 1 issue."
    assert ruff.details["issues"][0]["file"] == "install.py"
    bandit = found["evidence.bandit"]
    assert not bandit.passed and bandit.details["bears_on"] == "security"
    assert {i["test_id"] for i in bandit.details["issues"]} >= {"B602"}
    assert bandit.details["by_severity"]["high"] >= 1
    clean = run(repo, workplace, {"calc.py": CALC + "# clearer\n"}, **lint_only)
    assert clean["evidence.ruff"].passed and clean["evidence.bandit"].passed
    docs_only = run(repo, workplace, {"README": "docs\n"}, linters=["ruff"], test_command=[])
    assert docs_only["evidence.ruff"].message == "No Python file changed."


def test_shell_metacharacters_in_task_and_model_text_are_never_interpreted(repo, workplace):
    hostile = [
        "; rm -rf /workspace #",
        "$(touch PWNED_1)",
        "`touch PWNED_2`",
        "a\nb; touch PWNED_3",
    ]
    changes = {
        "x; touch PWNED_4.py": "print('; rm -rf /')\n",
        "$(touch PWNED_5).py": "value = '$(touch PWNED_6)'\n",
        "`touch PWNED_7`.py": "# `rm -rf /`\n",
    }
    command = [
        "python",
        "-c",
        "import os, sys; print(repr(sys.argv[1:])); print(sorted(os.listdir('.')))",
        *hostile,
    ]
    found = run(repo, workplace, changes, linters=["ruff", "bandit"], test_command=command)
    assert found["evidence.apply"].passed
    output = found["evidence.tests"].details["output"]
    lines = output.splitlines()
    assert lines[0] == repr(hostile)  # each argument arrived whole, unexpanded
    listing = eval(lines[1])
    assert set(changes) <= set(listing) and "calc.py" in listing
    assert not [name for name in listing if name.startswith("PWNED")]
    for linter in ("evidence.ruff", "evidence.bandit"):
        assert sorted(found[linter].details["files"]) == sorted(changes)
