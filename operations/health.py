"""Liveness (the process answers) and readiness (its database and broker answer)."""

import redis
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import error_body


class _Probe(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


class LivenessView(_Probe):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "not ready"; the message says which
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def _check_broker() -> str | None:
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


class ReadinessView(_Probe):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        failures = {
            name: error
            for name, error in (("database", _check_database()), ("broker", _check_broker()))
            if error
        }
        if failures:
            message = f"Not ready: {', '.join(sorted(failures))} unavailable."
            return Response(
                error_body("not_ready", message, {"failing": failures}),
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response({"status": "ready", "checks": {"database": "ok", "broker": "ok"}})


class IndexView(_Probe):
    """The service's front door: where the API, its documentation and the admin are."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "service": "marlin",
                "api": "/api/v1/",
                "schema": "/api/schema/",
                "docs": "/api/docs/",
                "admin": "/admin/",
                "health": {"liveness": "/healthz", "readiness": "/readyz"},
            }
        )
