from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext, gettext_lazy

from annotation_site.errors import ApplicationError
from labeling import campaigns, models
from labeling.media import extraction
from labeling.results import aggregation


class LabelInline(admin.TabularInline):
    model = models.Label
    extra = 0


class CampaignAdminForm(forms.ModelForm):
    """The campaign form, under the same change rule as every other door
    (``campaigns.campaign_check_change``): the annotations per clip are fixed once labelling
    has begun, and the page says so. The admin supplies the model and the fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("annotations_per_clip")
        if field is None:
            return
        if self.instance.pk and campaigns.campaign_labelling_begun(self.instance.pk):
            field.help_text = gettext(
                "Fixed: labelling has begun (clips have leases or labels), so this number "
                "can no longer change."
            )
        else:
            field.help_text = gettext(
                "Labels each clip needs. It can no longer change once labelling has begun "
                "(the first lease or label)."
            )

    def clean(self):
        cleaned = super().clean()
        per_clip = cleaned.get("annotations_per_clip")
        if self.instance.pk and per_clip is not None:
            # Raises ValidationError keyed by the field: the form shows it and saves nothing.
            # The admin validates and saves in one transaction, which the check's lock spans.
            campaigns.campaign_check_change(self.instance.pk, annotations_per_clip=per_clip)
        return cleaned


@admin.register(models.Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = ("name", "slug", "annotations_per_clip", "single_label_min_votes", "is_active")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [LabelInline]

    def save_model(self, request, obj, form, change):
        if change:
            campaigns.campaign_update(campaign=obj)
        else:
            super().save_model(request, obj, form, change)


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Campaign teams, one row per person and role; the staff team page
    (``labeling.views.staff``) is the usual door. Adding here goes through the same service
    (``campaigns.membership_add``: the role's group comes with it)."""

    list_display = ("campaign", "user", "role", "created_at")
    list_filter = ("campaign", "role")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
    exclude = ("added_by",)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            campaigns.membership_add(
                campaign=obj.campaign, user=obj.user, role=obj.role, added_by=request.user
            )


@admin.register(models.Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made on the team page (their links are shown there); here they can
    be looked at and withdrawn (deleted)."""

    list_display = ("campaign", "role", "username", "created_at", "expires_at", "accepted_at")
    list_filter = ("campaign", "role")
    readonly_fields = [f.name for f in models.Invitation._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(models.Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ("campaign", "code", "name", "display_name", "is_rare")
    list_filter = ("campaign", "is_rare")


@admin.register(models.AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "region", "cultural_background", "languages")
    search_fields = ("user__username", "region", "cultural_background")


@admin.register(models.Movie)
class MovieAdmin(admin.ModelAdmin):
    """Movies come in through the upload API, the extract page or ``import_movies``, which
    probe them; here staff correct the title and campaign. The source file is an upload as
    its extractor sent it, so the admin shows its name as text and never links it (a page
    that opened it would run whatever it holds on our origin)."""

    list_display = ("title", "campaign", "status", "duration_s", "fps", "width", "height", "codec")
    exclude = ("source",)
    readonly_fields = ("source_name", "content_hash", "error")
    list_filter = ("campaign", "status")
    search_fields = ("title",)

    def has_add_permission(self, request):
        return False

    @admin.display(description=gettext_lazy("source file"))
    def source_name(self, obj) -> str:
        return obj.source.name if obj.source else "-"


@admin.register(models.Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "campaign",
        "movie",
        "status",
        "start_s",
        "end_s",
        "media_status",
        "face_ratio",
        "few_faces",
    )
    list_filter = ("campaign", "status", "media_status", "few_faces")
    search_fields = ("number", "movie__title")
    list_select_related = ("campaign", "movie")
    # A clip's lifecycle moves through the services (screening, labelling, extraction): an
    # edited status would skip screening or complete a clip without its labels.
    readonly_fields = (
        "status",
        "status_reason",
        "media_error",
        "media_attempts",
        "media_claimed_at",
    )
    actions = ["retry_extraction"]

    @admin.action(description="Retry the extraction of the selected failed clips")
    def retry_extraction(self, request, queryset):
        # The same service as everywhere: only failed (or abandoned) clips are queued again.
        try:
            n = extraction.clips_extract_retry(
                user=request.user, clip_ids=list(queryset.values_list("pk", flat=True))
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"{n} clips queued for extraction again.")


@admin.register(models.Screening)
class ScreeningAdmin(admin.ModelAdmin):
    list_display = ("clip", "reviewer", "decision", "shows_face", "shows_emotion", "created_at")
    list_filter = ("decision",)
    list_select_related = ("clip", "reviewer")


@admin.register(models.ClipReport)
class ClipReportAdmin(admin.ModelAdmin):
    list_display = ("clip", "reporter", "kind", "created_at")
    list_filter = ("kind",)
    list_select_related = ("clip", "reporter")


class _ReadOnly(admin.ModelAdmin):
    """Rows only the services and tasks write: the admin shows them and changes nothing."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.Assignment)
class AssignmentAdmin(_ReadOnly):
    """Leases are made and ended by the services only (slots, never an eleventh label)."""

    list_display = ("clip", "annotator", "slot", "status", "leased_at", "expires_at")
    list_filter = ("status",)
    # Newest first by primary key (an index): DFEW has 163,720 of them.
    ordering = ("-pk",)
    show_full_result_count = False
    list_select_related = ("clip", "annotator")
    raw_id_fields = ("clip", "annotator")


@admin.register(models.Annotation)
class AnnotationAdmin(_ReadOnly):
    """Raw labels are the dataset: admins read them here, nobody adds, edits or deletes them;
    staff invalidate them through the service (the action below)."""

    list_display = ("clip", "annotator", "label", "slot", "created_at", "invalidated_at")
    ordering = ("-pk",)
    show_full_result_count = False
    list_filter = ("label__name", ("invalidated_at", admin.EmptyFieldListFilter))
    list_select_related = ("clip", "annotator", "label")
    search_fields = ("annotator__username",)
    actions = ["invalidate"]

    @admin.action(description="Invalidate the selected annotations (their slots re-open)")
    def invalidate(self, request, queryset):
        # Through the same service as the report page: marks, frees slots, re-opens clips.
        try:
            clips = aggregation.annotations_invalidate(
                staff=request.user,
                annotation_ids=list(queryset.values_list("pk", flat=True)),
                reason=f"invalidated in the admin by {request.user.username}",
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"Invalidated; {len(clips)} clips are open again.")


@admin.register(models.ClipLabel)
class ClipLabelAdmin(_ReadOnly):
    list_display = ("clip", "single_label", "top_share", "entropy", "n_annotations", "computed_at")
    list_filter = ("single_label__name",)
    list_select_related = ("clip", "single_label")


@admin.register(models.AgreementReport)
class AgreementReportAdmin(_ReadOnly):
    list_display = ("pk", "campaign", "status", "progress", "created_at", "finished_at")
    list_filter = ("campaign", "status")
    exclude = ("plots",)


@admin.register(models.Split)
class SplitAdmin(_ReadOnly):
    """Splits are made by `split_folds` or the release page and never changed."""

    list_display = ("pk", "campaign", "k", "seed", "group_by_movie", "n_clips", "created_at")
    list_filter = ("campaign",)


@admin.register(models.SplitClip)
class SplitClipAdmin(_ReadOnly):
    list_display = ("split", "clip", "label", "fold")
    list_filter = ("split", "fold")
    list_select_related = ("split", "clip", "label")


@admin.register(models.LabelExport)
class LabelExportAdmin(_ReadOnly):
    list_display = ("pk", "campaign", "split", "status", "progress", "created_at", "md5")
    list_filter = ("campaign", "status")


@admin.register(models.AnnotatorTally)
class AnnotatorTallyAdmin(_ReadOnly):
    list_display = ("campaign", "annotator", "submitted")
    list_filter = ("campaign",)


@admin.register(models.RewardEntry)
class RewardEntryAdmin(_ReadOnly):
    """The ledger is written by the reward code only (labeling/rewards/, and a label's own
    earning as it is saved): never edited, never deleted."""

    list_display = ("pk", "campaign", "person", "kind", "clip", "amount", "reverses", "payout")
    list_filter = ("campaign", "kind")
    search_fields = ("person__username",)
    list_select_related = ("campaign", "person", "clip")
    raw_id_fields = ("clip", "annotation", "reverses", "payout", "person")
    ordering = ("-pk",)
    show_full_result_count = False


@admin.register(models.Payout)
class PayoutAdmin(_ReadOnly):
    """Payouts are made on the campaign's rewards page or with ``manage.py payout``."""

    list_display = ("pk", "campaign", "total", "currency", "people", "entries", "created_at")
    list_filter = ("campaign",)


@admin.register(models.RewardHold)
class RewardHoldAdmin(_ReadOnly):
    """Holds are set and released on the campaign's rewards page."""

    list_display = ("campaign", "person", "reason", "created_at", "released_at")
    list_filter = ("campaign",)


@admin.register(models.Suggestion)
class SuggestionAdmin(_ReadOnly):
    """A model's suggestions are posted by ``manage.py suggest_segments`` over the API and
    decided on the marking page (labeling/media/suggestions.py): read-only here."""

    list_display = ("pk", "movie", "run", "start_s", "end_s", "emotion", "rare_score", "status")
    list_filter = ("run", "status")
    list_select_related = ("movie", "emotion")
    raw_id_fields = ("movie", "clip", "decided_by", "created_by")


# The codebook is edited on its staff page (labeling/views/codebook.py), which checks that an
# example clip is the campaign's; here it is only read.
@admin.register(models.CampaignGuide)
class CampaignGuideAdmin(_ReadOnly):
    list_display = ("campaign", "updated_at")


@admin.register(models.LabelGuide)
class LabelGuideAdmin(_ReadOnly):
    list_display = ("label", "example_clip", "updated_at")


@admin.register(models.AnnotatorExclusion)
class AnnotatorExclusionAdmin(_ReadOnly):
    """Exclusions are made and revoked on the agreement page (``labeling.results.exclusion``)."""

    list_display = ("annotator", "campaign", "excluded_by", "created_at", "revoked_at", "restored")
    list_filter = ("campaign",)


@admin.register(models.QualityModel)
class QualityModelAdmin(_ReadOnly):
    """Fitted by the aggregation and the agreement report (``labeling.results.quality``)."""

    list_display = ("campaign", "method", "n_votes", "fitted_at")
    list_filter = ("campaign", "method")
