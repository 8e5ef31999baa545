from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import db

        connection_created.connect(db.install_context_wrapper, dispatch_uid="audit-context")
        post_migrate.connect(db.install_row_triggers, sender=self, dispatch_uid="audit-triggers")
