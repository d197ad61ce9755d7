from django.urls import path

from labeling.views import codebook as codebook_views
from labeling.views import loop as loop_views
from labeling.views import media as media_views
from labeling.views import release as release_views
from labeling.views import results as results_views
from labeling.views import rewards as rewards_views
from labeling.views.staff import campaigns as staff_campaigns
from labeling.views.staff import clips as staff_clips

urlpatterns = [
    path("", loop_views.home, name="home"),
    path("label/", loop_views.annotate, name="annotate"),
    path("review/", loop_views.screening, name="screening"),
    path("extract/", media_views.extract, name="extract"),
    path("review/<int:clip_id>/", loop_views.screening_decide, name="screening-decide"),
    path("staff/overview/", results_views.campaign_overview, name="campaign-overview"),
    path(
        "staff/campaigns/<int:campaign_id>/agreement/",
        results_views.campaign_agreement,
        name="campaign-agreement",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/agreement/<int:report_id>/",
        results_views.campaign_agreement,
        name="campaign-agreement-report",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/agreement/run/",
        results_views.campaign_agreement_run,
        name="campaign-agreement-run",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/release/",
        release_views.campaign_release,
        name="campaign-release",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/splits/",
        release_views.campaign_split_create,
        name="campaign-split-create",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/exports/",
        release_views.campaign_export_create,
        name="campaign-export-create",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/rewards/",
        rewards_views.campaign_rewards,
        name="campaign-rewards",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/rewards/payouts/",
        rewards_views.campaign_payout_create,
        name="campaign-payout-create",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/rewards/holds/",
        rewards_views.campaign_reward_hold,
        name="campaign-reward-hold",
    ),
    path(
        "staff/payouts/<int:payout_id>.csv", rewards_views.payout_download, name="payout-download"
    ),
    path(
        "staff/exports/<int:export_id>/download/",
        release_views.export_download,
        name="export-download",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/codebook/",
        codebook_views.campaign_codebook,
        name="campaign-codebook",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/annotators/invalidate/",
        results_views.annotator_invalidate,
        name="annotator-invalidate",
    ),
    path("staff/campaigns/new/", staff_campaigns.campaign_new, name="staff-campaign-new"),
    path(
        "staff/campaigns/<int:campaign_id>/settings/",
        staff_campaigns.campaign_edit,
        name="staff-campaign-edit",
    ),
    path("staff/campaigns/<int:campaign_id>/team/", staff_campaigns.team, name="staff-team"),
    path(
        "staff/campaigns/<int:campaign_id>/team/add/",
        staff_campaigns.member_add,
        name="staff-member-add",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/team/remove/",
        staff_campaigns.member_remove,
        name="staff-member-remove",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/team/invite/",
        staff_campaigns.invite_create,
        name="staff-invite-create",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/team/import/",
        staff_campaigns.members_import,
        name="staff-members-import",
    ),
    path("invite/<str:token>/", staff_campaigns.invite_accept, name="invite-accept"),
    path("staff/clips/", staff_clips.clip_browser, name="staff-clips"),
    path("staff/clips/<int:clip_id>/", staff_clips.clip_page, name="staff-clip"),
    path(
        "staff/campaigns/<int:campaign_id>/annotators/exclude/",
        results_views.annotator_exclude,
        name="annotator-exclude",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/exclusions/<int:exclusion_id>/revoke/",
        results_views.exclusion_revoke,
        name="exclusion-revoke",
    ),
    path(
        "staff/campaigns/<int:campaign_id>/overlap/",
        results_views.campaign_overlap,
        name="campaign-overlap",
    ),
]
