from django.db import models


class AuditEvent(models.Model):
    """One recorded change. Written only by the database trigger; never updated or deleted.

    The table is created by SQL in the migrations (not managed by Django), so that test flushes
    never try to truncate it and PostgreSQL itself refuses UPDATE, DELETE and TRUNCATE.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    txid = models.BigIntegerField()
    actor_id = models.BigIntegerField(null=True)
    actor = models.TextField(null=True)  # noqa: DJ001 (mirrors the SQL table: NULL means "unknown")
    db_user = models.TextField()
    origin = models.TextField()
    action = models.TextField()
    object_type = models.TextField()
    object_id = models.TextField()
    changes = models.JSONField()
    reason = models.TextField(null=True)  # noqa: DJ001 (mirrors the SQL table: NULL means "unknown")
    request_id = models.TextField(null=True)  # noqa: DJ001 (mirrors the SQL table: NULL means "unknown")

    class Meta:
        managed = False
        db_table = "audit_event"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} {self.object_type}:{self.object_id}"
