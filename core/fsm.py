"""The one way a state changes: lock, check, transition, save and audit in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django_fsm import TransitionNotAllowed, has_transition_perm

from core import context
from core.errors import Conflict

M = TypeVar("M", bound=models.Model)
C = TypeVar("C", bound=Callable[..., bool])


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


def refusal(message: str) -> Callable[[C], C]:
    """Marks a transition condition with what a caller it refuses is told (409 `conflict`).

    A condition without one refuses as a state does (409 `transition_not_allowed`).
    """

    def mark(condition: C) -> C:
        condition.refusal = message  # type: ignore[attr-defined]
        return condition

    return mark


def transition_check(obj: models.Model, name: str, *, actor: Any) -> None:
    """Raises what `transition_locked` would raise for `obj` now, and changes nothing.

    For a service that does slow or committed work (validators) before the transition itself:
    the guard it checks first is the one the transition declares, not a copy of it.
    """
    model = type(obj)
    method = getattr(obj, name)
    meta = method._django_fsm
    state = meta.field.get_state(obj)
    transition = meta.get_transition(state)
    if transition is None or not meta.has_transition(state):
        raise TransitionNotAllowed(
            f"'{name}' is not allowed while the {model._meta.verbose_name} is '{_state_of(obj)}'."
        )
    for condition in transition.conditions or []:
        if not condition(obj):
            message = getattr(condition, "refusal", None)
            if message is not None:
                raise Conflict(message)
            raise TransitionNotAllowed(
                f"'{name}' is not allowed while the {model._meta.verbose_name} is '{_state_of(obj)}'."
            )
    if actor is not None and not has_transition_perm(method, actor):
        raise PermissionError(f"You may not {name} this {model._meta.verbose_name}.")


def transition_locked(
    locked: M, name: str, *, actor: Any, reason: str | None = None, **kwargs: Any
) -> M:
    """The same, for a row the caller has already locked inside its own transaction."""
    model = type(locked)
    transition_check(locked, name, actor=actor)
    action = action_of(model, name)
    assert transaction.get_connection().in_atomic_block, "lock the row inside a transaction"
    with context.audit_action(
        action, object_type=model._meta.label_lower, object_id=locked.pk, reason=reason, actor=actor
    ):
        getattr(locked, name)(**kwargs)
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
