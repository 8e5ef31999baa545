"""Reading and writing idempotency records: claim, complete, release, prune."""

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from core.errors import Conflict
from idempotency.models import IdempotencyRecord

logger = logging.getLogger("idempotency")

MIN_TTL_HOURS = 24  # a client may retry for at least a day, whatever the setting says
_CLAIM_ATTEMPTS = 3


def request_fingerprint(body: bytes) -> str:
    """sha256 hex of the body: of its canonical JSON (sorted keys, no spaces) when it is JSON."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _lock_id(user_id: int, key: str) -> int:
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def key_lock(*, user_id: int, key: str) -> Iterator[None]:
    """Holds a PostgreSQL session advisory lock on (user, key) for the block.

    Requests with the same key then run one after the other: a duplicate sent while the first
    is still running waits for it (up to IDEMPOTENCY_WAIT_SECONDS, default 10; then 409) and
    finds its stored answer, instead of answering 409 at once. A session lock, not a
    transaction's, so the view's own transactions commit as usual while it is held.
    """
    lock_id = _lock_id(user_id, key)
    wait_ms = int(getattr(settings, "IDEMPOTENCY_WAIT_SECONDS", 10) * 1000)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout')")
            (previous,) = cursor.fetchone()
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{wait_ms}ms"])
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise Conflict("A request with this Idempotency-Key is still in progress.") from None
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
        except DatabaseError:  # a broken connection: its session, and the lock, are gone
            logger.warning("could not unlock idempotency key lock %s", lock_id, exc_info=True)


def claim(
    *, user_id: int, key: str, method: str, path: str, fingerprint: str
) -> tuple[IdempotencyRecord, bool]:
    """Inserts the in-flight record for (user, key) in its own transaction (a savepoint inside
    an outer one), or returns the record that already holds the key.

    Returns (record, created). A concurrent insert of the same key waits on the unique index
    until the other transaction ends; the key is then taken, or free again if it was released.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user_id=user_id,
                    key=key,
                    method=method,
                    path=path,
                    request_fingerprint=fingerprint,
                )
            return record, True
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(user_id=user_id, key=key).first()
            if existing is not None:
                return existing, False
            if attempts == _CLAIM_ATTEMPTS:  # not the key's constraint, or released every time
                raise


def complete(record: IdempotencyRecord, *, status_code: int, body: Any) -> None:
    """Stores the response of the first request (one UPDATE, committed on its own)."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=status_code, response_body=body, completed_at=timezone.now()
    )


def release(record: IdempotencyRecord) -> None:
    """Deletes an in-flight record so the client may retry with the same key.

    Called while another exception propagates, so a database failure here is logged, not raised.
    """
    try:
        IdempotencyRecord.objects.filter(pk=record.pk, completed_at__isnull=True).delete()
    except DatabaseError:
        logger.warning("could not release idempotency key %s", record.pk, exc_info=True)


def ttl() -> timedelta:
    hours = getattr(settings, "IDEMPOTENCY_KEY_TTL_HOURS", 48)
    return timedelta(hours=max(hours, MIN_TTL_HOURS))


def prune_idempotency_records(now: datetime | None = None) -> int:
    """Deletes the records created longer than the TTL ago; returns how many were deleted."""
    cutoff = (now or timezone.now()) - ttl()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
