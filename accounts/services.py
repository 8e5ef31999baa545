"""Writes for users and roles."""

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import User
from core.roles import Role


@transaction.atomic
def user_upsert(
    *, username: str, password: str | None, roles: Iterable[str], email: str = ""
) -> tuple[User, bool]:
    """Creates the user or updates its password and roles; returns (user, created)."""
    roles = sorted(set(roles))
    unknown = set(roles) - set(Role.values)
    if unknown:
        raise ValueError(f"Unknown roles: {', '.join(sorted(unknown))}")
    user = User.objects.filter(username=username).first()
    created = user is None
    if user is None:
        user = User(username=username, email=email)
    if password is not None and (created or not user.check_password(password)):
        user.set_password(password)
    # Leads manage through the admin too; auditors read it.
    user.is_staff = Role.LEAD in roles or Role.AUDITOR in roles
    user.save()
    user.groups.set(Group.objects.filter(name__in=roles))
    return user, created
