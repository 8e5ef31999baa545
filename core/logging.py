import logging

from core import context


class ContextFilter(logging.Filter):
    """Stamps each log record with the id of the request or job it belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        op = context.current()
        if op is not None and not hasattr(record, "request_id"):
            record.request_id = op.operation_id
            record.origin = op.origin
        return True
