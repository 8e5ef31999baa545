"""The five roles of the design. Each is a Django group; one person may hold several."""

from django.db import models


class Role(models.TextChoices):
    AUTHOR = "author", "Author"
    REVIEWER = "reviewer", "Reviewer"
    ARBITER = "arbiter", "Arbiter"
    AUDITOR = "auditor", "Auditor"
    LEAD = "lead", "Lead"


def user_has_role(user: object, *roles: str) -> bool:
    """True when an authenticated, active user holds any of `roles` (False for anonymous)."""
    has_role = getattr(user, "has_role", None)
    return bool(getattr(user, "is_authenticated", False) and has_role and has_role(*roles))
