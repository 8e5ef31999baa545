"""Model-field validators for the evidence settings (a repository's source, a campaign's checks)."""

from django.core.exceptions import ValidationError

from tasks.evidence.checks import parse_config
from tasks.evidence.sources import validate_source_url as _check_source_url


def validate_source_url(value: str) -> None:
    try:
        _check_source_url(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def validate_evidence(value: object) -> None:
    try:
        parse_config(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
