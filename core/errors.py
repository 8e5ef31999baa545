"""One error shape for every failure: {"error": {"code", "message", "details"}}."""

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django_fsm import TransitionNotAllowed
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

logger = logging.getLogger("core.errors")


class Conflict(exceptions.APIException):
    """The request is valid but not allowed in the object's current state."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "This is not allowed in the current state."


class TransitionRefused(Conflict):
    default_code = "transition_not_allowed"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "request_too_large"
    default_detail = "The request body is larger than this service accepts."


class ServiceUnavailable(exceptions.APIException):
    """The database cannot be reached: the request did nothing and may be retried."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is briefly unavailable; retry in a few seconds."


# PostgreSQL down or restarting, a dropped connection, or another transient failure (deadlock,
# timeout): the transaction was rolled back, so nothing was done and a retry may succeed.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = "5"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"
    default_detail = "The request cannot be processed."


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _message_and_details(exc: exceptions.APIException) -> tuple[str, Any]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        return "The request is not valid.", detail
    if isinstance(detail, list | dict):
        return str(exc.default_detail), detail
    return str(detail), {}


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("The request could not be read.")
    elif isinstance(exc, DATABASE_UNAVAILABLE):
        logger.warning("database unavailable: %s", exc)
        set_rollback()
        exc = ServiceUnavailable()
    if isinstance(exc, TransitionNotAllowed):
        exc = TransitionRefused(str(exc) or TransitionRefused.default_detail)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied | PermissionError):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        # Unexpected: log with the traceback, roll back, and answer in the contract's shape.
        logger.exception("unhandled error", exc_info=exc)
        set_rollback()
        return Response(
            error_body("server_error", "An unexpected error occurred."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    message, details = _message_and_details(exc)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details = {"retry_after_seconds": int(exc.wait)}
    response.data = error_body(_code(exc), message, details)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(400, "bad_request", "The request is not valid.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403, "permission_denied", "You may not do this.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(404, "not_found", "Nothing is here.")


def handler500(request: HttpRequest) -> JsonResponse:
    # Views outside the API (admin, web pages) reach here with the exception still being handled.
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        response = _json_error(503, "service_unavailable", ServiceUnavailable.default_detail)
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    return _json_error(500, "server_error", "An unexpected error occurred.")
