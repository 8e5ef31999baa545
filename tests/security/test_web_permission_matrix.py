"""The permission matrix of the web workspace: every page under /app/ x every principal x every
method, against WEB_MATRIX in matrix.py. Pages use the API's roles and querysets, so the table
reads like the API's: refused callers get 302 (to the login page, when anonymous), 404 (the
role, but not their object) or 403; a method a page does not take is a 405 for everyone.
"""

from collections import Counter

import pytest
from django.test import Client

from tests.security.calls import content_of, rolled_back
from tests.security.matrix import (
    WEB_MATRIX,
    web_bodies,
    web_expected_refusal,
    web_pages,
)
from tests.security.world import PRINCIPALS, build_world

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Django's own auth views answer the methods Django gives them.
OWN_METHOD_RULES = {"login", "logout"}


class Browsers:
    """One signed-in session per principal; login and logout get a fresh one each time."""

    def __init__(self, world):
        self.world = world
        self.clients = {}
        # Sessions live in the database: sign everyone in before any rolled-back block.
        for principal in PRINCIPALS:
            self(principal, "home")

    def __call__(self, principal, page):
        if page in OWN_METHOD_RULES or principal not in self.clients:
            client = Client()
            user = self.world.users.get(principal)
            if user is not None:
                client.force_login(user)
            if page in OWN_METHOD_RULES:
                return client
            self.clients[principal] = client
        return self.clients[principal]


def send(client, method, path, body):
    call = getattr(client, method.lower())
    if method == "GET":
        return call(path)
    return call(path, body or {})


def test_every_web_page_has_an_entry_in_the_table():
    names = [page.name for page in web_pages()]
    assert len(names) == len(set(names)), "URL names under /app/ must be unique"
    assert sorted(set(names) - set(WEB_MATRIX)) == [], "pages missing from WEB_MATRIX"
    assert sorted(set(WEB_MATRIX) - set(names)) == [], "WEB_MATRIX entries with no page"


def test_every_page_method_and_principal_gets_what_the_table_says(fake_models, monkeypatch):
    world = build_world(fake_models, monkeypatch)
    body_for = web_bodies(world)
    browser = Browsers(world)
    problems: list[str] = []
    tally: Counter[str] = Counter()
    for page in web_pages():
        entry = WEB_MATRIX.get(page.name)
        if entry is None:
            continue  # reported by the test above
        path = page.path(world)
        methods = METHODS if page.name not in OWN_METHOD_RULES else tuple(entry)
        plan = sorted(
            (principal in entry.get(method, ()), method, principal)
            for method in methods
            for principal in PRINCIPALS
        )
        with rolled_back():
            for may, method, principal in plan:
                response = send(
                    browser(principal, page.name), method, path, body_for.get((page.name, method))
                )
                status = response.status_code
                location = response.get("Location", "")
                where = f"{method} {path} ({page.name}) as {principal}: {status}"
                tally["calls"] += 1
                if method not in entry:
                    if status != 405:
                        problems.append(f"expected 405: {where}")
                    continue
                if not may:
                    expected = web_expected_refusal(page, method, principal)
                    if status != expected or (status == 302 and "/app/login/" not in location):
                        problems.append(f"refused wrongly: {where} {location}, expected {expected}")
                    continue
                if status in (403, 404, 405) or status >= 500 or "/app/login/?" in location:
                    problems.append(f"allowed but refused: {where} {content_of(response)[:200]!r}")
                else:
                    tally[f"allowed {status}"] += 1
    print(dict(tally))
    assert tally["calls"] > 900
    assert not problems, "\n".join(problems)
