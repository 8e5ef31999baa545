"""The provider clients against the fake model server on loopback; no database."""

import contextlib
import hashlib
import json
import time
import traceback
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from tasks.providers import (
    GenerationRequest,
    GenerationResult,
    Message,
    PermanentProviderError,
    Provider,
    RecordingProvider,
    ReplayProvider,
    RetryableProviderError,
    build_provider,
)
from tasks.providers.anthropic_provider import AnthropicProvider
from tasks.providers.openai_provider import OpenAIProvider
from tests.fakes.model_server import FakeModelServer, default_answer
from tests.harness.servers import FakeModelServerProcess

SECRET = "sk-secret-value-123"
KINDS = ["openai", "anthropic"]


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    # Overrides the suite's autouse fixture: these tests use neither the cache nor Redis.
    yield


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as fake:
        yield fake


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAKE_KEY", SECRET)
    return SECRET


def make(kind: str, server: FakeModelServer, *, timeout: float = 5.0) -> Provider:
    if kind == "openai":
        return OpenAIProvider(
            base_url=server.openai_base_url, api_key_env="FAKE_KEY", timeout=timeout
        )
    return AnthropicProvider(
        base_url=server.anthropic_base_url, api_key_env="FAKE_KEY", timeout=timeout
    )


def ask(prompt: str = "Fix the handler.", *, model: str = "model-a", **fields) -> GenerationRequest:
    return GenerationRequest(model=model, messages=(Message("user", prompt),), **fields)


CONVERSATION = (
    Message("user", "Fix the handler."),
    Message("assistant", "Here is a first fix."),
    Message("user", "Now add a test."),
)


# Happy paths


@pytest.mark.parametrize("kind", KINDS)
def test_generate_returns_output_usage_request_id_and_latency(kind, server, key):
    result = make(kind, server).generate(ask())

    seen = server.requests[-1]
    assert seen["path"] == ("/v1/chat/completions" if kind == "openai" else "/v1/messages")
    assert result.output == default_answer(seen["body"])
    assert "```diff\n--- a/src/module_" in result.output
    assert result.usage == {"input_tokens": 3, "output_tokens": len(result.output.split())}
    assert result.provider_request_id.startswith("req_")
    assert result.latency_ms > 0
    assert result.response_meta["model"] == "model-a"
    reason = "finish_reason" if kind == "openai" else "stop_reason"
    assert result.response_meta[reason] == ("stop" if kind == "openai" else "end_turn")


@pytest.mark.parametrize("kind", KINDS)
def test_answers_depend_on_model_and_last_prompt(kind, server, key):
    provider = make(kind, server)
    first = provider.generate(ask(model="model-a")).output
    assert provider.generate(ask(model="model-b")).output != first
    assert provider.generate(ask("Now add a test.", model="model-a")).output != first
    assert provider.generate(ask(model="model-a")).output == first


def test_openai_sends_system_prompt_then_turns_in_order_with_parameters(server, key):
    request = GenerationRequest(
        model="model-a",
        messages=CONVERSATION,
        system_prompt="You are terse.",
        temperature=0.2,
        max_tokens=512,
        seed=7,
    )
    make("openai", server).generate(request)

    body = server.requests[-1]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Fix the handler."},
        {"role": "assistant", "content": "Here is a first fix."},
        {"role": "user", "content": "Now add a test."},
    ]
    assert (body["temperature"], body["max_completion_tokens"], body["seed"]) == (0.2, 512, 7)


def test_anthropic_sends_system_prompt_apart_and_turns_in_order(server, key):
    request = GenerationRequest(
        model="model-a", messages=CONVERSATION, system_prompt="You are terse.", max_tokens=512
    )
    make("anthropic", server).generate(request)

    body = server.requests[-1]["body"]
    assert body["system"] == "You are terse."
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in CONVERSATION]
    assert body["max_tokens"] == 512


def test_anthropic_refuses_temperature_before_calling(server, key):
    with pytest.raises(PermanentProviderError, match="temperature"):
        make("anthropic", server).generate(ask(temperature=0.0))
    assert server.requests == []


# Failures


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [429, 500, 503, 529])
def test_rate_limits_and_server_errors_are_retryable(kind, status, server, key):
    server.fail_next(1, status=status)
    with pytest.raises(RetryableProviderError) as caught:
        make(kind, server).generate(ask())
    assert caught.value.retryable
    assert caught.value.status == status


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_is_retryable(kind, server, key):
    server.script(hang_seconds=5)
    server.fail_next(1, kind="timeout")
    started = time.monotonic()
    with pytest.raises(RetryableProviderError, match="timed out"):
        make(kind, server, timeout=0.5).generate(ask())
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_body_is_retryable(kind, server, key):
    server.fail_next(1, kind="malformed")
    with pytest.raises(RetryableProviderError, match="malformed"):
        make(kind, server).generate(ask())


@pytest.mark.parametrize("kind", KINDS)
def test_connection_refused_is_retryable(kind, key):
    with FakeModelServer() as fake:
        provider = make(kind, fake)
    with pytest.raises(RetryableProviderError, match="connection"):
        provider.generate(ask())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_permanent(kind, status, server, key):
    server.fail_next(1, status=status)
    with pytest.raises(PermanentProviderError) as caught:
        make(kind, server).generate(ask())
    assert not caught.value.retryable
    assert caught.value.status == status


@pytest.mark.parametrize("kind", KINDS)
def test_empty_answer_is_permanent(kind, server, key):
    server.answer_with(lambda body: "")
    with pytest.raises(PermanentProviderError, match="without"):
        make(kind, server).generate(ask())


# The API key


@pytest.mark.parametrize("kind", KINDS)
def test_key_is_sent_to_the_server_but_never_leaks(kind, server, key):
    provider = make(kind, server)
    result = provider.generate(ask())
    headers = server.requests[-1]["headers"]
    assert f"Bearer {SECRET}" == headers.get("authorization") or headers.get("x-api-key") == SECRET
    assert SECRET not in repr(result)

    server.fail_next(1, status=401)  # the fake echoes the credential in its error body
    with pytest.raises(PermanentProviderError) as caught:
        provider.generate(ask())
    assert "invalid credential" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert SECRET not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("kind", KINDS)
def test_key_is_read_at_call_time(kind, server, monkeypatch):
    provider = make(kind, server)
    monkeypatch.setenv("FAKE_KEY", "sk-first")
    provider.generate(ask())
    monkeypatch.setenv("FAKE_KEY", "sk-second")
    provider.generate(ask())
    seen = [
        r["headers"].get("authorization") or r["headers"].get("x-api-key") for r in server.requests
    ]
    assert [s.removeprefix("Bearer ") for s in seen] == ["sk-first", "sk-second"]


@pytest.mark.parametrize("kind", KINDS)
def test_missing_key_is_permanent_and_named_off_loopback(kind, monkeypatch):
    monkeypatch.delenv("FAKE_KEY", raising=False)
    provider_class = OpenAIProvider if kind == "openai" else AnthropicProvider
    provider = provider_class(
        base_url="https://models.example.invalid/v1", api_key_env="FAKE_KEY", timeout=1
    )
    with pytest.raises(PermanentProviderError, match="FAKE_KEY is not set"):
        provider.generate(ask())


@pytest.mark.parametrize("kind", KINDS)
def test_missing_key_uses_a_placeholder_on_loopback(kind, server, monkeypatch):
    monkeypatch.delenv("FAKE_KEY", raising=False)
    make(kind, server).generate(ask())
    headers = server.requests[-1]["headers"]
    assert "not-set" in (headers.get("authorization") or headers.get("x-api-key"))


# Replay and recording


def recorded_line(request: GenerationRequest, output: str) -> str:
    result = {
        "output": output,
        "provider_request_id": "req_recorded",
        "usage": {"input_tokens": 3, "output_tokens": 1},
        "response_meta": {"model": request.model, "stop_reason": "end_turn"},
    }
    record = {"fingerprint": request.fingerprint(), "request": request.as_dict(), "result": result}
    return json.dumps(record) + "\n"


def test_replay_answers_recorded_requests_and_refuses_others(tmp_path):
    (tmp_path / "a.jsonl").write_text(recorded_line(ask(), "recorded answer"))
    provider = ReplayProvider(tmp_path)

    result = provider.generate(ask())
    assert (result.output, result.provider_request_id) == ("recorded answer", "req_recorded")
    assert result.usage == {"input_tokens": 3, "output_tokens": 1}
    assert result.response_meta == {"model": "model-a", "stop_reason": "end_turn"}
    assert result.latency_ms >= 0

    unknown = ask("Something else.")
    with pytest.raises(PermanentProviderError) as caught:
        provider.generate(unknown)
    assert str(caught.value) == f"no recording for request {unknown.fingerprint()[:12]}"


def test_replay_sees_lines_appended_later_and_skips_broken_lines(tmp_path):
    store = tmp_path / "a.jsonl"
    store.write_text(recorded_line(ask(), "first") + '{"fingerprint": "cut sh\n')
    provider = ReplayProvider(tmp_path)
    assert provider.generate(ask()).output == "first"

    with store.open("a") as f:
        f.write(recorded_line(ask("Next."), "second"))
    assert provider.generate(ask("Next.")).output == "second"


def test_recorded_exchange_replays_identically(tmp_path, server, key):
    path = tmp_path / "nested" / "run.jsonl"
    live = RecordingProvider(make("openai", server), path)
    request = GenerationRequest(model="model-a", messages=CONVERSATION, system_prompt="Be terse.")
    answered = live.generate(request)

    server.fail_next(1, status=500)
    with pytest.raises(RetryableProviderError):
        live.generate(ask())  # failures are not recorded

    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert SECRET not in lines[0]
    assert json.loads(lines[0])["request"] == request.as_dict()
    replayed = ReplayProvider(path.parent).generate(request)
    assert replace(replayed, latency_ms=0) == replace(answered, latency_ms=0)


def test_build_provider(settings, tmp_path):
    settings.REPLAY_RECORDINGS_DIR = tmp_path
    settings.REPLAY_RECORD_TO = None
    live = build_provider("openai", base_url=None, api_key_env="FAKE_KEY", timeout=5)
    assert isinstance(live, OpenAIProvider)
    replay = build_provider("replay", base_url=None, api_key_env=None, timeout=5)
    assert isinstance(replay, ReplayProvider)
    assert replay.directory == tmp_path

    settings.REPLAY_RECORD_TO = str(tmp_path / "out.jsonl")
    recording = build_provider("anthropic", base_url=None, api_key_env="FAKE_KEY", timeout=5)
    assert isinstance(recording, RecordingProvider)
    assert isinstance(recording.inner, AnthropicProvider)
    assert recording.path == tmp_path / "out.jsonl"

    with pytest.raises(PermanentProviderError, match="unknown provider kind"):
        build_provider("gemini", base_url=None, api_key_env=None, timeout=5)


# The request fingerprint


def test_fingerprint_is_sha256_of_canonical_json_and_stable():
    request = GenerationRequest(
        model="model-a", messages=CONVERSATION, system_prompt="Be terse.", temperature=0, seed=1
    )
    canonical = json.dumps(request.as_dict(), sort_keys=True, separators=(",", ":"))
    assert request.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()
    assert request.fingerprint() == replace(request, temperature=0.0).fingerprint()
    assert request.fingerprint() == GenerationRequest.from_dict(request.as_dict()).fingerprint()
    # Pinned: recordings made by earlier versions must keep matching.
    assert ask().fingerprint() == PINNED_FINGERPRINT


PINNED_FINGERPRINT = "858fac8db2252d4f84c40adeb01a07e3f178b3a340edabc4576c2ce6c3cbd8b2"


@pytest.mark.parametrize(
    "change",
    [
        {"model": "model-b"},
        {"messages": (Message("user", "Fix the handler!"),)},
        {"messages": (*CONVERSATION[:2], Message("user", "Fix the handler."))},
        {"system_prompt": "Be terse."},
        {"temperature": 0.5},
        {"max_tokens": 1024},
        {"seed": 3},
    ],
)
def test_fingerprint_changes_with_any_parameter(change):
    assert replace(ask(), **change).fingerprint() != ask().fingerprint()


def test_request_must_end_with_a_user_turn():
    with pytest.raises(ValueError, match="user turn"):
        GenerationRequest(model="m", messages=CONVERSATION[:2])


# The fake server itself


def test_scripted_failures_are_reproducible_and_capped(key):
    def statuses(seed: int) -> list[int]:
        with FakeModelServer() as fake:
            fake.script(failure_rate=0.5, max_consecutive_failures=2, seed=seed)
            provider = make("openai", fake)
            for prompt in ("one", "two", "three", "four") * 3:
                with contextlib.suppress(RetryableProviderError):
                    provider.generate(ask(prompt))
            return [r["status"] for r in fake.requests]

    assert statuses(seed=1) == statuses(seed=1)
    assert set(statuses(seed=1)) <= {200, 429, 500}

    with FakeModelServer() as fake:
        fake.script(failure_rate=1.0, failure_statuses=(503,), max_consecutive_failures=2)
        provider = make("openai", fake)
        for _ in range(2):
            with pytest.raises(RetryableProviderError):
                provider.generate(ask())
        assert isinstance(provider.generate(ask()), GenerationResult)
        assert [r["status"] for r in fake.requests] == [503, 503, 200]
        assert fake.successful_answers() == 1


def test_fake_server_serves_many_requests_at_once(key):
    with FakeModelServer(latency=0.3) as fake:
        providers = [make(kind, fake) for kind in KINDS]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=40) as pool:
            results = list(
                pool.map(lambda i: providers[i % 2].generate(ask(f"prompt {i}")), range(80))
            )
        elapsed = time.monotonic() - started
    assert len({r.output for r in results}) == 80
    assert fake.successful_answers() == 80
    assert elapsed < 3  # 80 answers of 0.3 s each, served concurrently


def test_fake_server_runs_as_a_process(key):
    server = FakeModelServerProcess(latency=0.05)
    with server:
        provider = OpenAIProvider(base_url=f"{server.url}/v1", api_key_env="FAKE_KEY", timeout=5)
        assert "```diff" in provider.generate(ask()).output
        with urllib.request.urlopen(f"{server.url}/_fake/stats") as response:
            assert json.load(response) == {"requests": 1, "successful_answers": 1, "failures": {}}
    assert server.process.returncode == 0
