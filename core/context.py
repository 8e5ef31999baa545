"""Who is acting, and under which request or job: read by the audit trail and the logs.

One operation (an HTTP request, a Celery job, a management command) runs inside
`operation(...)`. Nested `audit_reason`/`audit_action` blocks add why and what.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Operation:
    origin: str  # "api", "admin", "job:<name>", "command:<name>", "shell"
    operation_id: str
    request: Any = None  # the HttpRequest, read lazily: DRF authenticates after middleware
    actor_id: int | None = None
    actor_label: str | None = None
    reason: str | None = None
    action: str | None = None
    action_object: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_actor(self) -> tuple[int | None, str | None]:
        if self.actor_id is not None or self.actor_label is not None:
            return self.actor_id, self.actor_label
        user = getattr(self.request, "user", None) if self.request is not None else None
        if user is not None and getattr(user, "is_authenticated", False):
            return user.pk, user.get_username()
        return None, None


_current: ContextVar[Operation | None] = ContextVar("marlin_operation", default=None)


def current() -> Operation | None:
    return _current.get()


def new_operation_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def operation(
    *,
    origin: str,
    operation_id: str | None = None,
    request: Any = None,
    actor: Any = None,
    actor_label: str | None = None,
) -> Iterator[Operation]:
    op = Operation(
        origin=origin,
        operation_id=operation_id or new_operation_id(),
        request=request,
        actor_id=getattr(actor, "pk", None),
        actor_label=actor.get_username() if actor is not None else actor_label,
    )
    token = _current.set(op)
    try:
        yield op
    finally:
        _current.reset(token)


@contextlib.contextmanager
def _amend(**changes: Any) -> Iterator[Operation]:
    base = _current.get() or Operation(origin="shell", operation_id=new_operation_id())
    op = replace(base, **changes)
    token = _current.set(op)
    try:
        yield op
    finally:
        _current.reset(token)


def audit_reason(reason: str | None) -> contextlib.AbstractContextManager[Operation]:
    """Attach a reason (why) to every audit entry written inside the block."""
    return _amend(reason=reason)


def audit_insert(
    action: str, *, object_type: str, reason: str | None = None
) -> contextlib.AbstractContextManager[Operation]:
    """Name the rows of `object_type` inserted in the block (their ids do not exist yet)."""
    changes: dict[str, Any] = {"action": action, "action_object": f"{object_type}:*"}
    if reason is not None:  # otherwise keep the reason of the surrounding block
        changes["reason"] = reason
    return _amend(**changes)


def audit_action(
    action: str, *, object_type: str, object_id: Any, reason: str | None = None, actor: Any = None
) -> contextlib.AbstractContextManager[Operation]:
    """Name the change of one object (e.g. `task.submitted`) instead of a plain `task.updated`."""
    changes: dict[str, Any] = {"action": action, "action_object": f"{object_type}:{object_id}"}
    if reason is not None:  # otherwise keep the reason of the surrounding block
        changes["reason"] = reason
    if actor is not None:
        changes.update(actor_id=actor.pk, actor_label=actor.get_username())
    return _amend(**changes)
