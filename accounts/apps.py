from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    label = "accounts"
    verbose_name = "Users and roles"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts.permissions_sync import sync_role_permissions

        post_migrate.connect(sync_role_permissions, sender=self, dispatch_uid="role-permissions")
