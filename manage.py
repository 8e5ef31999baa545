#!/usr/bin/env python
import getpass
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marlin.settings")
    from django.core.management import execute_from_command_line

    from core import context

    # A command's changes are recorded in the audit trail as the operating-system user's.
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    with context.operation(origin=f"command:{command}", actor_label=f"os:{getpass.getuser()}"):
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
