"""The permission matrix, generated from the URL conf: every endpoint under /api/v1/ x every
principal (each role, owner and non-owner, no role, anonymous) x every method its view answers.

Requests carry bodies that the allowed caller's request would be accepted with, so a missing
check shows up as a 2xx rather than hiding behind a 400. Refused callers go first, then the
allowed ones; each endpoint's writes are rolled back before the next endpoint.
"""

from collections import Counter

import pytest

from tests.security.calls import content_of, json_of, rolled_back, send
from tests.security.matrix import (
    MATRIX,
    VISIBLE_ROWS,
    allowed,
    api_endpoints,
    bodies,
    expected_refusal,
    row_key,
)
from tests.security.world import PRINCIPALS, build_world

pytestmark = pytest.mark.django_db


def test_every_api_endpoint_and_method_has_an_entry_in_the_table():
    endpoints = api_endpoints()
    names = [e.name for e in endpoints]
    assert len(names) == len(set(names)), "URL names under /api/v1/ must be unique"
    missing = sorted(set(names) - set(MATRIX))
    assert not missing, f"endpoints with no entry in tests/security/matrix.py MATRIX: {missing}"
    stale = sorted(set(MATRIX) - set(names))
    assert not stale, f"MATRIX entries for endpoints that no longer exist: {stale}"
    for endpoint in endpoints:
        answered = set(endpoint.methods) - {"HEAD", "OPTIONS"}
        assert answered == set(MATRIX[endpoint.name]), (
            f"{endpoint.name} answers {sorted(answered)}; "
            f"the table covers {sorted(MATRIX[endpoint.name])}"
        )


def test_every_endpoint_method_and_principal_gets_what_the_table_says(fake_models, monkeypatch):
    world = build_world(fake_models, monkeypatch)
    body_for = bodies(world)
    problems: list[str] = []
    tally: Counter[str] = Counter()
    for endpoint in api_endpoints():
        if endpoint.name not in MATRIX:
            continue  # reported by the test above
        path = endpoint.path(world)
        # Refused callers first: they must change nothing the allowed callers then rely on.
        plan = sorted(
            (principal in allowed(endpoint, method), method, principal)
            for method in endpoint.methods
            for principal in PRINCIPALS
        )
        with rolled_back():
            for may, method, principal in plan:
                make_body = body_for.get((endpoint.name, method))
                response = send(
                    world.client(principal), method, path, make_body() if make_body else None
                )
                status = response.status_code
                content = content_of(response)
                where = f"{method} {path} ({endpoint.name}) as {principal}: {status}"
                tally["calls"] += 1
                if not may:
                    if 200 <= status < 300:
                        tally["unexpected 2xx"] += 1
                        problems.append(f"unexpected 2xx: {where} {content[:200]!r}")
                    elif status != expected_refusal(endpoint, method, principal):
                        problems.append(
                            f"refused with the wrong status: {where}, expected "
                            f"{expected_refusal(endpoint, method, principal)}"
                        )
                    continue
                if status in (401, 403, 404) or status >= 500:
                    problems.append(f"allowed but refused: {where} {content[:300]!r}")
                    continue
                body = json_of(content)
                if method == "GET" and isinstance(body, dict) and "results" in body:
                    rule = VISIBLE_ROWS.get(endpoint.name)
                    if rule is None:
                        problems.append(f"list endpoint with no VISIBLE_ROWS rule: {endpoint.name}")
                        continue
                    visible = rule(world, principal)
                    shown = [row_key(row) for row in body["results"]]
                    tally["rows checked"] += len(shown)
                    if visible is not None:
                        hidden = sorted(set(shown) - visible)
                        if hidden:
                            tally["rows not visible to the caller"] += len(hidden)
                            problems.append(f"rows the caller may not see: {where} {hidden}")
    print(dict(tally))
    assert tally["calls"] > 500
    assert not problems, "\n".join(problems)
