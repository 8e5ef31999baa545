"""The hash chain: sealed asynchronously, verified end to end, tampering found and named."""

import itertools
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from audit import services
from audit.jobs import audit_seal_job
from audit.models import AuditEvent, AuditSeal
from tasks.models import Repository

pytestmark = pytest.mark.django_db


def execute(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def as_superuser(table, trigger, sql, params=None):
    """What a database superuser can do: switch the guard off, change the row, switch it on."""
    execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    execute(sql, params)
    execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


@pytest.fixture
def sealed_events():
    """Three repositories' entries, sealed; returns their events in id order."""
    repositories = [
        Repository.objects.create(full_name=f"org/sealed-{n}", url=f"https://example.org/{n}")
        for n in range(3)
    ]
    Repository.objects.filter(pk=repositories[1].pk).update(language="Go")
    services.audit_seal_all()
    return list(
        AuditEvent.objects.filter(
            object_type="tasks.repository", object_id__in=[str(r.pk) for r in repositories]
        ).order_by("id")
    )


def test_verify_passes_on_an_untouched_trail_with_nothing_left_unsealed(sealed_events):
    report = services.audit_verify()
    assert report["ok"] is True, report
    assert report["unsealed"] == 0
    assert report["checked"] >= len(sealed_events)
    assert "first_broken" not in report
    last = AuditSeal.objects.order_by("-seq").first()
    assert report["head"] == {"seq": last.seq, "hash": last.hash}


def test_each_seal_links_to_the_previous_one(sealed_events):
    seals = list(AuditSeal.objects.filter(event_id__in=[e.id for e in sealed_events]))
    assert [s.event_id for s in seals] == [e.id for e in sealed_events]
    for previous, seal in itertools.pairwise(seals):
        assert seal.prev_hash == previous.hash
        assert len(seal.hash) == 64


def test_sealing_again_seals_nothing_and_the_job_is_idempotent(sealed_events):
    assert services.audit_seal_pending() == 0
    Repository.objects.create(full_name="org/later", url="https://example.org/later")
    assert audit_seal_job() == 1
    assert audit_seal_job() == 0


def test_an_edited_event_is_reported_as_the_first_broken_link(sealed_events):
    edited = sealed_events[1]
    as_superuser(
        "audit_event",
        "audit_event_append_only",
        "UPDATE audit_event SET reason = 'nothing to see' WHERE id = %s",
        [edited.id],
    )
    report = services.audit_verify()
    assert report["ok"] is False
    broken = report["first_broken"]
    assert (broken["event_id"], broken["reason"]) == (edited.id, "event_changed")
    assert broken["seq"] == AuditSeal.objects.get(event_id=edited.id).seq


def test_an_edited_change_record_is_reported(sealed_events):
    edited = sealed_events[-1]
    as_superuser(
        "audit_event",
        "audit_event_append_only",
        """UPDATE audit_event SET changes = jsonb_set(changes, '{language,1}', '"Rust"')
           WHERE id = %s""",
        [edited.id],
    )
    assert services.audit_verify()["first_broken"]["event_id"] == edited.id


def test_a_deleted_event_is_reported(sealed_events):
    deleted = sealed_events[0]
    as_superuser(
        "audit_event",
        "audit_event_append_only",
        "DELETE FROM audit_event WHERE id = %s",
        [deleted.id],
    )
    broken = services.audit_verify()["first_broken"]
    assert (broken["event_id"], broken["reason"]) == (deleted.id, "event_missing")


def test_a_rewritten_link_is_reported(sealed_events):
    seal = AuditSeal.objects.get(event_id=sealed_events[2].id)
    as_superuser(
        "audit_seal",
        "audit_seal_append_only",
        "UPDATE audit_seal SET prev_hash = repeat('f', 64) WHERE seq = %s",
        [seal.seq],
    )
    broken = services.audit_verify()["first_broken"]
    assert (broken["seq"], broken["reason"]) == (seal.seq, "link_broken")


def test_a_removed_seal_breaks_the_next_link(sealed_events):
    seals = list(AuditSeal.objects.filter(event_id__in=[e.id for e in sealed_events]))
    as_superuser(
        "audit_seal",
        "audit_seal_append_only",
        "DELETE FROM audit_seal WHERE seq = %s",
        [seals[1].seq],
    )
    broken = services.audit_verify()["first_broken"]
    assert (broken["seq"], broken["reason"]) == (seals[2].seq, "link_broken")


def checkpoint_of(report):
    return services.Checkpoint(**report["head"])


def test_a_verify_from_a_checkpoint_checks_only_what_was_sealed_after_it(sealed_events):
    full = services.audit_verify()
    Repository.objects.create(full_name="org/after", url="https://example.org/after")
    services.audit_seal_all()
    since = services.audit_verify(since=checkpoint_of(full))
    assert since["ok"] is True, since
    assert since["checked"] == 1  # the one entry written after the checkpoint
    assert since["head"]["seq"] == full["head"]["seq"] + 1
    assert services.audit_verify(since=checkpoint_of(since))["checked"] == 0


def test_a_verify_from_a_checkpoint_finds_tampering_after_it(sealed_events):
    first = sealed_events[0]
    checkpoint = checkpoint_of(
        {"head": AuditSeal.objects.filter(event_id=first.id).values("seq", "hash").get()}
    )
    edited = sealed_events[2]
    as_superuser(
        "audit_event",
        "audit_event_append_only",
        "UPDATE audit_event SET reason = 'rewritten' WHERE id = %s",
        [edited.id],
    )
    broken = services.audit_verify(since=checkpoint)["first_broken"]
    assert (broken["event_id"], broken["reason"]) == (edited.id, "event_changed")


@pytest.mark.parametrize("change", ["rewrite the checkpoint's hash", "give another hash"])
def test_a_checkpoint_that_no_longer_matches_is_reported(sealed_events, change):
    report = services.audit_verify()
    checkpoint = checkpoint_of(report)
    if change == "give another hash":
        checkpoint = services.Checkpoint(seq=checkpoint.seq, hash="e" * 64)
    else:
        as_superuser(
            "audit_seal",
            "audit_seal_append_only",
            "UPDATE audit_seal SET hash = repeat('d', 64) WHERE seq = %s",
            [checkpoint.seq],
        )
    again = services.audit_verify(since=checkpoint)
    assert again["ok"] is False
    # Nothing past a checkpoint that does not hold is checked; the rest is still reported.
    assert again["checked"] == 0
    assert again["head"]["seq"] == report["head"]["seq"]
    assert again["unsealed"] == services.audit_verify()["unsealed"]
    assert (again["first_broken"]["seq"], again["first_broken"]["reason"]) == (
        checkpoint.seq,
        "checkpoint_changed",
    )


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_seal SET hash = 'x'", "DELETE FROM audit_seal", "TRUNCATE audit_seal"],
)
def test_postgresql_refuses_to_change_the_seals(sealed_events, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute(statement)


def test_the_command_exits_1_naming_the_broken_event(sealed_events, capsys):
    call_command("audit_verify")
    assert '"ok": true' in capsys.readouterr().out
    as_superuser(
        "audit_event",
        "audit_event_append_only",
        "UPDATE audit_event SET actor = 'someone else' WHERE id = %s",
        [sealed_events[0].id],
    )
    with pytest.raises(CommandError, match=f"event {sealed_events[0].id}") as failed:
        call_command("audit_verify")
    assert failed.value.returncode == 1


def test_the_canonical_text_does_not_depend_on_the_session_time_zone(sealed_events):
    execute("SET TIME ZONE 'America/New_York'")
    try:
        assert services.audit_verify()["ok"] is True
    finally:
        execute("SET TIME ZONE 'UTC'")


def _in_thread(target):
    def run():
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_with_a_lower_id_is_sealed_later_with_a_higher_seq():
    """Ids are not commit order. Writer A takes its transaction id first, writer B then writes
    (lower event id) and stays open, A writes and commits: A's event is final and sealed, B's
    waits for B, and joins the chain after it."""
    services.audit_seal_all()
    steps = {name: threading.Event() for name in ("a_began", "a_go", "a_done", "b_wrote", "b_go")}
    made = {}

    def writer_a():
        with transaction.atomic():
            execute("SELECT txid_current()")
            steps["a_began"].set()
            steps["a_go"].wait(10)
            made["a"] = Repository.objects.create(full_name="org/a", url="https://example.org/a")
        steps["a_done"].set()

    def writer_b():
        with transaction.atomic():
            made["b"] = Repository.objects.create(full_name="org/b", url="https://example.org/b")
            steps["b_wrote"].set()
            steps["b_go"].wait(10)

    threads = [_in_thread(writer_a)]
    try:
        assert steps["a_began"].wait(10)
        threads.append(_in_thread(writer_b))
        assert steps["b_wrote"].wait(10)
        steps["a_go"].set()
        assert steps["a_done"].wait(10)
        assert services.audit_seal_all() == 1  # A only: B may still commit
    finally:
        steps["a_go"].set()
        steps["b_go"].set()
        for thread in threads:
            thread.join(10)

    def event_of(repository):
        return AuditEvent.objects.get(object_type="tasks.repository", object_id=str(repository.pk))

    a_event, b_event = event_of(made["a"]), event_of(made["b"])
    assert b_event.id < a_event.id
    assert not AuditSeal.objects.filter(event_id=b_event.id).exists()
    assert services.audit_seal_all() == 1
    a_seal, b_seal = (AuditSeal.objects.get(event_id=e.id) for e in (a_event, b_event))
    assert b_seal.seq > a_seal.seq
    assert b_seal.prev_hash == a_seal.hash
    assert services.audit_verify()["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_one_sealer_at_a_time_the_second_returns_at_once():
    Repository.objects.create(full_name="org/queued", url="https://example.org/queued")
    locked, release = threading.Event(), threading.Event()

    def first_sealer():
        with transaction.atomic():
            execute("SELECT pg_advisory_xact_lock(7291450331)")  # the key the sealer takes
            locked.set()
            release.wait(10)

    thread = _in_thread(first_sealer)
    try:
        assert locked.wait(10)
        assert services.audit_seal_pending() == 0
    finally:
        release.set()
        thread.join(10)
    assert services.audit_seal_pending() >= 1
