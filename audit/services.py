"""Writes of the audit app: sealing the trail into a hash chain, verifying it, recording reads.

Why writers stay fast: an audited write inserts its `audit_event` row and nothing else. It never
reads or locks a chain head, so concurrent writers share no row and no lock. The chain is built
asynchronously by a single sealer (`audit_seal_pending`, under a transaction-level advisory lock)
into the separate append-only table `audit_seal`. The price is a short window (the beat interval,
10 s) in which the newest entries are recorded but not yet sealed; `audit_verify` reports how
many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from audit.models import AuditRead

SEAL_BATCH_ROWS = 5_000
GENESIS_HASH = "0" * 64

# One pass over the chain in seal order. `lag(hash)` is the link each seal must point back to;
# the event is re-hashed from its current content. A missing event, a broken link and an event
# whose content changed are told apart, and only the first broken seal is kept.
# The seals after seq %(after)s are checked, the first against %(link)s: from the start, the
# genesis hash; from a checkpoint, the checkpoint's own hash.
_VERIFY_SQL = """
WITH checked AS (
    SELECT s.seq, s.event_id, s.hash,
        CASE
            WHEN e.id IS NULL THEN 'event_missing'
            WHEN s.prev_hash IS DISTINCT FROM coalesce(lag(s.hash) OVER w, %(link)s)
                THEN 'link_broken'
            WHEN s.hash IS DISTINCT FROM audit_link_hash(s.prev_hash, audit_event_canonical(e))
                THEN 'event_changed'
        END AS reason
    FROM audit_seal s LEFT JOIN audit_event e ON e.id = s.event_id
    WHERE s.seq > %(after)s
    WINDOW w AS (ORDER BY s.seq)
)
SELECT
    count(*),
    (array_agg(seq ORDER BY seq) FILTER (WHERE reason IS NOT NULL))[1],
    (array_agg(event_id ORDER BY seq) FILTER (WHERE reason IS NOT NULL))[1],
    (array_agg(reason ORDER BY seq) FILTER (WHERE reason IS NOT NULL))[1]
FROM checked
"""
_HEAD_SQL = "SELECT seq, hash FROM audit_seal ORDER BY seq DESC LIMIT 1"

_CHECKPOINT_SQL = "SELECT hash, event_id FROM audit_seal WHERE seq = %s"
# Events above %s (0: all of them) that no seal covers yet.
_UNSEALED_SQL = """
SELECT count(*) FROM audit_event e
WHERE e.id > %s AND NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_id = e.id)
"""

REASONS = {
    "event_missing": "the sealed event is gone from audit_event",
    "link_broken": "prev_hash does not match the hash of the previous seal",
    "event_changed": "the event's content no longer matches its seal",
    "checkpoint_changed": "the checkpoint's seal is gone or its hash is not the one given",
}


def audit_seal_pending(*, max_rows: int = SEAL_BATCH_ROWS) -> int:
    """Seals up to `max_rows` finished events in one transaction; returns how many (0 if busy)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT audit_seal_pending(%s)", [max_rows])
        return int(cursor.fetchone()[0])


def audit_seal_all(*, max_rows: int = SEAL_BATCH_ROWS) -> int:
    """Seals batch after batch until nothing is pending (or another sealer runs); returns the total.

    Each batch commits on its own, so a long backlog never holds one huge transaction.
    """
    total = 0
    while True:
        sealed = audit_seal_pending(max_rows=max_rows)
        total += sealed
        if sealed < max_rows:
            return total


@dataclass(frozen=True)
class Checkpoint:
    """A head reported by an earlier verify: the seq of a seal and its hash."""

    seq: int
    hash: str


def audit_verify(*, since: Checkpoint | None = None) -> dict[str, Any]:
    """Recomputes every link of the chain end to end, or from a checkpoint on. Reads only.

    Returns `{"ok", "checked", "unsealed", "head"?, "first_broken"?}`. `head` (seq and hash of
    the last seal) can be written down elsewhere: a later verify that finds the same seq with
    another hash, or no such seq, shows the tail was rewritten or cut.

    `since` is such a head: the seal at its seq must still have its hash, and only the seals
    after it are re-checked (and only events after its event counted as unsealed), so an
    auditor who verifies regularly pays for what was written since, not for the whole trail.
    """
    after, link, floor = 0, GENESIS_HASH, 0
    checked, broken = 0, None
    with transaction.atomic(), connection.cursor() as cursor:
        if since is not None:
            cursor.execute(_CHECKPOINT_SQL, [since.seq])
            found = cursor.fetchone()
            if found is None or found[0] != since.hash:
                event_id = found[1] if found is not None else None
                broken = _broken(since.seq, event_id, "checkpoint_changed")
            else:
                after, link, floor = since.seq, since.hash, found[1]
        if broken is None:
            cursor.execute(_VERIFY_SQL, {"after": after, "link": link})
            checked, seq, event_id, reason = cursor.fetchone()
            if seq is not None:
                broken = _broken(seq, event_id, reason)
        cursor.execute(_HEAD_SQL)
        head = cursor.fetchone()
        cursor.execute(_UNSEALED_SQL, [floor])
        unsealed = cursor.fetchone()[0]
    report: dict[str, Any] = {"ok": broken is None, "checked": checked, "unsealed": unsealed}
    if head is not None:
        report["head"] = {"seq": head[0], "hash": head[1]}
    if broken is not None:
        report["first_broken"] = broken
    return report


def _broken(seq: int, event_id: int | None, reason: str) -> dict[str, Any]:
    return {"seq": seq, "event_id": event_id, "reason": reason, "message": REASONS[reason]}


def audit_seal_and_verify(*, since: Checkpoint | None = None) -> dict[str, Any]:
    """Seals what is pending, then verifies the chain (all of it, or from `since` on)."""
    audit_seal_all()
    return audit_verify(since=since)


def audit_read_record(
    *, reader: Any, path: str, filters: dict[str, Any], object_type: str = "", object_id: Any = ""
) -> AuditRead:
    """Records that `reader` read the trail (the row's own trigger puts the read in the trail)."""
    return AuditRead.objects.create(
        reader=reader,
        path=path[:500],
        filters=filters,
        object_type=object_type,
        object_id=str(object_id) if object_id not in (None, "") else "",
    )
