"""OpenAI Chat Completions (and compatible servers) through the official SDK."""

from __future__ import annotations

import time
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessage

from tasks.providers.base import (
    ClientCache,
    GenerationRequest,
    GenerationResult,
    PermanentProviderError,
    RetryableProviderError,
    map_sdk_error,
    resolve_api_key,
)


def _make_client(base_url: str | None, api_key: str, timeout: float) -> openai.OpenAI:
    # No SDK retries: the generation job is the one retry layer.
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


_clients = ClientCache(_make_client)


class OpenAIProvider:
    def __init__(self, *, base_url: str | None, api_key_env: str | None, timeout: float) -> None:
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeout = timeout

    def generate(self, request: GenerationRequest) -> GenerationResult:
        api_key = resolve_api_key(self.api_key_env, self.base_url)
        client = _clients.get(self.base_url, api_key, self.timeout)
        started = time.perf_counter()
        try:
            raw = client.chat.completions.with_raw_response.create(**_params(request))
            completion = raw.parse()
        except (openai.OpenAIError, ValueError) as exc:
            raise map_sdk_error(exc, openai, provider="openai", api_key=api_key) from None
        latency_ms = (time.perf_counter() - started) * 1000
        return _result(completion, raw.request_id, latency_ms)


def _params(request: GenerationRequest) -> dict[str, Any]:
    messages = (
        [{"role": "system", "content": request.system_prompt}] if request.system_prompt else []
    )
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    # max_tokens is deprecated and refused by reasoning models; max_completion_tokens is not.
    params: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_completion_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.seed is not None:
        params["seed"] = request.seed
    return params


def _result(completion: object, request_id: str | None, latency_ms: float) -> GenerationResult:
    # The SDK does not validate responses, so a wrong shape shows up here.
    choices = getattr(completion, "choices", None)
    if not isinstance(completion, ChatCompletion) or not isinstance(choices, list):
        raise RetryableProviderError("openai sent a malformed response: no choices")
    if not choices:
        raise PermanentProviderError("openai answered without any choice")
    choice = choices[0]
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    if not isinstance(message, ChatCompletionMessage) or not isinstance(content, str | None):
        raise RetryableProviderError("openai sent a malformed response: no message")
    finish_reason = getattr(choice, "finish_reason", None)
    if not content or not content.strip():
        raise PermanentProviderError(
            f"openai answered without content (finish_reason {finish_reason})"
        )
    usage = completion.usage
    return GenerationResult(
        output=content,
        provider_request_id=request_id or completion.id,
        usage={
            "input_tokens": getattr(usage, "prompt_tokens", None),
            "output_tokens": getattr(usage, "completion_tokens", None),
        },
        response_meta={
            "id": completion.id,
            "model": completion.model,
            "finish_reason": finish_reason,
            "system_fingerprint": completion.system_fingerprint,
        },
        latency_ms=latency_ms,
    )
