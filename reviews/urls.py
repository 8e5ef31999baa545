from django.urls import path

from reviews import api

urlpatterns = [
    path("assignments/", api.AssignmentList.as_view(), name="assignment-list"),
    path("assignments/next/", api.AssignmentNext.as_view(), name="assignment-next"),
    path("assignments/<int:pk>/", api.AssignmentDetail.as_view(), name="assignment-detail"),
    path("assignments/<int:pk>/review/", api.AssignmentReview.as_view(), name="assignment-review"),
    path(
        "assignments/<int:pk>/release/", api.AssignmentRelease.as_view(), name="assignment-release"
    ),
    path("arbitrations/", api.ArbitrationList.as_view(), name="arbitration-list"),
    path("arbitrations/<int:pk>/", api.ArbitrationDetail.as_view(), name="arbitration-detail"),
    path("arbitrations/<int:pk>/claim/", api.ArbitrationClaim.as_view(), name="arbitration-claim"),
    path(
        "arbitrations/<int:pk>/resolve/",
        api.ArbitrationResolve.as_view(),
        name="arbitration-resolve",
    ),
]
