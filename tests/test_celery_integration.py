"""Jobs through the real broker and a real worker process, against the test database."""

import time

import pytest
from celery.exceptions import TimeoutError as ResultTimeout
from django.db import connection

from operations.probes import probe_job
from tests.harness.suite import on_test_database
from tests.harness.workers import Worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    running = Worker(concurrency=1, env=on_test_database()).start()
    yield running
    running.stop()


def test_a_job_runs_in_a_worker_on_the_test_database_as_its_own_operation(worker):
    result = probe_job.delay()
    answer = result.get(timeout=60)
    assert answer["database"] == connection.settings_dict["NAME"]
    assert answer["origin"] == "job:marlin.probe"
    assert answer["operation_id"] == result.id


def test_no_answer_comes_while_the_worker_is_stopped(worker):
    probe_job.delay().get(timeout=60)  # the worker is up
    worker.pause()
    try:
        pending = probe_job.delay()
        with pytest.raises(ResultTimeout):
            pending.get(timeout=3)
    finally:
        worker.resume()
    assert pending.get(timeout=60)["database"] == connection.settings_dict["NAME"]


def test_nothing_answers_a_job_when_no_worker_runs():
    started = time.monotonic()
    with pytest.raises(ResultTimeout):
        probe_job.delay().get(timeout=3)
    assert time.monotonic() - started >= 3
