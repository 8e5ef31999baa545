"""Fakes of external services for tests and benchmarks."""

from typing import Any

__all__ = ["FakeModelServer"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m tests.fakes.model_server` does not import the module twice.
    if name == "FakeModelServer":
        from tests.fakes.model_server import FakeModelServer

        return FakeModelServer
    raise AttributeError(name)
