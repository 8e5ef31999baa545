"""Stored results of POST requests made with an `Idempotency-Key` header (see decorators.py)."""

from django.conf import settings
from django.db import models
from rest_framework.utils.encoders import JSONEncoder


class IdempotencyRecord(models.Model):
    """One (user, key): the request it was first used with and, once finished, its response.

    `completed_at` is NULL while the first request is in flight. The response body is stored
    with DRF's JSON encoder, so a replay returns what the renderer sent the first time.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=16)
    path = models.TextField(help_text="path and query string")
    request_fingerprint = models.CharField(max_length=64, help_text="sha256 hex of the body")
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=JSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_record_user_key")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
