from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import user_upsert
from core.roles import Role


class Command(BaseCommand):
    help = "Create a user (or update one) with the given roles."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help="omit to keep the current password")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--role",
            action="append",
            default=[],
            choices=Role.values,
            dest="roles",
            help="repeat for several roles",
        )

    def handle(
        self,
        *args: object,
        username: str,
        password: str | None,
        email: str,
        roles: list[str],
        **options: object,
    ) -> None:
        try:
            user, created = user_upsert(
                username=username, password=password, roles=roles, email=email
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Created" if created else "Updated"
        self.stdout.write(
            f"{verb} {user.username} with roles: {', '.join(sorted(user.roles)) or 'none'}"
        )
