"""Who may see and do what: each rule once, called by the API, the pages, the admin and the
media view.

- **Memberships** (``labeling.models.Membership``: one row per person, campaign and role) say
  where a person works: ``campaigns_for(user, role)``. Staff work on every campaign. The
  labelling loop's SQL reads the same rows (``labeling.loop.sql``: annotator memberships only).
- Extractors (and staff) bring in movies and mark clips in **their campaigns**
  (``campaigns_for_extractor``): their extractor memberships, and those they brought a movie
  into.
- A movie's source file is seen by whoever sees the movie in the API (``movies_visible``).
- A clip (its video, poster and face sheet) is seen by staff, reviewers (they screen every
  campaign's clips: the screening queue is one), an extractor of its campaign, and an
  annotator who holds or held an assignment on it (``clip_visible_q``), or for whom it is an
  example clip of their campaign's codebook.
- Any other stored file (exports, stray files) is for staff only.
- Site-wide roles are Django groups (``annotation_site.roles.user_has_role``, imported here
  for the app's callers; staff hold every role): which pages a person sees. Adding a
  membership grants its role's group too (``labeling.campaigns.membership_add``).
- Exports are for staff and those given the ``labeling.export_campaign`` permission
  (``user_can_export``).

Everyone else, anonymous callers included, is told nothing exists (404).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from annotation_site.roles import Role, user_has_role
from labeling.models import Assignment, Campaign, Clip, LabelGuide, Membership, Movie

MOVIE_FOLDER = "movies/"
# Stored clip media under names fixed by the clip's id (labeling.media.extraction.clip_media_names).
CLIP_MEDIA_FOLDERS = {"clips/": "video", "posters/": "poster", "faces/": "faces"}


def user_can_export(user) -> bool:
    """Staff, or a user given the ``labeling.export_campaign`` permission."""
    return bool(
        user.is_authenticated and (user.is_staff or user.has_perm("labeling.export_campaign"))
    )


def can_extract(user) -> bool:
    """Staff and extractors: they bring in movies and mark clips."""
    return bool(user.is_authenticated and (user.is_staff or user_has_role(user, Role.EXTRACTOR)))


def member_q(user, role: Role, campaign: str = "pk") -> Q:
    """Rows whose campaign (the field ``campaign`` names) has ``user`` as a member in
    ``role``, as a filter."""
    return Q(
        Exists(Membership.objects.filter(campaign=OuterRef(campaign), user=user, role=role.value))
    )


def campaigns_for(user, role: Role) -> QuerySet[Campaign]:
    """The campaigns where ``user`` works in ``role``: every one for staff; for anyone else
    those with a membership of theirs in that role (the site-wide role is not enough)."""
    if not user.is_authenticated:
        return Campaign.objects.none()
    if user.is_staff:
        return Campaign.objects.all()
    return Campaign.objects.filter(member_q(user, role))


def campaigns_for_extractor(user) -> QuerySet[Campaign]:
    """The campaigns whose movies and clips ``user`` sees and marks: every one for staff; for
    an extractor, those where they are an extractor member and those they brought a movie
    into; none for anyone else."""
    if not can_extract(user):
        return Campaign.objects.none()
    if user.is_staff:
        return Campaign.objects.all()
    brought = Movie.objects.filter(campaign=OuterRef("pk"), created_by=user)
    return Campaign.objects.filter(member_q(user, Role.EXTRACTOR) | Q(Exists(brought)))


def movies_visible(user) -> QuerySet[Movie]:
    """The movies (and so the source files) ``user`` sees: those of their campaigns."""
    if not can_extract(user):
        return Movie.objects.none()
    if user.is_staff:
        return Movie.objects.all()
    return Movie.objects.filter(campaign__in=campaigns_for_extractor(user))


def clip_visible_q(user) -> Q | None:
    """The clips ``user`` may see, as a filter; None when they may see every clip."""
    if user.is_staff or user_has_role(user, Role.REVIEWER):
        return None
    visible = Q(pk__in=[])
    if user_has_role(user, Role.EXTRACTOR):
        visible |= Q(campaign__in=campaigns_for_extractor(user))
    if user_has_role(user, Role.ANNOTATOR):
        visible |= Q(Exists(Assignment.objects.filter(clip=OuterRef("pk"), annotator=user)))
        # The codebook's example clips, for their campaign's annotators (labeling/codebook.py).
        examples = LabelGuide.objects.filter(
            member_q(user, Role.ANNOTATOR, "label__campaign"), example_clip=OuterRef("pk")
        )
        visible |= Q(Exists(examples))
    return visible


def clips_visible(user) -> QuerySet[Clip]:
    """``clip_visible_q`` as a queryset of clips."""
    visible = clip_visible_q(user)
    return Clip.objects.all() if visible is None else Clip.objects.filter(visible)


def media_may_see(user, name: str) -> bool:
    """Whether ``user`` may read the media file stored as ``name`` (in the default storage)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if name.startswith(MOVIE_FOLDER):
        return movies_visible(user).filter(source=name).exists()
    field = next((f for folder, f in CLIP_MEDIA_FOLDERS.items() if name.startswith(folder)), None)
    if field is None:
        return user.is_staff
    return clips_visible(user).filter(**{field: name}).exists()
