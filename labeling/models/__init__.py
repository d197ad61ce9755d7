"""The labeling app's models, one module per sub-domain, all importable from here.

The invariants that protect annotators' work are database constraints, not only checks in
Python: one live assignment per slot, one live assignment and one annotation per annotator per
clip, slots numbered from 1; one live reward entry per person, kind and clip.
"""

from labeling.models.campaigns import (
    AnnotatorProfile,
    Campaign,
    CampaignGuide,
    Invitation,
    Label,
    LabelGuide,
    Membership,
)
from labeling.models.choices import (
    JobStatus,
    MediaStatus,
    Role,
)
from labeling.models.clips import (
    Clip,
    ClipQuerySet,
    ClipReport,
    Movie,
    Screening,
)
from labeling.models.loop import (
    HELD_OR_DONE_STATUSES,
    LIVE_ASSIGNMENT_STATUSES,
    Annotation,
    AnnotationQuerySet,
    AnnotatorTally,
    Assignment,
    AssignmentQuerySet,
)
from labeling.models.release import (
    LabelExport,
    Split,
    SplitClip,
)
from labeling.models.results import (
    AgreementReport,
    AnnotatorExclusion,
    ClipLabel,
    QualityModel,
)
from labeling.models.rewards import (
    Payout,
    RewardEntry,
    RewardHold,
    RewardKind,
    cents_to_decimal,
)
from labeling.models.suggestions import Suggestion

__all__ = [
    "HELD_OR_DONE_STATUSES",
    "LIVE_ASSIGNMENT_STATUSES",
    "Role",
    "JobStatus",
    "MediaStatus",
    "Campaign",
    "AnnotatorExclusion",
    "QualityModel",
    "Label",
    "AnnotatorProfile",
    "CampaignGuide",
    "LabelGuide",
    "Membership",
    "Invitation",
    "Movie",
    "ClipQuerySet",
    "Clip",
    "Screening",
    "ClipReport",
    "AssignmentQuerySet",
    "Assignment",
    "AnnotationQuerySet",
    "Annotation",
    "AnnotatorTally",
    "ClipLabel",
    "AgreementReport",
    "Split",
    "SplitClip",
    "LabelExport",
    "cents_to_decimal",
    "RewardKind",
    "Payout",
    "RewardEntry",
    "RewardHold",
    "Suggestion",
]
