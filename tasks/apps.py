from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks and model outputs"

    def ready(self) -> None:
        # Registers the jobs under their names, which services send them by (core.jobs).
        from tasks import jobs  # noqa: F401
