"""Campaigns, their label sets, and annotators' profiles."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Mod
from django.db.models.lookups import Exact, GreaterThan
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from labeling.models.choices import Role


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    annotations_per_clip = models.PositiveSmallIntegerField(_("annotations per clip"), default=10)
    single_label_min_votes = models.PositiveSmallIntegerField(
        _("votes for a single label"),
        default=7,
        help_text=_("A clip gets a single label when one emotion has at least this many votes."),
    )
    lease_minutes = models.PositiveSmallIntegerField(_("lease length (minutes)"), default=10)
    clips_per_movie = models.PositiveSmallIntegerField(_("clips per movie"), default=20)
    # The media pipeline's settings (labeling/media/): clip length bounds, output format,
    # and the face-found share below which a clip is flagged for the reviewer.
    clip_min_seconds = models.FloatField(_("shortest clip (s)"), default=0.5)
    clip_max_seconds = models.FloatField(_("longest clip (s)"), default=15.0)
    clip_fps = models.FloatField(
        _("clip frame rate"), null=True, blank=True, help_text=_("Empty: the movie's own rate.")
    )
    clip_max_height = models.PositiveSmallIntegerField(_("clip height at most (px)"), default=720)
    min_face_ratio = models.FloatField(
        _("faces needed"),
        default=0.5,
        help_text=_("Share of a clip's frames with a face found; fewer flags it for review."),
    )
    # Face crops and the screening's face flags (`pipeline.face_flags`).
    face_crop_size = models.PositiveSmallIntegerField(
        _("face crop size (px)"),
        default=112,
        help_text=_("Side of each frame's face crop; a multiple of 8 (DFEW's crops: 112)."),
    )
    face_lost_share = models.FloatField(
        _("frames without the face allowed"),
        default=0.2,
        help_text=_("A clip with no face in more than this share of its frames is flagged."),
    )
    face_min_px = models.PositiveSmallIntegerField(
        _("smallest face (px)"),
        default=48,
        help_text=_(
            "A clip whose face is usually smaller than this (its median side, in the clip's "
            "pixels) is flagged."
        ),
    )
    screen_clips = models.BooleanField(
        _("reviewers screen new clips"),
        default=True,
        help_text=_("Off: extracted clips open for labelling without screening (the demo)."),
    )
    min_view_seconds = models.FloatField(
        _("minimum viewing time (s)"),
        default=0.5,
        help_text=_(
            "A label is accepted only after the clip has been on screen this long (counted "
            "from when the page showed it); 0 turns the check off."
        ),
    )
    # Rewards (labeling/rewards/), in settings.REWARD_CURRENCY. Each ledger entry records the
    # amount in force when it was earned; changing these never re-prices past entries.
    reward_annotation = models.DecimalField(
        _("reward per label"), max_digits=10, decimal_places=2, default=Decimal("0.20")
    )
    reward_clip = models.DecimalField(
        _("reward per extracted clip"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("1.00"),
        help_text=_("Paid to the extractor of a clip that passes screening."),
    )
    reward_rare_clip = models.DecimalField(
        _("rare-class bonus to the extractor"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("5.00"),
        help_text=_("Paid to the extractor of a clip whose final label is a rare one."),
    )
    reward_rare_vote = models.DecimalField(
        _("rare-class bonus per matching vote"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text=_("Paid to each annotator who voted a clip's rare final label; 0 turns it off."),
    )
    rare_label_rule = models.CharField(
        _("final label for the rare-class bonus"),
        max_length=8,
        choices=[("single", _("the single label")), ("top", _("the top vote"))],
        default="single",
        help_text=_(
            "The single label needs the campaign's majority; the top vote is the most voted "
            "label when no other label has as many votes."
        ),
    )
    is_active = models.BooleanField(_("open for labelling"), default=True)
    # Everyone on the campaign's team, whatever their role (one ``Membership`` row each per
    # role). ``campaign.annotators.add(user)`` makes annotators (the role's default); other
    # roles go through ``labeling.campaigns.membership_add``. Read a role's members with
    # ``Membership.objects.filter(role=...)``, never this relation alone.
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Membership",
        through_fields=("campaign", "user"),
        related_name="annotation_campaigns",
        blank=True,
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Quality-aware aggregation and adaptive overlap (labeling/results/quality.py,
    # pipeline/crowd.py; the stop rule: pipeline.aggregation.stop_asking). The stored single
    # label stays DFEW's rule, which the DFEW-format export and the folds use.
    aggregation_method = models.CharField(
        _("aggregation method"),
        max_length=16,
        choices=[
            ("majority", _("DFEW's rule (vote shares)")),
            ("dawid_skene", _("Dawid–Skene")),
            ("one_coin", _("one accuracy per annotator (one-coin Dawid–Skene)")),
            ("mace", _("MACE")),
        ],
        default="majority",
        help_text=_(
            "The label the per-clip export gives by default and the report leads with; every "
            "method's label and confidence are stored and exported."
        ),
    )
    adaptive_overlap = models.BooleanField(
        _("adaptive overlap"),
        default=False,
        help_text=_(
            "A clip stops asking for labels once the remaining ones cannot change its single "
            "label (never more than the annotations per clip)."
        ),
    )
    adaptive_min_votes = models.PositiveSmallIntegerField(
        _("labels before a clip may stop"), default=5
    )
    adaptive_confidence = models.FloatField(
        _("confidence to stop early"),
        null=True,
        blank=True,
        help_text=_(
            "Also stop once one outcome is at least this probable under the quality model "
            "(e.g. 0.985); empty: only when the outcome can no longer change."
        ),
    )

    class Meta:
        ordering = ["-created_at", "pk"]
        permissions = [("export_campaign", "Can export a campaign's labels, votes and folds")]
        constraints = [
            models.CheckConstraint(
                condition=Q(annotations_per_clip__gte=1), name="campaign_annotations_per_clip_gte_1"
            ),
            # The single-label rule (pipeline.aggregation.single_labels) must never give two
            # labels: the threshold is more than half of the votes. full_clean() checks this
            # constraint too, so every form shows its message.
            models.CheckConstraint(
                condition=Q(single_label_min_votes__lte=F("annotations_per_clip"))
                & GreaterThan(F("single_label_min_votes") * 2, F("annotations_per_clip")),
                name="campaign_single_label_votes_majority",
                violation_error_message=_(
                    "Votes for a single label must be more than half of the annotations per "
                    "clip (and no more than all of them), so that two labels can never both "
                    "qualify."
                ),
            ),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="campaign_lease_gte_1"),
            models.CheckConstraint(
                condition=Q(clips_per_movie__gte=1), name="campaign_clips_per_movie_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(clip_min_seconds__gt=0)
                & Q(clip_max_seconds__gte=F("clip_min_seconds")),
                name="campaign_clip_length_bounds",
                violation_error_message=_(
                    "The shortest clip must be longer than 0 s and no longer than the longest."
                ),
            ),
            models.CheckConstraint(
                condition=Q(clip_fps__isnull=True) | Q(clip_fps__gt=0),
                name="campaign_clip_fps_gt_0",
            ),
            models.CheckConstraint(
                condition=Q(clip_max_height__gte=16), name="campaign_clip_height_gte_16"
            ),
            models.CheckConstraint(
                condition=Q(min_face_ratio__gte=0) & Q(min_face_ratio__lte=1),
                name="campaign_min_face_ratio_0_1",
            ),
            models.CheckConstraint(
                condition=Q(face_crop_size__gte=32)
                & Q(face_crop_size__lte=512)
                & Exact(Mod("face_crop_size", 8), 0),
                name="campaign_face_crop_size_valid",
                violation_error_message=_("The face crop size must be a multiple of 8, 32–512 px."),
            ),
            models.CheckConstraint(
                condition=Q(face_lost_share__gte=0) & Q(face_lost_share__lte=1),
                name="campaign_face_lost_share_0_1",
            ),
            models.CheckConstraint(
                condition=Q(min_view_seconds__gte=0), name="campaign_min_view_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reward_annotation__gte=0)
                & Q(reward_clip__gte=0)
                & Q(reward_rare_clip__gte=0)
                & Q(reward_rare_vote__gte=0),
                name="campaign_rewards_gte_0",
                violation_error_message=_("Reward amounts cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(rare_label_rule__in=["single", "top"]),
                name="campaign_rare_label_rule_valid",
            ),
            models.CheckConstraint(
                condition=Q(aggregation_method__in=["majority", "dawid_skene", "one_coin", "mace"]),
                name="campaign_aggregation_method_valid",
            ),
            models.CheckConstraint(
                condition=Q(adaptive_min_votes__gte=1)
                & Q(adaptive_min_votes__lte=F("annotations_per_clip")),
                name="campaign_adaptive_min_votes_range",
                violation_error_message=_(
                    "Labels before a clip may stop must be between 1 and the annotations per clip."
                ),
            ),
            models.CheckConstraint(
                condition=Q(adaptive_confidence__isnull=True)
                | (Q(adaptive_confidence__gte=0.5) & Q(adaptive_confidence__lte=1)),
                name="campaign_adaptive_confidence_range",
                violation_error_message=_("The confidence to stop early lies between 0.5 and 1."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """One class of a campaign's label set; DFEW's seven emotions by default."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="labels")
    code = models.PositiveSmallIntegerField(_("code"))
    name = models.SlugField(_("name"), max_length=40)
    display_name = models.CharField(_("display name"), max_length=80)
    is_rare = models.BooleanField(_("rare (extra reward)"), default=False)

    class Meta:
        ordering = ["campaign", "code"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "code"], name="label_code_unique"),
            models.UniqueConstraint(fields=["campaign", "name"], name="label_name_unique"),
            models.CheckConstraint(condition=Q(code__gte=1), name="label_code_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AnnotatorProfile(models.Model):
    """Who an annotator is: DFEW chose annotators of one cultural background."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator_profile"
    )
    region = models.CharField(_("region"), max_length=100, blank=True)
    cultural_background = models.CharField(_("cultural background"), max_length=100, blank=True)
    languages = models.CharField(
        _("languages"), max_length=200, blank=True, help_text=_("Comma-separated, e.g. zh, en")
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"profile of {self.user}"


# The codebook (labeling/codebook.py): what annotators read before and while labelling. Kept
# beside the campaign and its labels rather than on them, so one migration adds it alone.
class CampaignGuide(models.Model):
    """A campaign's instructions to its annotators, shown in the labelling page's panel."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="guide")
    instructions = models.TextField(_("instructions"), blank=True, max_length=5000)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"instructions of {self.campaign}"


class LabelGuide(models.Model):
    """One label's codebook entry: what it means in this campaign and, optionally, a clip of
    the campaign that shows it (checked to be the label's campaign by the service)."""

    label = models.OneToOneField(Label, on_delete=models.CASCADE, related_name="guide")
    description = models.TextField(_("description"), blank=True, max_length=1000)
    example_clip = models.ForeignKey(
        "labeling.Clip",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("example clip"),
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"codebook entry of {self.label}"


# --- Memberships and invitations (issue 20): who works on which campaign, in which role. ---


class Membership(models.Model):
    """One person in one role on one campaign: the rows every access rule reads
    (``labeling.access``). Site-wide roles stay Django groups (which pages a person sees); a
    membership says where they may work. A person may hold several roles on one campaign,
    one row each."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign", "role", "user"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user", "role"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]
        indexes = [models.Index(fields=["user", "role"], name="membership_user_role")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} on {self.campaign}"


class Invitation(models.Model):
    """A one-time invitation to join a campaign in a role, sent as a signed link
    (``labeling.campaigns.invitation_token``). ``username`` empty: whoever opens the link
    chooses a name (or joins with the account they are logged in with); set: the link makes
    that account (a line of an imported CSV). Used once: ``accepted_at`` is claimed by a
    conditional UPDATE."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    username = models.CharField(_("username"), max_length=150, blank=True)
    nonce = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="invitation_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="invitation_expires_later"
            ),
        ]

    def __str__(self) -> str:
        return f"invitation to {self.campaign} as {self.role}"
