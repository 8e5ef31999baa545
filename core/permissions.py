from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from core.roles import user_has_role


def has_role(*roles: str) -> type[BasePermission]:
    """A DRF permission class granting access to holders of any of `roles`."""

    class HasRole(BasePermission):
        message = f"This needs one of the roles: {', '.join(roles)}."

        def has_permission(self, request: Request, view: APIView) -> bool:
            return user_has_role(request.user, *roles)

    HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return HasRole


class ReadersAndWriters:
    """A view mixin: `read_roles` may GET (None: any authenticated user), `write_roles` may POST."""

    read_roles: tuple[str, ...] | None = None
    write_roles: tuple[str, ...] = ()

    def get_permissions(self) -> list[BasePermission]:
        from rest_framework.permissions import SAFE_METHODS, IsAuthenticated

        request = self.request  # type: ignore[attr-defined]
        roles = self.read_roles if request.method in SAFE_METHODS else self.write_roles
        if roles is None:
            return [IsAuthenticated()]
        return [IsAuthenticated(), has_role(*roles)()]
