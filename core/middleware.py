import logging
import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core import context

logger = logging.getLogger("marlin.request")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Gives each request an id (or keeps a well-formed X-Request-ID), and logs one JSON line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _CLIENT_ID.match(given) else context.new_operation_id()
        if request.path.startswith("/admin/"):
            origin = "admin"
        elif request.path.startswith("/app/"):
            origin = "web"
        else:
            origin = "api"
        started = time.perf_counter()
        with context.operation(origin=origin, operation_id=request_id, request=request):
            response = self.get_response(request)
            user = getattr(request, "user", None)
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user": user.get_username() if user and user.is_authenticated else None,
                },
            )
        response["X-Request-ID"] = request_id
        return response
