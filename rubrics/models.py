from django.conf import settings
from django.db import models


class Rubric(models.Model):
    """A named set of scoring criteria; its content lives in immutable versions."""

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class RubricVersion(models.Model):
    """An immutable snapshot: criteria and disagreement policy. PostgreSQL refuses updates."""

    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    criteria = models.JSONField(help_text="[{key, title, guidance, scale_min, scale_max, weight}]")
    policy = models.JSONField(help_text="{max_score_spread, preference_sign_must_agree}")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rubric", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rubric", "number"], name="rubric_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.rubric.slug} v{self.number}"

    def criterion_keys(self) -> list[str]:
        return [criterion["key"] for criterion in self.criteria]


class RubricRevision(models.Model):
    """The log entry of a new version: who, when, why, what changed, and what caused it."""

    class Source(models.TextChoices):
        MANUAL = "manual", "A lead's edit"
        ARBITRATION = "arbitration", "An arbitration"

    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="revisions")
    from_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="+")
    to_version = models.OneToOneField(
        RubricVersion, on_delete=models.PROTECT, related_name="revision"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    rationale = models.TextField()
    diff = models.JSONField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    arbitration_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rubric", "id"]

    def __str__(self) -> str:
        return f"{self.rubric.slug}: v{self.from_version.number} → v{self.to_version.number}"
