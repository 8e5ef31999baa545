from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "marlin.idempotency"
    label = "idempotency"
    verbose_name = "Idempotency keys"
