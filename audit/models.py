from django.conf import settings
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


class AuditSeal(models.Model):
    """One link of the hash chain over `audit_event`. Written only by `audit_seal_pending()`.

    `hash = sha256(prev_hash || audit_event_canonical(event))`, chained in `seq` order (the order
    of sealing, not of event ids: concurrent transactions commit their ids out of order).
    """

    seq = models.BigAutoField(primary_key=True)
    event_id = models.BigIntegerField(unique=True)
    prev_hash = models.TextField()
    hash = models.TextField()
    sealed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "audit_seal"
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"seal #{self.seq} of event {self.event_id}"


class AuditRead(models.Model):
    """Someone read the trail: which endpoint, with which filters, about which object.

    Its table is audited like the domain tables, so every read is itself an entry of the trail.
    """

    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audit_reads"
    )
    path = models.CharField(max_length=500)
    filters = models.JSONField(default=dict, blank=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["reader", "-id"], name="audit_read_reader")]

    def __str__(self) -> str:
        return f"{self.reader_id} read {self.path}"
