"""The worker-side cache of repository sources: one bare clone per source, one tree per commit.

A source is cloned once; a commit it lacks triggers one fetch. Each commit's tree is extracted
once (`git archive`, unpacked with tarfile's "data" filter) and copied into a fresh work tree
for each run. Trees and clones are evicted least recently used first once the cache passes its
size bound. Processes on one machine share the cache: a lock file per source serialises them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_REMOTE = re.compile(r"^(?:https?|ssh|git|file)://[^\s]+$")
# Transports that run programs (ext::) are refused whatever the git configuration says.
_GIT = [
    "git",
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "advice.detachedHead=false",
]
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS": "/bin/false",
}


class SourceError(Exception):
    """The repository cannot be cloned, or does not hold the commit."""


def validate_source_url(value: str) -> str:
    """A git URL (https, http, ssh, git, file) or an absolute local path; raises ValueError."""
    value = value.strip()
    if not value:
        return value
    if any(ord(c) < 32 for c in value):
        raise ValueError("The source URL may not contain control characters.")
    if _REMOTE.match(value):
        if urlsplit(value).password is not None:
            raise ValueError("Credentials do not belong in the source URL.")
        return value
    if value.startswith("/"):
        return value
    raise ValueError(
        "Give a git URL (https://, http://, ssh://, git://, file://) or an absolute local path."
    )


def validate_commit(value: str) -> str:
    if not _COMMIT.match(value):
        raise SourceError(f"{value!r} is not a hexadecimal commit SHA")
    return value


@dataclass(frozen=True)
class SourceCache:
    root: Path
    max_bytes: int
    git_timeout: float = 600.0

    def checkout(self, *, source_url: str, commit: str, into: Path) -> str:
        """Copies the tree of `commit` into `into` (created here); returns the full commit SHA."""
        validate_commit(commit)
        entry = self.root / hashlib.sha256(source_url.encode()).hexdigest()[:32]
        entry.mkdir(parents=True, exist_ok=True)
        with _locked(entry / "lock"):
            mirror = self._mirror(entry, source_url)
            sha = self._resolve(mirror, commit)
            tree = self._tree(entry, mirror, sha)
            shutil.copytree(tree, into, symlinks=True)
            now = time.time()
            os.utime(tree, (now, now))
            os.utime(mirror, (now, now))
        self.prune()
        return sha

    def _mirror(self, entry: Path, source_url: str) -> Path:
        mirror = entry / "mirror.git"
        if mirror.is_dir():
            return mirror
        partial = entry / "mirror.partial"
        shutil.rmtree(partial, ignore_errors=True)
        self._git("clone", "--bare", "--quiet", "--", source_url, str(partial))
        partial.rename(mirror)
        _write_size(mirror)
        return mirror

    def _resolve(self, mirror: Path, commit: str) -> str:
        sha = self._rev_parse(mirror, commit)
        if sha is None:
            self._git("-C", str(mirror), "fetch", "--quiet", "origin", "+refs/*:refs/*")
            _write_size(mirror)
            sha = self._rev_parse(mirror, commit)
        if sha is None:
            raise SourceError(f"the repository has no commit {commit}")
        return sha

    def _rev_parse(self, mirror: Path, commit: str) -> str | None:
        done = subprocess.run(  # noqa: S603 (argument list; the commit is validated hex)
            [*_GIT, "-C", str(mirror), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
            capture_output=True,
            text=True,
            env={**os.environ, **_GIT_ENV},
            timeout=self.git_timeout,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else None

    def _tree(self, entry: Path, mirror: Path, sha: str) -> Path:
        tree = entry / "trees" / sha
        if tree.is_dir():
            return tree
        partial = entry / "trees" / f"{sha}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        archive = subprocess.Popen(  # noqa: S603
            [*_GIT, "-C", str(mirror), "archive", "--format=tar", sha],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **_GIT_ENV},
        )
        assert archive.stdout is not None
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            tar.extractall(partial, filter="data")
        _, stderr = archive.communicate(timeout=self.git_timeout)
        if archive.returncode != 0:
            raise SourceError(f"git archive failed: {stderr.decode(errors='replace')[-500:]}")
        partial.rename(tree)
        _write_size(tree)
        return tree

    def _git(self, *args: str) -> None:
        try:
            subprocess.run(  # noqa: S603
                [*_GIT, *args],
                capture_output=True,
                text=True,
                env={**os.environ, **_GIT_ENV},
                timeout=self.git_timeout,
                check=True,
            )
        except subprocess.CalledProcessError as exc:
            raise SourceError(f"git {args[0]} failed: {exc.stderr.strip()[-500:]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise SourceError(f"git {args[0]} took longer than {self.git_timeout:.0f} s") from exc

    def prune(self) -> int:
        """Removes least recently used trees and clones until the cache fits; returns bytes freed."""
        entries = []
        for entry in self.root.iterdir() if self.root.is_dir() else []:
            for item in [entry / "mirror.git", *(entry / "trees").glob("*")]:
                if item.is_dir() and not item.name.endswith(".partial"):
                    entries.append((item.stat().st_mtime, _read_size(item), entry, item))
        total = sum(size for _, size, _, _ in entries)
        freed = 0
        for _, size, entry, item in sorted(entries, key=lambda e: e[0]):
            if total - freed <= self.max_bytes:
                break
            with _locked(entry / "lock", wait=False) as held:
                if held:  # another process is using this source: leave it for the next prune
                    shutil.rmtree(item, ignore_errors=True)
                    _size_file(item).unlink(missing_ok=True)
                    freed += size
        return freed


def _size_file(item: Path) -> Path:
    return item.with_name(item.name + ".size")


def _write_size(item: Path) -> None:
    size = sum(p.lstat().st_size for p in item.rglob("*"))
    _size_file(item).write_text(str(size))


def _read_size(item: Path) -> int:
    try:
        return int(_size_file(item).read_text())
    except (OSError, ValueError):
        return 0


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)
