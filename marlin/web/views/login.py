"""Sign-in for the workspace, throttled like the API's token endpoint (`THROTTLE_LOGIN`)."""

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import ScopedRateThrottle


class _LoginScope:
    """What DRF's scoped throttle reads from a view: the API's login shares its rate."""

    throttle_scope = "login"


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not ScopedRateThrottle().allow_request(request, _LoginScope()):
            context = self.get_context_data(form=self.get_form(), throttled=True)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)
