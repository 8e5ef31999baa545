"""Answers from recorded exchanges, and the recorder that writes them.

A recording store is a directory of `*.jsonl` files, one exchange a line:
`{"fingerprint": ..., "request": {...}, "result": {"output", "provider_request_id", "usage",
"response_meta"}}`. A later line for the same fingerprint wins.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from tasks.providers.base import (
    GenerationRequest,
    GenerationResult,
    PermanentProviderError,
    Provider,
)

logger = logging.getLogger(__name__)

_Signature = tuple[tuple[str, int, int], ...]
_cache_lock = threading.Lock()
# Per directory: the files' (name, mtime, size) when loaded, and the recordings by fingerprint.
_cache: dict[Path, tuple[_Signature, dict[str, dict[str, Any]]]] = {}


class ReplayProvider:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        fingerprint = request.fingerprint()
        recorded = load_recordings(self.directory).get(fingerprint)
        if recorded is None:
            raise PermanentProviderError(f"no recording for request {fingerprint[:12]}")
        return GenerationResult(
            output=recorded["output"],
            provider_request_id=recorded.get("provider_request_id"),
            usage=recorded.get("usage") or {"input_tokens": None, "output_tokens": None},
            response_meta=recorded.get("response_meta") or {},
            latency_ms=(time.perf_counter() - started) * 1000,
        )


class RecordingProvider:
    """Wraps a live provider and appends each successful exchange to a recording file."""

    def __init__(self, inner: Provider, path: Path) -> None:
        self.inner = inner
        self.path = Path(path)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        result = self.inner.generate(request)
        try:
            append_recording(self.path, request, result)
        except OSError:
            # The answer is real (and paid for); losing its recording must not lose it too.
            logger.exception("could not record exchange %s", request.fingerprint()[:12])
        return result


def recording_line(request: GenerationRequest, result: GenerationResult) -> str:
    record = {
        "fingerprint": request.fingerprint(),
        "request": request.as_dict(),
        "result": {
            "output": result.output,
            "provider_request_id": result.provider_request_id,
            "usage": result.usage,
            "response_meta": result.response_meta,
        },
    }
    return json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"


def append_recording(path: Path, request: GenerationRequest, result: GenerationResult) -> None:
    """Appends one line with a single write to an O_APPEND file, so concurrent writers
    (several worker processes) do not interleave within a line."""
    data = recording_line(request, result).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # a short write to a regular file is rare but allowed
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def load_recordings(directory: Path) -> dict[str, dict[str, Any]]:
    """The recorded results by fingerprint, reloaded only when a file changed."""
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    signature: _Signature = tuple((f.name, (st := f.stat()).st_mtime_ns, st.st_size) for f in files)
    with _cache_lock:
        cached = _cache.get(directory)
        if cached is not None and cached[0] == signature:
            return cached[1]
    recordings: dict[str, dict[str, Any]] = {}
    for file in files:
        recordings.update(_read_file(file))
    with _cache_lock:
        _cache[directory] = (signature, recordings)
    return recordings


def _read_file(file: Path) -> dict[str, dict[str, Any]]:
    recordings: dict[str, dict[str, Any]] = {}
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                fingerprint, result = record["fingerprint"], record["result"]
                if not isinstance(fingerprint, str) or not isinstance(result.get("output"), str):
                    raise ValueError("no fingerprint or output")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # E.g. a line cut short by a crashed recorder: skip it, keep the rest.
                logger.warning("skipping bad recording %s:%d (%s)", file, number, exc)
                continue
            recordings[fingerprint] = result
    return recordings
