from django.urls import path

from audit.api import TaskHistory
from tasks.api import catalogue, repositories, tasks

urlpatterns = [
    path("repositories/", repositories.RepositoryListCreate.as_view(), name="repository-list"),
    path(
        "repositories/<int:pk>/", repositories.RepositoryDetail.as_view(), name="repository-detail"
    ),
    path("model-versions/", catalogue.ModelVersionListCreate.as_view(), name="model-version-list"),
    path("campaigns/", catalogue.CampaignListCreate.as_view(), name="campaign-list"),
    path("campaigns/<int:pk>/", catalogue.CampaignDetail.as_view(), name="campaign-detail"),
    path("campaigns/<int:pk>/rerun/", catalogue.CampaignRerun.as_view(), name="campaign-rerun"),
    path("tasks/", tasks.TaskListCreate.as_view(), name="task-list"),
    path("tasks/<int:pk>/", tasks.TaskDetail.as_view(), name="task-detail"),
    path("tasks/<int:pk>/turns/", tasks.TurnCreate.as_view(), name="task-turns"),
    path("tasks/<int:pk>/generate/", tasks.TaskGenerate.as_view(), name="task-generate"),
    path("tasks/<int:pk>/retry/", tasks.TaskRetry.as_view(), name="task-retry"),
    path("tasks/<int:pk>/submit/", tasks.TaskSubmit.as_view(), name="task-submit"),
    path("tasks/<int:pk>/cancel/", tasks.TaskCancel.as_view(), name="task-cancel"),
    path("tasks/<int:pk>/revise/", tasks.TaskRevise.as_view(), name="task-revise"),
    path("tasks/<int:pk>/candidates/", tasks.TaskCandidates.as_view(), name="task-candidates"),
    path("tasks/<int:pk>/history/", TaskHistory.as_view(), name="task-history"),
]
