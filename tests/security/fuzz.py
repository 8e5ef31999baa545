"""Schemathesis against /api/schema/, in process, as each role: the runner shared by the test
(tests/security/test_schemathesis.py, a bounded pass) and the benchmark (bench/, a larger one).

Every generated request runs inside a savepoint that is rolled back, so each case meets the same
world and nothing a case writes leaks into the next one. Failures are collected, not raised, so
one run reports every operation that breaks, with a curl line to reproduce each.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.urls import resolve
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.calls import rolled_back
from tests.security.matrix import MATRIX, Endpoint, allowed, api_endpoints
from tests.security.world import World

SCHEMA_URL = "/api/schema/?format=json"
ROLES = ("author", "reviewer", "arbiter", "auditor", "lead", "no_role")
# 0 server errors, and every response documented (status, media type, headers, body shape).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Report:
    cases: int = 0
    stateful_cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[tuple[str, ...], str] = field(default_factory=dict)

    def record(self, key: tuple[str, ...], detail: str) -> None:
        self.failures.setdefault(key, detail)

    def summary(self) -> str:
        lines = [f"{len(self.failures)} distinct failures in {self.cases} cases:"]
        for key, detail in sorted(self.failures.items()):
            lines.append(" | ".join(key))
            lines.append("    " + detail.strip().replace("\n", "\n    ")[:1500])
        return "\n".join(lines)


@contextmanager
def in_process() -> Iterator[None]:
    """Django's WSGI handler, as the test client runs it: the request/finish signals would close
    the test's connection (it is inside a transaction) and lose the world."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def load_schema() -> Any:
    return schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application())


def _endpoint_of(operation: Any, endpoints: dict[str, Endpoint]) -> Endpoint | None:
    sample = re.sub(r"\{(slug)\}", "x", operation.path)
    sample = re.sub(r"\{[^}]+\}", "1", sample)
    return endpoints.get(resolve(sample).url_name or "")


def _known_ids(world: World, endpoint: Endpoint) -> dict[str, Any]:
    """The path parameters that name the world's objects (the document calls <pk> `id`)."""
    path = endpoint.path(world)
    names = re.findall(r"<(?:\w+:)?(\w+)>", endpoint.route)
    pattern = re.sub(r"<(?:\w+:)?\w+>", r"([^/]+)", "/" + endpoint.route)
    values = re.fullmatch(pattern, path).groups()  # type: ignore[union-attr]
    return {("id" if n == "pk" else n): v for n, v in zip(names, values, strict=True)}


def _settings(examples: int, **extra: Any) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: failures are kept
        **extra,
    )


def _check(report: Report, role: str, case: Any, response: Any, headers: dict[str, str]) -> None:
    report.cases += 1
    report.stateful_cases += role.endswith("(stateful)")
    report.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except BaseExceptionGroup as group:
        for failure in group.exceptions:
            key = (role, case.operation.label, str(response.status_code), failure.title)
            report.record(key, f"{failure.message}\n{case.as_curl_command()}")
    except AssertionError as failure:
        key = (role, case.operation.label, str(response.status_code), type(failure).__name__)
        report.record(key, f"{failure}\n{case.as_curl_command()}")


def _stateless_run(
    strategy: Any, settings: hypothesis.settings, report: Report, role: str, headers: dict
) -> Callable[[], None]:
    @hypothesis.given(case=strategy)
    @settings
    def run(case: Any) -> None:
        with rolled_back():
            response = case.call(headers=headers)
            _check(report, role, case, response, headers)

    return run


def run_stateless(
    world: World,
    report: Report,
    schema: Any,
    *,
    examples: int,
    negative_examples: int | None = None,
    refused_examples: int = 1,
    roles: tuple[str, ...] = ROLES,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
) -> None:
    """Every operation as every role: `examples` valid cases where the role may call it (half on
    the world's objects, half on generated ids) and `negative_examples` invalid ones (default:
    as many), `refused_examples` valid ones where it may not."""
    endpoints = {e.name: e for e in api_endpoints() if e.name in MATRIX}
    operations = [result.ok() for result in schema.get_all_operations()]
    # Operations where every input is valid (GET /me/): found once, not searched for again.
    no_invalid_input: set[tuple[GenerationMode, str]] = set()
    for role in roles:
        headers = {"Authorization": f"Token {world.tokens[role]}"}
        for operation in operations:
            endpoint = _endpoint_of(operation, endpoints)
            may = endpoint is not None and role in allowed(endpoint, operation.method.upper())
            ids = _known_ids(world, endpoint) if endpoint else {}
            for mode in modes if may else modes[:1]:
                count = refused_examples
                if may:
                    negative = mode == GenerationMode.NEGATIVE and negative_examples is not None
                    count = negative_examples if negative else examples
                if not count or (mode, operation.label) in no_invalid_input:
                    continue
                strategy = operation.as_strategy(generation_mode=mode)
                if ids and mode == GenerationMode.POSITIVE:
                    on_world = operation.as_strategy(generation_mode=mode, path_parameters=ids)
                    strategy = st.one_of(on_world, strategy)

                run = _stateless_run(strategy, _settings(count), report, role, headers)
                try:
                    run()
                except Unsatisfiable:
                    if mode != GenerationMode.NEGATIVE:
                        raise
                    no_invalid_input.add((mode, operation.label))  # every input is valid: fine


def run_stateful(
    world: World,
    report: Report,
    schema: Any,
    *,
    examples: int,
    steps: int,
    roles: tuple[str, ...] = ("author", "reviewer", "arbiter", "lead"),
) -> None:
    """Sequences along the links Schemathesis infers (POST /tasks/ → GET /tasks/{id}/ → …),
    each sequence in a savepoint rolled back at its end."""
    machine = schema.as_state_machine()
    for role in roles:
        headers = {"Authorization": f"Token {world.tokens[role]}"}

        class Sequences(machine):  # type: ignore[valid-type, misc]
            def setup(self) -> None:
                self._atomic = transaction.atomic()
                self._atomic.__enter__()

            def teardown(self) -> None:
                transaction.set_rollback(True)
                self._atomic.__exit__(None, None, None)

            def get_call_kwargs(self, case: Any, headers: dict[str, str] = headers) -> dict:
                return {"headers": headers}

            def validate_response(
                self, response: Any, case: Any, *args: Any, role: str = role, **kwargs: Any
            ) -> None:
                _check(report, f"{role} (stateful)", case, response, kwargs.get("headers", {}))

        run_state_machine_as_test(
            Sequences, settings=_settings(examples, stateful_step_count=steps)
        )


def run_all(world: World, **sizes: Any) -> Report:
    report = Report()
    stateless = {
        k: v
        for k, v in sizes.items()
        if k in ("examples", "negative_examples", "refused_examples", "roles")
    }
    with in_process():
        schema = load_schema()
        run_stateless(world, report, schema, **stateless)
        if sizes.get("stateful_examples"):
            run_stateful(
                world,
                report,
                schema,
                examples=sizes["stateful_examples"],
                steps=sizes.get("steps", 6),
            )
    return report
