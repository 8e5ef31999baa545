"""Running untrusted commands: bubblewrap for isolation, kernel resource limits, a watchdog.

What enforces what:
- bubblewrap (`bwrap`): no network (a new, empty network namespace), its own PID namespace (the
  whole tree dies with it), a root file system built from read-only binds of the system and the
  toolchain, one writable bind (the work tree), a private /tmp of bounded size, no capabilities.
- `setpriv`, first inside the sandbox: switches to a sandbox uid taken from a pool, one uid per
  running sandbox, with no supplementary groups, no capabilities and no_new_privs.
- `prlimit`, next: RLIMIT_CPU (CPU seconds, per process), RLIMIT_AS (address space, per process),
  RLIMIT_NPROC (processes of the sandbox uid: since the uid is used by this sandbox alone, it is
  the sandbox's process count), RLIMIT_FSIZE (largest file written), RLIMIT_CORE 0.
- this module: wall time (a deadline; the bwrap process is killed, and its PID namespace with
  it) and output size (stdout and stderr are read as they stream; past the bound the run is
  killed and the output kept so far is returned).

The sandbox needs root on the worker: bubblewrap then builds the namespaces itself and the
command runs as a real, unprivileged uid of the host, so the host's file permissions and the
per-uid process limit apply to it. Command lines are argument lists, never shell strings.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

# Where the work tree appears inside the sandbox.
WORKSPACE = "/workspace"
# The sandbox's private tmpfs (not the host's /tmp).
SANDBOX_TMP = "/tmp"  # noqa: S108
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc only in part: what the dynamic loader, Python, git and TLS libraries read.
_ETC_FILES = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl",
    "/etc/ca-certificates",
)
_READ_CHUNK = 64 * 1024


class SandboxUnavailableError(RuntimeError):
    """The machine cannot run the sandbox (missing tool, not root, no free uid)."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 120.0
    cpu_seconds: int = 120
    memory_bytes: int = 2 * 1024**3
    processes: int = 64
    file_bytes: int = 256 * 1024**2
    output_bytes: int = 1024**2
    tmp_bytes: int = 256 * 1024**2


@dataclass(frozen=True)
class RunResult:
    argv: list[str]
    exit_code: int | None  # None when the watchdog killed the run
    output: str
    output_bytes: int  # bytes the command printed (up to the bound, then the run is stopped)
    duration_seconds: float
    timed_out: bool = False
    output_cut: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.output_cut

    @property
    def stopped_by(self) -> str | None:
        if self.timed_out:
            return "wall_time"
        if self.output_cut:
            return "output_size"
        if self.exit_code is not None and self.exit_code >= 128:
            # bwrap reports a child killed by a signal as 128 + the signal's number
            return {
                signal.SIGXCPU: "cpu_time",
                signal.SIGXFSZ: "file_size",
                signal.SIGKILL: "killed",
            }.get(self.exit_code - 128, f"signal {self.exit_code - 128}")
        return None


@dataclass(frozen=True)
class Sandbox:
    """How sandboxes are built on this worker; each run of a `Session` starts a fresh one."""

    toolchain: Sequence[str] = ()  # extra read-only directories (a Python prefix, a virtualenv)
    path: Sequence[str] = ("/usr/local/bin", "/usr/bin", "/bin")
    uid_base: int = 1_900_000_000
    uid_count: int = 64
    # One lock file per uid, shared by every process of the machine that uses this uid range.
    lock_dir: Path = Path(tempfile.gettempdir()) / "marlin-sandbox-uids"
    env: Mapping[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def open(self, tree: Path) -> Iterator[Session]:
        """Takes a sandbox uid and gives it the work tree, for one or more runs over that tree."""
        with self.sandbox_uid() as uid:
            chown_tree(tree, uid)
            # bwrap enters the tree before it drops to the uid, without capabilities
            tree.chmod(0o755)
            yield Session(self, tree, uid)

    @contextlib.contextmanager
    def sandbox_uid(self) -> Iterator[int]:
        """A uid no other running sandbox holds, for as long as the block runs."""
        if os.geteuid() != 0:
            raise SandboxUnavailableError("the sandbox needs root to run commands as a sandbox uid")
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        start = os.getpid() % max(self.uid_count, 1)
        for n in range(self.uid_count):
            uid = self.uid_base + (start + n) % self.uid_count
            handle = os.open(self.lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                continue
            try:
                yield uid
            finally:
                os.close(handle)  # closing releases the lock
            return
        raise SandboxUnavailableError(f"all {self.uid_count} sandbox uids are in use")

    def bwrap_args(self, tree: Path, limits: Limits, read_only: Mapping[str, Path]) -> list[str]:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailableError("bubblewrap (bwrap) is not installed")
        args = [
            bwrap,
            "--unshare-net",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            # setpriv needs these two to switch to the sandbox uid, and then drops them too
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
        ]
        made: set[str] = {"/"}
        for system_dir in _SYSTEM_DIRS:
            path = Path(system_dir)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), system_dir]
            elif path.is_dir():
                args += ["--ro-bind", system_dir, system_dir]
            made.add(system_dir)
        args += ["--perms", "0755", "--dir", "/etc"]
        made.add("/etc")
        for etc in _ETC_FILES:
            args += ["--ro-bind-try", etc, etc]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", SANDBOX_TMP]
        made.update(("/proc", "/dev", SANDBOX_TMP))
        for directory in self.toolchain:
            resolved = str(Path(directory).resolve())
            # Shown at its own path and, when a symlink leads to it, at the path named too
            # (PATH and the virtualenv's scripts name the latter).
            for inside in dict.fromkeys([resolved, os.path.abspath(directory)]):
                if any(inside == d or inside.startswith(d + "/") for d in _SYSTEM_DIRS):
                    continue
                args += _parents(inside, made)
                args += ["--ro-bind", resolved, inside]
                made.add(inside)
        args += ["--bind", str(tree), WORKSPACE]
        for inside, host in read_only.items():
            args += _parents(inside, made)
            args += ["--ro-bind", str(host), inside]
        args += ["--chdir", WORKSPACE, "--clearenv"]
        environment = {
            "PATH": ":".join(self.path),
            "HOME": SANDBOX_TMP,
            "TMPDIR": SANDBOX_TMP,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CEILING_DIRECTORIES": WORKSPACE,
            **self.env,
        }
        for name, value in environment.items():
            args += ["--setenv", name, value]
        args.append("--")
        return args


@dataclass(frozen=True)
class Session:
    """Runs in sandboxes over one work tree, as one sandbox uid."""

    sandbox: Sandbox
    tree: Path
    uid: int

    def run(
        self,
        argv: Sequence[str],
        *,
        limits: Limits,
        read_only: Mapping[str, Path] | None = None,
    ) -> RunResult:
        """Runs argv in the work tree inside a new sandbox. `read_only` maps sandbox paths to
        host files shown read-only (inputs such as the diff)."""
        argv = [str(a) for a in argv]
        command = [
            *self.sandbox.bwrap_args(self.tree, limits, read_only or {}),
            *_setpriv(self.uid),
            *_prlimit(limits),
            *argv,
        ]
        result = run_watched(command, limits=limits)
        # The kernel tears the PID namespace down after bwrap dies, not at once: wait, so the
        # next run under this uid starts from zero processes and the tree is no longer written.
        _wait_until_gone(self.uid)
        return replace(result, argv=argv)


def processes_of(uid: int) -> list[int]:
    """Processes whose real uid is `uid` (read from status: a process that made itself
    non-dumpable shows /proc/PID as root's)."""
    found = []
    marker = f"\nUid:\t{uid}\t"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as status:
                if marker in status.read():
                    found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _wait_until_gone(uid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while processes_of(uid):
        if time.monotonic() > deadline:
            raise SandboxUnavailableError(f"processes of sandbox uid {uid} outlived their sandbox")
        time.sleep(0.01)


def _parents(path: str, made: set[str]) -> list[str]:
    """--dir for each missing parent, world-readable: bwrap would copy the host's modes, and a
    parent such as /root (0700) would hide a toolchain bound under it from the sandbox uid."""
    args: list[str] = []
    for parent in reversed(Path(path).parents):
        name = str(parent)
        if name not in made:
            args += ["--perms", "0755", "--dir", name]
            made.add(name)
    return args


def _setpriv(uid: int) -> list[str]:
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def _prlimit(limits: Limits) -> list[str]:
    def pair(value: int) -> str:
        return f"{value}:{value}"

    return [
        "prlimit",
        f"--cpu={pair(limits.cpu_seconds)}",
        f"--as={pair(limits.memory_bytes)}",
        f"--nproc={pair(limits.processes)}",
        f"--fsize={pair(limits.file_bytes)}",
        "--core=0:0",
        "--",
    ]


def chown_tree(tree: Path, uid: int) -> None:
    """Gives the work tree to the sandbox uid (symbolic links themselves, never their targets)."""
    os.chown(tree, uid, uid, follow_symlinks=False)
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def run_watched(
    argv: Sequence[str],
    *,
    limits: Limits,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> RunResult:
    """Runs argv (no shell) and returns its merged output, killed past the wall time or the
    output bound. Used for the sandbox, and by the benchmark for the same command run bare."""
    started = time.monotonic()
    deadline = started + limits.wall_seconds
    process = subprocess.Popen(  # noqa: S603 (an argument list, never a shell)
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,  # its own process group, so the kill reaches every process
        close_fds=True,
    )
    assert process.stdout is not None
    kept = bytearray()
    seen = 0
    timed_out = output_cut = False
    fd = process.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not selector.select(timeout=remaining):
                continue
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                break  # every writer closed the pipe
            seen += len(chunk)
            room = limits.output_bytes - len(kept)
            kept += chunk[:room]
            if seen > limits.output_bytes:
                output_cut = True
                break
    if timed_out or output_cut:
        _kill_group(process)
    else:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
    process.stdout.close()
    return RunResult(
        argv=list(argv),
        exit_code=None if (timed_out or output_cut) else process.returncode,
        output=kept.decode("utf-8", errors="replace"),
        output_bytes=seen,
        duration_seconds=time.monotonic() - started,
        timed_out=timed_out,
        output_cut=output_cut,
    )


def _kill_group(process: subprocess.Popen) -> None:
    # Killing bwrap ends the sandbox: its init gets SIGKILL (--die-with-parent) and the kernel
    # then kills everything left in the PID namespace.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
