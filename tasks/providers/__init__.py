"""Model providers: one `generate(request) -> result` call per provider kind.

The SDK clients are configured without retries; retryable failures raise
`RetryableProviderError` and the generation job decides when to try again.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from tasks.providers.base import (
    GenerationRequest,
    GenerationResult,
    Message,
    PermanentProviderError,
    Provider,
    ProviderError,
    RetryableProviderError,
)
from tasks.providers.replay import RecordingProvider, ReplayProvider

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "Message",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "RecordingProvider",
    "ReplayProvider",
    "RetryableProviderError",
    "build_provider",
]

PROVIDER_KINDS = ("openai", "anthropic", "replay")


def build_provider(
    kind: str, *, base_url: str | None, api_key_env: str | None, timeout: float
) -> Provider:
    """The provider for a model version. The API key is read from `api_key_env` at call time.

    Replay answers from `settings.REPLAY_RECORDINGS_DIR`; when `settings.REPLAY_RECORD_TO` is
    set, live providers append their exchanges there.
    """
    if kind == "replay":
        return ReplayProvider(Path(settings.REPLAY_RECORDINGS_DIR))
    provider: Provider
    # The SDKs are imported here: they are slow to import and only the workers call them.
    if kind == "openai":
        from tasks.providers.openai_provider import OpenAIProvider

        provider = OpenAIProvider(base_url=base_url, api_key_env=api_key_env, timeout=timeout)
    elif kind == "anthropic":
        from tasks.providers.anthropic_provider import AnthropicProvider

        provider = AnthropicProvider(base_url=base_url, api_key_env=api_key_env, timeout=timeout)
    else:
        raise PermanentProviderError(f"unknown provider kind {kind!r}")
    record_to = getattr(settings, "REPLAY_RECORD_TO", None)
    if record_to:
        provider = RecordingProvider(provider, Path(record_to))
    return provider
