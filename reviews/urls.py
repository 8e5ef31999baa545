from django.urls import path

from reviews import api, api_results

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

urlpatterns += [
    path(
        "campaigns/<int:pk>/leaderboard/",
        api_results.CampaignLeaderboard.as_view(),
        name="campaign-leaderboard",
    ),
    path(
        "campaigns/<int:pk>/agreement/",
        api_results.CampaignAgreement.as_view(),
        name="campaign-agreement",
    ),
    path(
        "campaigns/<int:pk>/export/", api_results.CampaignExport.as_view(), name="campaign-export"
    ),
    path("payouts/", api_results.PayoutList.as_view(), name="payout-list"),
    path("payouts/<int:pk>/approve/", api_results.PayoutApprove.as_view(), name="payout-approve"),
    path("payouts/<int:pk>/pay/", api_results.PayoutPay.as_view(), name="payout-pay"),
]
