"""The web workspace, mounted at /app/. Every route here is listed in tests/security/matrix.py."""

from django.contrib.auth import views as auth_views
from django.urls import path

from web.views import arbiter, auditor, author, home, lead, login, reviewer

app_name = "web"

urlpatterns = [
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", home.home, name="home"),
    # Author
    path("tasks/", author.task_list, name="task-list"),
    path("tasks/new/", author.task_new, name="task-new"),
    path("repositories/search/", author.repository_search, name="repository-search"),
    path("tasks/<int:pk>/", author.task_detail, name="task-detail"),
    path("tasks/<int:pk>/progress/", author.task_progress, name="task-progress"),
    path("tasks/<int:pk>/generate/", author.task_generate, name="task-generate"),
    path("tasks/<int:pk>/retry/", author.task_retry, name="task-retry"),
    path("tasks/<int:pk>/turns/", author.task_turn, name="task-turn"),
    path("tasks/<int:pk>/submit/", author.task_submit, name="task-submit"),
    path("tasks/<int:pk>/revise/", author.task_revise, name="task-revise"),
    # Reviewer
    path("reviews/", reviewer.review_queue, name="review-queue"),
    path("reviews/next/", reviewer.review_next, name="review-next"),
    path("reviews/<int:pk>/", reviewer.review_detail, name="review-detail"),
    path("reviews/<int:pk>/release/", reviewer.review_release, name="review-release"),
    # Arbiter
    path("arbitrations/", arbiter.arbitration_list, name="arbitration-list"),
    path("arbitrations/<int:pk>/", arbiter.arbitration_detail, name="arbitration-detail"),
    path("arbitrations/<int:pk>/claim/", arbiter.arbitration_claim, name="arbitration-claim"),
    path("arbitrations/<int:pk>/resolve/", arbiter.arbitration_resolve, name="arbitration-resolve"),
    path(
        "arbitrations/<int:pk>/revision-preview/",
        arbiter.revision_preview,
        name="arbitration-revision-preview",
    ),
    # Auditor
    path("audit/", auditor.timeline, name="audit-timeline"),
    path("audit/verify/", auditor.verify, name="audit-verify"),
    path("audit/tasks/<int:pk>/", auditor.task_story, name="audit-task"),
    path("rubrics/", auditor.rubric_log, name="rubric-log"),
    # Lead
    path("campaigns/", lead.campaign_list, name="campaign-list"),
    path("campaigns/<int:pk>/", lead.campaign_detail, name="campaign-detail"),
    path("payouts/", lead.payouts, name="payouts"),
]
