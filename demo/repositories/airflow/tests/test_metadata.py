import json
from datetime import datetime, timezone
from types import SimpleNamespace

from airflow.executors.metadata import build_metadata

START = datetime(2026, 10, 1, 12, 0, tzinfo=timezone.utc)
END = datetime(2026, 10, 1, 12, 5, 30, tzinfo=timezone.utc)


def test_the_stored_metadata_keeps_its_keys_and_values():
    metadata = build_metadata(SimpleNamespace(id="extract"), START, END, "success")
    assert metadata == {
        "task": "extract",
        "start": "2026-10-01T12:00:00+00:00",
        "end": "2026-10-01T12:05:30+00:00",
        "status": "success",
    }


def test_the_stored_json_is_byte_for_byte_the_same():
    metadata = build_metadata(SimpleNamespace(id="load"), START, END, "failed")
    assert json.dumps(metadata) == (
        '{"task": "load", "start": "2026-10-01T12:00:00+00:00", '
        '"end": "2026-10-01T12:05:30+00:00", "status": "failed"}'
    )
