from functools import cached_property

from django.contrib.auth.models import AbstractUser

from core.roles import Role


class User(AbstractUser):
    """A person using Marlin; roles are the Django groups named after `Role`."""

    @cached_property
    def roles(self) -> frozenset[str]:
        if not self.is_active:
            return frozenset()
        names = {group.name for group in self.groups.all()}
        return frozenset(names & set(Role.values))

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))
