"""Reading and writing idempotency records: claim, complete, release, prune."""

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from marlin.idempotency.models import IdempotencyRecord

logger = logging.getLogger("marlin.idempotency")

MIN_TTL_HOURS = 24  # a client may retry for at least a day, whatever the setting says
_CLAIM_ATTEMPTS = 3


def request_fingerprint(body: bytes) -> str:
    """sha256 hex of the body: of its canonical JSON (sorted keys, no spaces) when it is JSON."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


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
