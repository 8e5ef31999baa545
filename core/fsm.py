"""The one way a state changes: lock, check, transition, save and audit in one transaction."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django_fsm import TransitionNotAllowed, can_proceed, has_transition_perm

from core import context

M = TypeVar("M", bound=models.Model)


def apply_transition(
    obj: M,
    name: str,
    *,
    actor: Any,
    reason: str | None = None,
    **kwargs: Any,
) -> M:
    """Run transition `name` on a fresh, locked copy of `obj` and return that copy.

    Raises TransitionNotAllowed (409) when the state or a condition forbids it, and
    PermissionError (403) when the actor lacks the transition's permission. A `None`
    actor is the system itself (a job reacting to an event) and skips the permission.
    """
    with transaction.atomic():
        locked = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
        return transition_locked(locked, name, actor=actor, reason=reason, **kwargs)


def transition_locked(
    locked: M, name: str, *, actor: Any, reason: str | None = None, **kwargs: Any
) -> M:
    """The same, for a row the caller has already locked inside its own transaction."""
    model = type(locked)
    method = getattr(locked, name)
    if not can_proceed(method):
        raise TransitionNotAllowed(
            f"'{name}' is not allowed while the {model._meta.verbose_name} is '{_state_of(locked)}'."
        )
    if actor is not None and not has_transition_perm(method, actor):
        raise PermissionError(f"You may not {name} this {model._meta.verbose_name}.")
    action = action_of(model, name)
    assert transaction.get_connection().in_atomic_block, "lock the row inside a transaction"
    with context.audit_action(
        action, object_type=model._meta.label_lower, object_id=locked.pk, reason=reason, actor=actor
    ):
        method(**kwargs)
        locked.save()
    return locked


def _state_of(obj: models.Model) -> str:
    return str(getattr(obj, "state", "?"))


def action_of(model: type[models.Model], name: str) -> str:
    """The audit action transition `name` declares (`custom={"action": "task.submitted"}`)."""
    transitions = getattr(model, name)._django_fsm.transitions.values()
    actions = {t.custom.get("action") for t in transitions}
    if len(actions) != 1 or None in actions:
        raise ImproperlyConfigured(
            f"{model.__name__}.{name} must declare one audit action: custom={{'action': ...}}."
        )
    return actions.pop()


def available_transitions(obj: models.Model, user: Any, field: str = "state") -> list[str]:
    """Names of the transitions `user` may take now (the API's "transitions" list)."""
    getter = getattr(obj, f"get_available_user_{field}_transitions")
    return sorted(t.name for t in getter(user))
