"""Version 1 of the REST API: every path of the contract, in one place."""

from django.urls import path

from api import accounts, audit, catalogue, repositories, results, reviews, rubrics, tasks

urlpatterns = [
    path("auth/token/", accounts.TokenView.as_view(), name="auth-token"),
    path("me/", accounts.MeView.as_view(), name="me"),
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
    path("tasks/<int:pk>/history/", audit.TaskHistory.as_view(), name="task-history"),
    path("rubrics/", rubrics.RubricListCreate.as_view(), name="rubric-list"),
    path("rubrics/<slug:slug>/", rubrics.RubricDetail.as_view(), name="rubric-detail"),
    path(
        "rubrics/<slug:slug>/versions/<int:number>/",
        rubrics.RubricVersionDetail.as_view(),
        name="rubric-version-detail",
    ),
    path(
        "rubrics/<slug:slug>/revisions/",
        rubrics.RubricRevisionListCreate.as_view(),
        name="rubric-revision-list",
    ),
    path("assignments/", reviews.AssignmentList.as_view(), name="assignment-list"),
    path("assignments/next/", reviews.AssignmentNext.as_view(), name="assignment-next"),
    path("assignments/<int:pk>/", reviews.AssignmentDetail.as_view(), name="assignment-detail"),
    path(
        "assignments/<int:pk>/review/", reviews.AssignmentReview.as_view(), name="assignment-review"
    ),
    path(
        "assignments/<int:pk>/release/",
        reviews.AssignmentRelease.as_view(),
        name="assignment-release",
    ),
    path("arbitrations/", reviews.ArbitrationList.as_view(), name="arbitration-list"),
    path("arbitrations/<int:pk>/", reviews.ArbitrationDetail.as_view(), name="arbitration-detail"),
    path(
        "arbitrations/<int:pk>/claim/", reviews.ArbitrationClaim.as_view(), name="arbitration-claim"
    ),
    path(
        "arbitrations/<int:pk>/resolve/",
        reviews.ArbitrationResolve.as_view(),
        name="arbitration-resolve",
    ),
    path(
        "campaigns/<int:pk>/leaderboard/",
        results.CampaignLeaderboard.as_view(),
        name="campaign-leaderboard",
    ),
    path(
        "campaigns/<int:pk>/agreement/",
        results.CampaignAgreement.as_view(),
        name="campaign-agreement",
    ),
    path("campaigns/<int:pk>/export/", results.CampaignExport.as_view(), name="campaign-export"),
    path("payouts/", results.PayoutList.as_view(), name="payout-list"),
    path("payouts/<int:pk>/approve/", results.PayoutApprove.as_view(), name="payout-approve"),
    path("payouts/<int:pk>/pay/", results.PayoutPay.as_view(), name="payout-pay"),
    path("audit/events/", audit.AuditEventList.as_view(), name="audit-event-list"),
    path("audit/events/export/", audit.AuditEventExport.as_view(), name="audit-event-export"),
    path("audit/verify/", audit.AuditVerify.as_view(), name="audit-verify"),
]
