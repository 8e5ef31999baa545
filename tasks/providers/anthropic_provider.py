"""Anthropic Messages through the official SDK."""

from __future__ import annotations

import time
from typing import Any

import anthropic
from anthropic.types import Message

from tasks.providers.base import (
    ClientCache,
    GenerationRequest,
    GenerationResult,
    PermanentProviderError,
    RetryableProviderError,
    map_sdk_error,
    resolve_api_key,
)


def _make_client(base_url: str | None, api_key: str, timeout: float) -> anthropic.Anthropic:
    # No SDK retries: the generation job is the one retry layer.
    return anthropic.Anthropic(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


_clients = ClientCache(_make_client)


class AnthropicProvider:
    def __init__(self, *, base_url: str | None, api_key_env: str | None, timeout: float) -> None:
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeout = timeout

    def generate(self, request: GenerationRequest) -> GenerationResult:
        params = _params(request)
        api_key = resolve_api_key(self.api_key_env, self.base_url)
        client = _clients.get(self.base_url, api_key, self.timeout)
        started = time.perf_counter()
        try:
            raw = client.messages.with_raw_response.create(**params)
            message = raw.parse()
        except (anthropic.AnthropicError, ValueError) as exc:
            raise map_sdk_error(exc, anthropic, provider="anthropic", api_key=api_key) from None
        latency_ms = (time.perf_counter() - started) * 1000
        return _result(message, raw.request_id, latency_ms)


def _params(request: GenerationRequest) -> dict[str, Any]:
    if request.temperature is not None:
        # SDK 2.x dropped the argument and sends an API version that answers 400 to it.
        raise PermanentProviderError(
            f"anthropic SDK {anthropic.__version__} does not accept temperature; "
            "remove it from the model version's parameters"
        )
    # The Messages API has no seed; it stays in the request record only.
    params: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens,
    }
    if request.system_prompt:
        params["system"] = request.system_prompt
    return params


def _result(message: object, request_id: str | None, latency_ms: float) -> GenerationResult:
    # The SDK does not validate responses, so a wrong shape shows up here.
    blocks = getattr(message, "content", None)
    if not isinstance(message, Message) or not isinstance(blocks, list):
        raise RetryableProviderError("anthropic sent a malformed response: no content blocks")
    texts = [getattr(b, "text", None) for b in blocks if getattr(b, "type", None) == "text"]
    if not all(isinstance(t, str) for t in texts):
        raise RetryableProviderError(
            "anthropic sent a malformed response: a text block has no text"
        )
    output = "".join(t for t in texts if t)
    if not output.strip():
        raise PermanentProviderError(
            f"anthropic answered without text (stop_reason {message.stop_reason})"
        )
    usage = message.usage
    return GenerationResult(
        output=output,
        provider_request_id=request_id or message.id,
        usage={
            "input_tokens": getattr(usage, "input_tokens", None),
            "output_tokens": getattr(usage, "output_tokens", None),
        },
        response_meta={
            "id": message.id,
            "model": message.model,
            "stop_reason": message.stop_reason,
        },
        latency_ms=latency_ms,
    )
