"""Every transition declares the audit action it records, and no two share one."""

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django_fsm import FSMFieldMixin

from core.fsm import action_of
from tasks.models import Task


def _transitions():
    for model in apps.get_models():
        for field in model._meta.fields:
            if isinstance(field, FSMFieldMixin):
                names = {t.name for t in field.get_all_transitions(model)}
                yield from ((model, name) for name in sorted(names))


def test_every_transition_declares_one_action_named_after_its_model():
    actions = {(model.__name__, name): action_of(model, name) for model, name in _transitions()}
    assert len(actions) >= 31
    for (model_name, _), action in actions.items():
        assert action.startswith(f"{model_name.lower()}.")
    assert len(set(actions.values())) == len(actions)


def test_a_transition_without_an_action_is_refused():
    meta = Task.submit._django_fsm
    saved = {source: t.custom for source, t in meta.transitions.items()}
    try:
        for t in meta.transitions.values():
            object.__setattr__(t, "custom", {})
        with pytest.raises(ImproperlyConfigured, match="must declare one audit action"):
            action_of(Task, "submit")
    finally:
        for source, custom in saved.items():
            object.__setattr__(meta.transitions[source], "custom", custom)
