import json
import logging

import pytest

from core.logging import ContextFilter


@pytest.mark.django_db
def test_each_request_is_one_json_line_with_its_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="marlin.request")
    response = client.get("/healthz", HTTP_X_REQUEST_ID="client-chosen-id-1")
    assert response["X-Request-ID"] == "client-chosen-id-1"
    (record,) = [r for r in caplog.records if r.name == "marlin.request"]
    assert (record.method, record.path, record.status) == ("GET", "/healthz", 200)
    assert record.request_id == "client-chosen-id-1"

    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    line = json.loads(handler.formatter.format(record))
    assert line["request_id"] == "client-chosen-id-1"
    assert (line["message"], line["status"], line["level"]) == ("request", 200, "INFO")


@pytest.mark.django_db
def test_a_malformed_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_records_outside_an_operation_pass_unchanged():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    assert ContextFilter().filter(record)
    assert not hasattr(record, "request_id")
