from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "email", "is_active", "is_staff", "role_list"]

    @admin.display(description="roles")
    def role_list(self, user: User) -> str:
        return ", ".join(sorted(user.roles))

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).prefetch_related("groups")
