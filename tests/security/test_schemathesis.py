"""Schemathesis against the OpenAPI document at /api/schema/, authenticated as each role, in a
bounded pass (the larger one is bench/bench_schemathesis.py): 0 server errors and 0 responses
that the document does not describe (status code, media type, headers, body shape).

Stateless: every operation a role may call, valid inputs (half on the world's objects) and
invalid ones. Stateful: sequences along the links Schemathesis infers from the document.
"""

import time

import pytest

from tests.security.fuzz import run_all
from tests.security.world import build_world

pytestmark = pytest.mark.django_db

# Small enough for the suite (about 30 s on a shared 2-CPU machine). Invalid inputs cost the
# most to generate (most drawn cases are discarded): one per operation and role here.
EXAMPLES = 3
NEGATIVE_EXAMPLES = 1
STATEFUL_EXAMPLES = 5
STEPS = 8


def test_no_server_errors_and_every_response_as_documented(fake_models, monkeypatch):
    world = build_world(fake_models, monkeypatch)
    started = time.monotonic()
    report = run_all(
        world,
        examples=EXAMPLES,
        negative_examples=NEGATIVE_EXAMPLES,
        refused_examples=0,  # refusals are the permission matrix's; the benchmark samples them
        stateful_examples=STATEFUL_EXAMPLES,
        steps=STEPS,
    )
    seconds = time.monotonic() - started
    print(
        f"schemathesis: {report.cases} cases ({report.stateful_cases} stateful) in {seconds:.1f} s,"
        f" statuses {dict(sorted(report.statuses.items()))}"
    )
    assert report.cases > 300 and report.stateful_cases > 50
    assert not report.failures, report.summary()
