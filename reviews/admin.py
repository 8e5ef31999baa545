"""The task admin's cancel action: cancelling closes the task's review slots, which are ours."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_fsm import TransitionNotAllowed

from reviews import services
from tasks.admin import TaskAdmin
from tasks.models import Task


class TaskAdminWithCancel(TaskAdmin):
    actions = ["cancel_tasks"]

    @admin.action(description="Cancel the selected tasks (through the state machine)")
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        done = 0
        for task in queryset:
            try:
                services.task_cancel(task=task, actor=request.user, reason="cancelled in the admin")
                done += 1
            except (TransitionNotAllowed, PermissionError) as exc:
                self.message_user(request, f"Task {task.pk}: {exc}", messages.WARNING)
        self.message_user(request, f"Cancelled {done} task(s).")


admin.site.unregister(Task)
admin.site.register(Task, TaskAdminWithCancel)
