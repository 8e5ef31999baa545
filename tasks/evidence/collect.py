"""One candidate's evidence, without the database: check out, apply, lint, test, in a sandbox."""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings

from tasks.evidence import checks
from tasks.evidence.checks import EvidenceConfig, Finding
from tasks.evidence.sandbox import Limits, Sandbox, SandboxUnavailableError
from tasks.evidence.sources import SourceCache, SourceError

DIFF_INSIDE = "/evidence/change.diff"


@dataclass(frozen=True)
class Workplace:
    """Where and how evidence is produced on this worker."""

    sandbox: Sandbox
    cache: SourceCache
    work_root: Path
    limits: Limits

    @classmethod
    def from_settings(cls) -> Workplace:
        root = Path(settings.EVIDENCE_DIR)
        toolchain = list(settings.EVIDENCE_TOOLCHAIN) or [sys.prefix, sys.base_prefix]
        return cls(
            sandbox=Sandbox(
                toolchain=toolchain,
                path=[f"{sys.prefix}/bin", "/usr/local/bin", "/usr/bin", "/bin"],
                uid_base=settings.EVIDENCE_SANDBOX_UID_BASE,
                uid_count=settings.EVIDENCE_SANDBOX_UIDS,
                # The toolchain's pytest plugins are this service's, not the repository's.
                env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
            ),
            cache=SourceCache(root=root / "cache", max_bytes=settings.EVIDENCE_CACHE_MAX_BYTES),
            work_root=root / "work",
            limits=Limits(
                cpu_seconds=settings.EVIDENCE_CPU_SECONDS,
                memory_bytes=settings.EVIDENCE_MEMORY_BYTES,
                processes=settings.EVIDENCE_MAX_PROCESSES,
                file_bytes=settings.EVIDENCE_MAX_FILE_BYTES,
                output_bytes=settings.EVIDENCE_MAX_OUTPUT_BYTES,
                tmp_bytes=settings.EVIDENCE_TMP_BYTES,
            ),
        )


def collect(
    *,
    source_url: str,
    base_commit: str,
    diff: str,
    config: EvidenceConfig,
    workplace: Workplace,
) -> tuple[str | None, list[Finding]]:
    """(the full base commit SHA, the findings). The work tree is removed afterwards."""
    workplace.work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="evidence-", dir=workplace.work_root))
    try:
        tree = workdir / "tree"
        try:
            sha = workplace.cache.checkout(source_url=source_url, commit=base_commit, into=tree)
        except SourceError as exc:
            reason = f"The base commit could not be checked out: {exc}"
            return None, [checks.unavailable_finding(reason, stage="checkout")]
        if not diff.strip():
            return sha, [checks.unavailable_finding("The answer holds no diff.", stage="diff")]
        change = workdir / "change.diff"
        change.write_text(diff)
        change.chmod(0o644)
        limits = replace(workplace.limits, wall_seconds=float(config.timeout_seconds))
        try:
            return sha, _in_sandbox(workplace, tree, change, diff, config, limits)
        except SandboxUnavailableError as exc:
            reason = f"This worker cannot run the sandbox: {exc}"
            return sha, [checks.unavailable_finding(reason, stage="sandbox")]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _in_sandbox(
    workplace: Workplace,
    tree: Path,
    change: Path,
    diff: str,
    config: EvidenceConfig,
    limits: Limits,
) -> list[Finding]:
    with workplace.sandbox.open(tree) as session:
        applied = session.run(
            [*checks.APPLY, DIFF_INSIDE], limits=limits, read_only={DIFF_INSIDE: change}
        )
        findings = [checks.apply_finding(applied)]
        if not applied.ok:
            return findings
        # Linters first: the tests may change the tree they run in.
        files = checks.changed_python_files(diff, tree)
        for linter in config.linters:
            if not files:
                findings.append(checks.nothing_to_lint(linter))
                continue
            run = session.run(checks.LINTERS[linter].command(files), limits=limits)
            findings.append(checks.LINTERS[linter].finding(run, files))
        if config.test_command:
            run = session.run(config.test_command, limits=limits)
            findings.append(checks.tests_finding(run, config.timeout_seconds))
    return findings
