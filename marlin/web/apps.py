from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "marlin.web"
    label = "web"
    verbose_name = "Web workspace"
