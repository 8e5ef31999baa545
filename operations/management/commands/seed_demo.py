from django.core.management.base import BaseCommand, CommandParser

from operations.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = "Load the demo data (idempotent): a user per role, repositories, and the example tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--print-logins", action="store_true", help="only print the logins")

    def handle(self, *args: object, print_logins: bool, **options: object) -> None:
        if not print_logins:
            summary = seed_demo()
            self.stdout.write(f"Demo data ready: {summary}")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, roles in DEMO_USERS.items():
            self.stdout.write(f"  {username:<10} {', '.join(roles)}")
