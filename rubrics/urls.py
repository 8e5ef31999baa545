from django.urls import path

from rubrics import api

urlpatterns = [
    path("rubrics/", api.RubricListCreate.as_view(), name="rubric-list"),
    path("rubrics/<slug:slug>/", api.RubricDetail.as_view(), name="rubric-detail"),
    path(
        "rubrics/<slug:slug>/versions/<int:number>/",
        api.RubricVersionDetail.as_view(),
        name="rubric-version-detail",
    ),
    path(
        "rubrics/<slug:slug>/revisions/",
        api.RubricRevisionListCreate.as_view(),
        name="rubric-revision-list",
    ),
]
