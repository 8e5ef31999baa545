"""Sign-in for the workspace, throttled at the API login's rate (`THROTTLE_LOGIN`).

The counter is per client address and username, so colleagues signing in from one office
address do not lock each other out, while guessing one person's password stays limited.
"""

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import ScopedRateThrottle


class _LoginScope:
    """What DRF's scoped throttle reads from a view: the API's login rate."""

    throttle_scope = "login"


class _SignInThrottle(ScopedRateThrottle):
    def get_cache_key(self, request: Any, view: Any) -> str:
        username = str(request.POST.get("username", "")).strip().lower()[:150]
        ident = f"{self.get_ident(request)}:{username}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not _SignInThrottle().allow_request(request, _LoginScope()):
            context = self.get_context_data(form=self.get_form(), throttled=True)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)
