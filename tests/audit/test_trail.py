import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from audit.db import audited_models
from audit.models import AuditEvent
from core.context import audit_reason, operation
from tasks.models import Repository

pytestmark = pytest.mark.django_db


@pytest.fixture
def repository():
    return Repository.objects.create(
        full_name="mlflow/mlflow", url="https://github.com/mlflow/mlflow"
    )


def events_for(obj):
    return list(
        AuditEvent.objects.filter(
            object_type=obj._meta.label_lower, object_id=str(obj.pk)
        ).order_by("id")
    )


def test_an_insert_is_recorded_with_every_field(repository):
    (created,) = events_for(repository)
    assert created.action == "repository.created"
    assert created.changes["full_name"] == [None, "mlflow/mlflow"]
    assert created.at is not None


def test_an_audit_entry_cannot_be_updated_through_the_orm(repository):
    event = events_for(repository)[0]
    event.action = "forged"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")


def test_an_audit_entry_cannot_be_deleted_through_the_orm(repository):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(object_id=str(repository.pk)).delete()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET reason = 'forged'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
    ],
)
def test_raw_sql_cannot_change_the_trail(repository, statement):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert len(events_for(repository)) == 1


def test_queryset_update_leaves_an_entry_with_who_and_when(repository, make_user):
    lead = make_user("lead")
    with operation(origin="command:fix", actor=lead), audit_reason("rename"):
        Repository.objects.filter(pk=repository.pk).update(language="Python")
    last = events_for(repository)[-1]
    assert last.action == "repository.updated"
    assert last.changes == {"language": ["", "Python"]}
    assert (last.actor_id, last.actor, last.reason) == (lead.id, lead.username, "rename")
    assert last.at is not None


def test_raw_sql_outside_the_application_is_still_recorded_with_the_database_user(repository):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tasks_repository SET active = false WHERE id = %s", [repository.pk])
    last = events_for(repository)[-1]
    assert last.changes == {"active": [True, False]}
    assert last.db_user == connection.settings_dict["USER"]


def test_a_save_that_changes_nothing_is_not_an_entry(repository):
    repository.refresh_from_db()
    Repository.objects.filter(pk=repository.pk).update(language="")
    assert len(events_for(repository)) == 1


def test_a_delete_keeps_the_last_values(repository):
    pk = repository.pk
    repository.delete()
    last = AuditEvent.objects.filter(object_type="tasks.repository", object_id=str(pk)).last()
    assert last.action == "repository.deleted"
    assert last.changes["full_name"] == ["mlflow/mlflow", None]


def test_the_context_of_a_rolled_back_transaction_does_not_leak(repository, make_user):
    lead = make_user("lead")
    with pytest.raises(RuntimeError), transaction.atomic(), operation(origin="api", actor=lead):
        Repository.objects.filter(pk=repository.pk).update(language="Go")
        raise RuntimeError
    Repository.objects.filter(pk=repository.pk).update(language="Rust")
    last = events_for(repository)[-1]
    assert last.changes == {"language": ["", "Rust"]}
    assert last.actor_id is None


def test_every_domain_table_has_the_audit_trigger():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'marlin_audit'"
        )
        with_trigger = {row[0] for row in cursor.fetchall()}
    expected = {model._meta.db_table for model in audited_models()}
    assert {"tasks_repository", "accounts_user", "accounts_user_groups", "auth_group"} <= expected
    assert expected <= with_trigger


def test_a_named_insert_carries_its_action():
    from core.context import audit_insert

    with audit_insert("repository.imported", object_type="tasks.repository"):
        repository = Repository.objects.create(full_name="a/b", url="https://example.org/a/b")
    Repository.objects.filter(pk=repository.pk).update(language="C")
    actions = [e.action for e in events_for(repository)]
    assert actions == ["repository.imported", "repository.updated"]


@pytest.mark.django_db(transaction=True)
def test_a_write_outside_any_transaction_carries_its_context(make_user):
    # In autocommit the context and the write go in one pipeline, so they share the implicit
    # transaction: a context set by a statement of its own would be gone before the write.
    lead = make_user("lead")
    assert connection.get_autocommit()
    with operation(origin="command:fix", actor=lead), audit_reason("rename outside a transaction"):
        repository = Repository.objects.create(full_name="org/solo", url="https://example.org/s")
        Repository.objects.filter(pk=repository.pk).update(language="Go")
    created, updated = events_for(repository)
    for entry in (created, updated):
        assert (entry.actor_id, entry.reason) == (lead.id, "rename outside a transaction")
    assert updated.changes == {"language": ["", "Go"]}


def test_a_write_whose_sql_holds_a_percent_sign_and_no_parameters(repository, make_user):
    lead = make_user("lead")
    with operation(origin="command:fix", actor=lead), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE tasks_repository SET language = '100% Go' WHERE id = {repository.pk}"
        )
        assert cursor.rowcount == 1
    last = events_for(repository)[-1]
    assert last.changes == {"language": ["", "100% Go"]}
    assert last.actor_id == lead.id


@pytest.mark.django_db(transaction=True)
def test_raw_statements_without_parameters_outside_a_transaction_carry_their_context(make_user):
    # No parameters: the text may hold several statements, which go apart from the context.
    lead = make_user("lead")
    repository = Repository.objects.create(full_name="org/raw", url="https://example.org/r")
    with operation(origin="command:fix", actor=lead), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE tasks_repository SET language = 'Go' WHERE id = {repository.pk}; "
            f"UPDATE tasks_repository SET default_branch = 'trunk' WHERE id = {repository.pk}"
        )
    assert connection.get_autocommit()
    language, branch = events_for(repository)[-2:]
    assert language.changes == {"language": ["", "Go"]}
    assert branch.changes == {"default_branch": ["main", "trunk"]}
    assert {language.actor_id, branch.actor_id} == {lead.id}


@pytest.mark.django_db(transaction=True)
def test_a_refused_write_raises_the_database_error_and_leaves_no_entry(repository, make_user):
    # The context and the write go out together; the write's error still reads as Django's.
    lead = make_user("lead")
    before = AuditEvent.objects.count()
    with operation(origin="api", actor=lead), pytest.raises(IntegrityError):
        Repository.objects.create(full_name=repository.full_name, url="https://example.org/x")
    assert AuditEvent.objects.count() == before
    Repository.objects.filter(pk=repository.pk).update(language="Go")
    assert events_for(repository)[-1].changes == {"language": ["", "Go"]}
