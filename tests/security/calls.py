"""Sending one request of the matrix and reading what came back, streamed or not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from rest_framework.test import APIClient


class _RollbackError(Exception):
    pass


@contextmanager
def rolled_back() -> Iterator[None]:
    """Whatever the block writes is undone: each endpoint meets the same world."""
    try:
        with transaction.atomic():
            yield
            raise _RollbackError
    except _RollbackError:
        pass


def send(client: APIClient, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    call = getattr(client, method.lower())
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        return call(path, body if body is not None else {}, format="json", **extra)
    return call(path, **extra)


def content_of(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def json_of(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None
