"""Slot balancing: one rule for new tasks and for a re-run's tasks."""

from collections import Counter
from types import SimpleNamespace

from tasks.services import balanced_slot_orders


def _versions(n):
    return [SimpleNamespace(pk=pk) for pk in range(1, n + 1)]


def test_each_version_goes_first_in_an_equal_share_of_new_tasks():
    versions = _versions(3)
    orders = balanced_slot_orders(versions, Counter(), 30)
    firsts = Counter(order[0].pk for order in orders)
    assert firsts == {1: 10, 2: 10, 3: 10}
    assert all(sorted(v.pk for v in order) == [1, 2, 3] for order in orders)


def test_the_version_first_least_often_so_far_goes_first_next():
    versions = _versions(2)
    (order,) = balanced_slot_orders(versions, Counter({1: 5, 2: 3}), 1)
    assert order[0].pk == 2


def test_ties_are_broken_at_random():
    versions = _versions(2)
    firsts = {balanced_slot_orders(versions, Counter(), 1)[0][0].pk for _ in range(200)}
    assert firsts == {1, 2}
