"""OpenAPI post-processing: the error responses every operation can give, in the contract's shape.

drf-spectacular documents the success responses a view declares; the errors come from one
exception handler (core.errors) and apply everywhere, so they are added here, once.
"""

import re
from typing import Any

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error: a stable code, a human message and details (field errors, ...).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}
# From the REST contract: what each status means here.
EVERY_OPERATION = {
    "400": "Invalid input (body, query parameters or page).",
    "401": "Not authenticated, or an unknown token.",
    "403": "The caller's roles may not do this.",
    "404": "No such object, or not one the caller may see.",
    "429": "Throttled; `details.retry_after_seconds` says when to retry.",
    "503": "The database or the broker is unavailable; retry after `Retry-After` seconds.",
}
WRITES = {
    "409": "Not allowed in the object's current state, or a concurrent change.",
    "415": "The body's media type is not supported.",
}
IDEMPOTENT = {
    "409": "A request with this Idempotency-Key is still in progress.",
    "422": "This Idempotency-Key was used with another request.",
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Retry safely: the first response is replayed (with `Idempotent-Replayed: true`) for "
        "the same key and body; another body gets 422. Keys are kept at least 24 hours."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
_METHODS = {"get", "post", "put", "patch", "delete"}
_PARAMETER = re.compile(r"\{[^}]*\}")


def _shape(path: str) -> str:
    # The generator's endpoints say {pk} where the document says {id}.
    return _PARAMETER.sub("{}", path)


def _idempotent_operations(generator: Any) -> set[tuple[str, str]]:
    """(path, method) of the view methods wrapped by idempotency's @idempotent."""
    found = set()
    for path, _regex, method, view in getattr(generator, "endpoints", None) or []:
        handler = getattr(getattr(view, "cls", None), method.lower(), None)
        if getattr(handler, "idempotent", False):
            found.add((_shape(path), method.lower()))
    return found


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry: documents the shared error responses."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}}
    idempotent = _idempotent_operations(generator)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            errors = dict(EVERY_OPERATION)
            if method != "get":
                errors.update(WRITES)
            if (_shape(path), method) in idempotent:
                errors.update(IDEMPOTENT)
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == IDEMPOTENCY_KEY["name"] for p in parameters):
                    parameters.append(dict(IDEMPOTENCY_KEY))
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                responses.setdefault(status, {"description": description, "content": content})
    return result
