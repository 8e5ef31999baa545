"""Keeps each role's Django permissions (used by the admin) in line with the design's roles table."""

from typing import Any

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

from core.roles import Role

# Lowercase model labels; "view" for readers, the full set for the lead's catalogue work.
_LEAD_MANAGES = ["tasks.repository", "tasks.modelversion", "tasks.campaign", "rubrics.rubric"]


def _permissions_for(role: str) -> set[Permission]:
    every = Permission.objects.select_related("content_type")
    domain = [
        p
        for p in every
        if p.content_type.app_label in {"tasks", "reviews", "rubrics", "accounts", "audit"}
    ]
    if role == Role.AUDITOR:
        return {p for p in domain if p.codename.startswith("view_")}
    if role == Role.LEAD:
        managed = {label.split(".")[1] for label in _LEAD_MANAGES}
        return {
            p
            for p in domain
            if p.codename.startswith("view_")
            or (p.content_type.model in managed and not p.codename.startswith("delete_"))
        }
    return set()


def sync_role_permissions(**kwargs: Any) -> None:
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for role in Role.values:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = _permissions_for(role)
        if set(group.permissions.all()) != wanted:
            group.permissions.set(wanted)
