"""Request rates per user, at the rate of the user's role.

DRF's `UserRateThrottle` gives every user one rate. Reviewers working a queue, authors polling
generation and auditors reading the trail call the API at very different paces, so each role has
its own rate (`THROTTLE_<ROLE>`, e.g. `THROTTLE_REVIEWER=600/min`); a person holding several roles
gets the most generous of them, and a user with no role the plain `user` rate.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import UserRateThrottle

from core.roles import Role


def role_scope(role: str) -> str:
    return f"role_{role}"


class RoleRateThrottle(UserRateThrottle):
    """One counter per user; its rate is the user's role's (`role_<role>` in the throttle rates)."""

    def allow_request(self, request: Any, view: Any) -> bool:
        user = request.user
        if user is not None and user.is_authenticated:
            self.scope = self._scope_for(user)
            self.rate = self.get_rate()
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def _scope_for(self, user: Any) -> str:
        held = [role_scope(role) for role in Role.values if role in getattr(user, "roles", ())]
        rated = [scope for scope in held if scope in self.THROTTLE_RATES]
        return max(rated, key=self._per_second, default="user")

    def _per_second(self, scope: str) -> float:
        num_requests, duration = self.parse_rate(self.THROTTLE_RATES[scope])
        return num_requests / duration
