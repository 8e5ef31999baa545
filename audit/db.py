"""The database half of the audit trail.

Every audited table carries an AFTER row trigger (`marlin_audit_row`) that writes one
`audit_event` row per insert, update and delete, in the same transaction as the change. Because
it is a trigger, nothing escapes it: the API, the admin, workers, `queryset.update()` and raw SQL
are all recorded. The application tells the trigger who acts and why through a transaction-local
setting (`marlin.audit`) that a connection wrapper sets before each write statement.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from django.apps import apps
from django.db import connections, transaction
from django.db.models import Model
from psycopg import sql as pgsql

from core import context

# Apps whose every model is audited, plus single models of third-party apps.
AUDITED_APPS = {"accounts", "tasks", "reviews", "rubrics"}
AUDITED_MODELS = {"auth.group", "audit.auditread"}
# Columns whose values never enter the trail (only the fact that they changed).
HIDDEN_COLUMNS: dict[str, set[str]] = {"accounts.user": {"password"}}

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_SET_CONTEXT = "SELECT set_config('marlin.audit', %s, true)"


def context_payload() -> str:
    op = context.current()
    if op is None:
        return "{}"
    actor_id, actor_label = op.resolved_actor()
    return json.dumps(
        {
            "actor_id": actor_id,
            "actor": actor_label,
            "origin": op.origin,
            "request_id": op.operation_id,
            "reason": op.reason or ("admin edit" if op.origin == "admin" else None),
            "action": op.action,
            "action_object": op.action_object,
        }
    )


def _with_audit_context(execute, sql, params, many, ctx):  # type: ignore[no-untyped-def]
    # Transaction-local, so it is set again before every write: a rollback or a new
    # transaction must never carry an earlier operation's identity.
    if not (isinstance(sql, str) and _WRITE.match(sql)):
        return execute(sql, params, many, ctx)
    cursor, connection = ctx["cursor"].cursor, ctx["connection"]
    if params is None:
        # Raw SQL without parameters may hold several statements (a migration's RunSQL), which
        # a pipeline's extended protocol refuses. The context goes in a statement of its own,
        # in a transaction so that it reaches the write (rare: two or four round trips).
        in_transaction = not connection.get_autocommit()
        with contextlib.nullcontext() if in_transaction else transaction.atomic(connection.alias):
            cursor.execute(_SET_CONTEXT, [context_payload()])
            return execute(sql, params, many, ctx)
    # One round trip instead of two: in pipeline mode both statements go out together and run
    # in order in the same transaction (one implicit transaction in autocommit: a single Sync
    # ends the pipeline). The cursor is left on the write's own result (its rows, rowcount and
    # RETURNING values). Errors surface when the pipeline ends, so they are wrapped there.
    with connection.wrap_database_errors, cursor.connection.pipeline():
        cursor.execute(_SET_CONTEXT, [context_payload()])
        return execute(sql, params, many, ctx)


def install_context_wrapper(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "postgresql" and _with_audit_context not in connection.execute_wrappers:
        connection.execute_wrappers.append(_with_audit_context)


def audited_models() -> list[type[Model]]:
    found: list[type[Model]] = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        owner = meta.auto_created._meta if meta.auto_created else meta
        if owner.app_label in AUDITED_APPS or owner.label_lower in AUDITED_MODELS:
            found.append(model)
    return found


def object_type(model: type[Model]) -> str:
    return model._meta.label_lower


def install_row_triggers(using: str = "default", **kwargs: Any) -> None:
    """Attach the audit trigger to every audited table (idempotent; runs after each migrate)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        for model in audited_models():
            kind = object_type(model)
            hidden = "{" + ",".join(sorted(HIDDEN_COLUMNS.get(kind, set()))) + "}"
            # DDL takes no bound parameters: the arguments are quoted into the text.
            statement = pgsql.SQL(
                "CREATE OR REPLACE TRIGGER marlin_audit AFTER INSERT OR UPDATE OR DELETE "
                "ON {table} FOR EACH ROW EXECUTE FUNCTION marlin_audit_row({kind}, {hidden})"
            ).format(
                table=pgsql.Identifier(model._meta.db_table),
                kind=pgsql.Literal(kind),
                hidden=pgsql.Literal(hidden),
            )
            cursor.execute(statement.as_string(cursor.cursor))
