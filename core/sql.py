"""For the few statements written in SQL rather than through the ORM (where building them with
the ORM would cost more than running them, or where the ORM cannot say them)."""

from django.db import connection
from django.db.models import Model


def quoted_table(model: type[Model]) -> str:
    """The model's table, quoted for the default database. Only names from the models go into
    SQL text this way; values always go as parameters."""
    return connection.ops.quote_name(model._meta.db_table)
