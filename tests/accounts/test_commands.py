import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from audit.models import AuditEvent
from core.context import operation

pytestmark = pytest.mark.django_db


def test_create_user_gives_the_roles_and_records_who_did_it(capsys):
    with operation(origin="command:create_user", actor_label="os:ops"):
        call_command(
            "create_user",
            "rita",
            "--password",
            "s3cret-pass-word",
            "--role",
            "reviewer",
            "--role",
            "arbiter",
        )
    user = User.objects.get(username="rita")
    assert user.roles == {"reviewer", "arbiter"}
    assert user.check_password("s3cret-pass-word")
    created = AuditEvent.objects.get(
        object_type="accounts.user", object_id=str(user.id), action="user.created"
    )
    assert (created.actor, created.origin) == ("os:ops", "command:create_user")
    assert created.changes["password"] == [None, "[hidden]"]
    assert "Created rita" in capsys.readouterr().out


def test_create_user_updates_roles_of_an_existing_user():
    call_command("create_user", "rita", "--role", "reviewer")
    call_command("create_user", "rita", "--role", "lead")
    assert User.objects.get(username="rita").roles == {"lead"}


def test_create_user_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        call_command("create_user", "rita", "--role", "overlord")
