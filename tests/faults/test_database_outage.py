"""PostgreSQL restarted under load: clean 503s meanwhile, and the service recovers by itself.

gunicorn runs against a private PostgreSQL cluster holding a copy of the test database, so the
test can stop it while client threads keep reading and writing.
"""

import threading
import time

import httpx2
import psycopg
import pytest
from rest_framework.authtoken.models import Token

from tests.harness.servers import Services
from tests.harness.suite import database_url_for_tests, live_server
from tests.tasks.factories import make_task

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLIENTS = 6
OUTAGE_SECONDS = 2.0


class Load:
    """Client threads, each looping: read who it is, then add a turn to its task."""

    def __init__(self, url, tokens_and_tasks):
        self.url = url
        self.work = tokens_and_tasks
        self.stop = threading.Event()
        self.results = []  # (monotonic time, request, status, error code or None)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(w,)) for w in tokens_and_tasks]

    def loop(self, work):
        token, task_id = work
        with httpx2.Client(
            base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=30
        ) as client:
            while not self.stop.is_set():
                for name, call in (
                    ("me", lambda: client.get("/api/v1/me/")),
                    (
                        "turn",
                        lambda: client.post(
                            f"/api/v1/tasks/{task_id}/turns/",
                            json={"prompt": "Now also cover the error path with a test."},
                        ),
                    ),
                ):
                    try:
                        response = call()
                        status = response.status_code
                        code = response.json()["error"]["code"] if status >= 400 else None
                    except Exception as exc:  # recorded, so the test fails naming it
                        status, code = 0, repr(exc)
                    with self.lock:
                        self.results.append((time.monotonic(), name, status, code))
                    if status == 503:
                        time.sleep(0.2)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def since(self, moment):
        with self.lock:
            return [r for r in self.results if r[0] >= moment]


def turn_rows(cluster, task_ids):
    with psycopg.connect(cluster.env["DATABASE_URL"]) as conn:
        return conn.execute(
            "SELECT t.id, EXISTS (SELECT 1 FROM audit_event e WHERE e.object_type = 'tasks.turn'"
            " AND e.object_id = t.id::text AND e.action = 'turn.created') FROM tasks_turn t"
            " WHERE t.task_id = ANY(%s) AND t.index > 1",
            [task_ids],
        ).fetchall()


def test_requests_during_a_database_restart_get_503_and_the_service_recovers(tmp_path):
    work = []
    for _ in range(CLIENTS):
        task = make_task()
        token = Token.objects.create(user=task.author)
        work.append((token.key, task.pk))
    cluster = Services(tmp_path / "pg-outage", unsafe_pg=True, quiet=True).start()
    server = None
    try:
        cluster.copy_database(database_url_for_tests())
        server = live_server(
            {"DATABASE_URL": cluster.env["DATABASE_URL"], "REDIS_URL": cluster.env["REDIS_URL"]},
            log=tmp_path / "gunicorn.log",
        ).start()
        workers = server.worker_pids()
        with Load(server.url, work) as load:
            time.sleep(1.0)
            stopping_at = time.monotonic()
            cluster.stop_database()
            down_from = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            down_until = time.monotonic()
            cluster.start()  # what is not running, on the ports of the last start
            deadline = time.monotonic() + 20
            while not any(r[2] in (200, 201) for r in load.since(down_until)):
                assert time.monotonic() < deadline, "no success after the restart"
                time.sleep(0.1)
            recovered_at = min(r[0] for r in load.since(down_until) if r[2] in (200, 201))
            time.sleep(1.5)
        results = load.results
        assert server.worker_pids() == workers  # recovered without restarting a process
    finally:
        if server is not None:
            server.stop()
        rows = turn_rows(cluster, [task_id for _, task_id in work])
        cluster.remove()

    statuses = {(r[2], r[3]) for r in results}
    assert statuses <= {(200, None), (201, None), (503, "service_unavailable")}, statuses
    before = [r for r in results if r[0] < stopping_at]
    during = [r for r in results if down_from < r[0] < down_until]
    # Every thread's next request after the first success reconnects (CONN_HEALTH_CHECKS).
    after = [r for r in results if r[0] > recovered_at + 0.5]
    phases = {"before": before, "during": during, "after": after}
    assert all(phases.values()), {name: len(rows) for name, rows in phases.items()}
    assert all(r[2] in (200, 201) for r in before), before
    assert all(r[2] == 503 for r in during), during
    assert all(r[2] in (200, 201) for r in after), after
    # Nothing half-written: every turn a client was told about exists, each with its audit entry.
    created = sum(1 for r in results if r[1] == "turn" and r[2] == 201)
    refused = sum(1 for r in results if r[1] == "turn" and r[2] == 503)
    assert created <= len(rows) <= created + refused
    assert all(audited for _, audited in rows)
