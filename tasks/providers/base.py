"""What every model provider takes and gives back, and the errors it raises."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

Role = Literal["user", "assistant"]
PLACEHOLDER_API_KEY = "not-set"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_ERROR_DETAIL = 500
Client = TypeVar("Client")


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ("user", "assistant"):
            raise ValueError(f"unknown message role {self.role!r}")


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    messages: tuple[Message, ...]  # the whole conversation so far, ending with a user turn
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int = 4096
    seed: int | None = None

    def __post_init__(self) -> None:
        messages = tuple(self.messages)
        if not messages or messages[-1].role != "user":
            raise ValueError("a request's messages must end with a user turn")
        object.__setattr__(self, "messages", messages)
        # 0 and 0.0 (e.g. from JSON parameters) must fingerprint the same.
        if self.temperature is not None:
            object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "max_tokens", int(self.max_tokens))
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed))

    def as_dict(self) -> dict[str, Any]:
        """The canonical, JSON-able form: what is sent, for the reproducibility record."""
        return {
            "model": self.model,
            "system_prompt": self.system_prompt,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        return cls(
            model=data["model"],
            messages=tuple(Message(role=m["role"], content=m["content"]) for m in data["messages"]),
            system_prompt=data.get("system_prompt"),
            temperature=data.get("temperature"),
            max_tokens=data.get("max_tokens", 4096),
            seed=data.get("seed"),
        )

    def fingerprint(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class GenerationResult:
    output: str
    provider_request_id: str | None
    usage: dict[str, int | None]  # {"input_tokens": ..., "output_tokens": ...}
    response_meta: dict[str, Any]
    latency_ms: float


class ProviderError(Exception):
    """A provider call failed. The message never contains an API key."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableProviderError(ProviderError):
    """Worth another attempt: rate limits, server errors, timeouts, malformed answers."""

    retryable = True


class PermanentProviderError(ProviderError):
    """Another attempt would fail the same way: bad request, auth, empty answer, no recording."""

    retryable = False


class Provider(Protocol):
    def generate(self, request: GenerationRequest) -> GenerationResult: ...


def is_loopback(base_url: str | None) -> bool:
    return base_url is not None and urlsplit(base_url).hostname in _LOOPBACK_HOSTS


def resolve_api_key(api_key_env: str | None, base_url: str | None) -> str:
    """The key from the environment, now; a placeholder is allowed only on loopback."""
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        return key
    if is_loopback(base_url):
        return PLACEHOLDER_API_KEY
    if api_key_env is None:
        raise PermanentProviderError("no API key environment variable is configured")
    raise PermanentProviderError(f"the API key environment variable {api_key_env} is not set")


def redact(text: str, secret: str) -> str:
    """`text` without `secret`, shortened: error bodies can echo what was sent."""
    if secret and secret != PLACEHOLDER_API_KEY:
        text = text.replace(secret, "[redacted]")
    return text[:_MAX_ERROR_DETAIL]


def map_sdk_error(exc: Exception, sdk: ModuleType, *, provider: str, api_key: str) -> ProviderError:
    """Our error for an exception of the openai or anthropic SDK (their hierarchies match)."""
    if isinstance(exc, sdk.APITimeoutError):
        return RetryableProviderError(f"{provider} request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        return RetryableProviderError(f"{provider} connection failed: {redact(str(exc), api_key)}")
    if isinstance(exc, sdk.APIStatusError):
        status: int = exc.status_code
        detail = f"{provider} answered HTTP {status}: {redact(str(exc), api_key)}"
        if status in (408, 429) or status >= 500:
            return RetryableProviderError(detail, status=status)
        return PermanentProviderError(detail, status=status)
    if isinstance(exc, sdk.APIResponseValidationError | ValueError):
        # ValueError covers json.JSONDecodeError and pydantic's ValidationError.
        return RetryableProviderError(f"{provider} sent a malformed response: {type(exc).__name__}")
    return PermanentProviderError(
        f"{provider} call failed: {type(exc).__name__}: {redact(str(exc), api_key)}"
    )


class ClientCache(Generic[Client]):
    """SDK clients by (base URL, key, timeout), so jobs reuse connections across calls."""

    def __init__(self, factory: Callable[[str | None, str, float], Client]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._clients: dict[tuple[str | None, str, float], Client] = {}

    def get(self, base_url: str | None, api_key: str, timeout: float) -> Client:
        # A digest of the key, so the map holds no extra copy of it (the client still does).
        cache_key = (base_url, hashlib.sha256(api_key.encode()).hexdigest(), timeout)
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                client = self._clients[cache_key] = self._factory(base_url, api_key, timeout)
            return client
