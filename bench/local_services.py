"""A private PostgreSQL and Redis for one benchmark run (`scripts/services.sh`), under `.local/`."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_services(prefix: str) -> tuple[Path, dict[str, str]]:
    """Starts them in a fresh folder named `prefix…`; returns it and their DATABASE_URL/REDIS_URL."""
    (ROOT / ".local").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=ROOT / ".local"))
    subprocess.run([str(ROOT / "scripts/services.sh"), "start", str(folder)], check=True)
    env = dict(
        line.split("=", 1) for line in (folder / "env").read_text().splitlines() if "=" in line
    )
    return folder, env


def stop_services(folder: Path) -> None:
    subprocess.run([str(ROOT / "scripts/services.sh"), "stop", str(folder)], check=False)
    pg = folder / "pg"
    if pg.is_symlink():  # the cluster lives in /tmp when postgres cannot reach the checkout
        shutil.rmtree(pg.resolve(), ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
