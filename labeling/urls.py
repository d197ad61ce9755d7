from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.annotate, name="annotate"),
    path("review/", views.screening, name="screening"),
    path("extract/", views.extract, name="extract"),
    path("review/<int:clip_id>/", views.screening_decide, name="screening-decide"),
    path("staff/overview/", views.campaign_overview, name="campaign-overview"),
    path(
        "staff/campaigns/<int:campaign_id>/agreement/",
        views.campaign_agreement,
        name="campaign-agreement",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/agreement/<int:report_id>/",
        views.campaign_agreement,
        name="campaign-agreement-report",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/agreement/run/",
        views.campaign_agreement_run,
        name="campaign-agreement-run",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/release/",
        views.campaign_release,
        name="campaign-release",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/splits/",
        views.campaign_split_create,
        name="campaign-split-create",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/exports/",
        views.campaign_export_create,
        name="campaign-export-create",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/rewards/",
        views.campaign_rewards,
        name="campaign-rewards",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/rewards/payouts/",
        views.campaign_payout_create,
        name="campaign-payout-create",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/rewards/holds/",
        views.campaign_reward_hold,
        name="campaign-reward-hold",
    ),
    path("staff/payouts/<int:payout_id>.csv", views.payout_download, name="payout-download"),
    path("staff/exports/<int:export_id>/download/", views.export_download, name="export-download"),
    path(
        "staff/campaigns/<int:campaign_id>/annotators/invalidate/",
        views.annotator_invalidate,
        name="annotator-invalidate",
    ),
]
