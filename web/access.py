"""Who may open a page, and how the service layer's refusals become pages.

The rules are the API's: the same roles (core.roles), the same querysets (the selectors), and
the same exceptions from the services, shown as an HTML page with the API's status code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django_fsm import TransitionNotAllowed
from rest_framework import exceptions

from core.roles import user_has_role

View = Callable[..., HttpResponse]


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    titles = {400: "Not valid", 403: "Not allowed", 404: "Not found", 409: "Not now"}
    return render(
        request,
        "web/error.html",
        {"title": titles.get(status, "Error"), "message": message},
        status=status,
    )


def role_required(*roles: str) -> Callable[[View], View]:
    """Signed-in users holding one of `roles` (any signed-in user when none are named).

    Anonymous users go to the login page; others without the role get 403, and objects outside
    their querysets 404, as in the API.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if roles and not user_has_role(request.user, *roles):
                return error_page(
                    request, 403, f"This page needs one of the roles: {', '.join(roles)}."
                )
            try:
                return view(request, *args, **kwargs)
            except Http404:
                return error_page(request, 404, "Nothing is here, or it is not yours to see.")
            except (PermissionError, PermissionDenied) as exc:
                return error_page(request, 403, str(exc) or "You may not do this.")

        return wrapper

    return decorate


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        found: list[str] = []
        for key, value in detail.items():
            label = "" if key == "non_field_errors" else f"{prefix}{key}: "
            found.extend(_flatten(value, label))
        return found
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def refusal(exc: Exception) -> tuple[int, list[str]] | None:
    """(status, messages) for an exception the services raise on bad input or a wrong state."""
    if isinstance(exc, exceptions.ValidationError):
        return 400, _flatten(exc.detail)
    if isinstance(exc, TransitionNotAllowed):
        return 409, [str(exc) or "This is not allowed in the current state."]
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        messages = _flatten(detail) if isinstance(detail, dict | list) else [str(detail)]
        return exc.status_code, messages
    if isinstance(exc, PermissionError | PermissionDenied):
        return 403, [str(exc) or "You may not do this."]
    return None


class RefusedError(Exception):
    """Carries a service refusal to the view that re-renders its form with the messages."""

    def __init__(self, status: int, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = messages


def attempt(call: Callable[[], Any]) -> Any:
    """Runs a service call; a refusal (bad input, wrong state, no permission) raises RefusedError."""
    try:
        return call()
    except Exception as exc:
        found = refusal(exc)
        if found is None:
            raise
        raise RefusedError(*found) from exc
