"""People and campaigns: creating users with their roles, creating and changing campaigns
(the annotations per clip are fixed once labelling has begun), and campaign teams: one
membership per person and role (``membership_add``), invitations by one-time signed link
(``invitation_create`` / ``invitation_accept``) or by a CSV of users (``members_import``)."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from annotation_site.errors import ApplicationError, NotFound
from labeling.models import (
    Annotation,
    AnnotatorProfile,
    Assignment,
    Campaign,
    Invitation,
    Label,
    Membership,
    Role,
)
from pipeline.emotions import DFEW_EMOTIONS, DFEW_RARE

User = get_user_model()


def user_create(
    *,
    username: str,
    password: str,
    roles: Iterable[str] = (),
    is_staff: bool = False,
    region: str = "",
    cultural_background: str = "",
    languages: str = "",
):
    """Creates a user with the given roles (groups) and an annotator profile."""
    with transaction.atomic():
        user = User(username=username, is_staff=is_staff, is_superuser=is_staff)
        user.set_password(password)
        user.full_clean()
        user.save()
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=Role(role).value)[0])
        AnnotatorProfile.objects.create(
            user=user, region=region, cultural_background=cultural_background, languages=languages
        )
    return user


def campaign_create(
    *,
    name: str,
    slug: str,
    labels: Sequence[tuple[int, str]] = DFEW_EMOTIONS,
    rare: Iterable[str] = DFEW_RARE,
    **options,
) -> Campaign:
    """Creates a campaign with its label set (DFEW's seven emotions unless given)."""
    rare = set(rare)
    unknown = rare - {name for _, name in labels}
    if unknown:
        raise ApplicationError(f"Rare labels {sorted(unknown)} are not in the label set.")
    with transaction.atomic():
        campaign = Campaign(name=name, slug=slug, **options)
        campaign.full_clean()
        campaign.save()
        Label.objects.bulk_create(
            Label(
                campaign=campaign,
                code=code,
                name=label,
                display_name=label.capitalize(),
                is_rare=label in rare,
            )
            for code, label in labels
        )
    return campaign


def campaign_labelling_begun(campaign_id: int) -> bool:
    """Labelling has begun once any clip of the campaign has had a lease or a label (live,
    ended or invalidated: each was counted against the campaign's annotations per clip)."""
    return (
        Assignment.objects.filter(clip__campaign_id=campaign_id).exists()
        or Annotation.objects.filter(clip__campaign_id=campaign_id).exists()
    )


def campaign_check_change(campaign_id: int, **changes) -> None:
    """The rule for changing an existing campaign, which every door calls (the admin's form,
    ``campaign_update``): its annotations per clip are fixed once labelling has begun, since
    clips already complete would keep the old count while open ones filled to the new one.

    Raises ``ValidationError`` keyed by field. Locks the campaign row for the rest of the
    caller's transaction, so the check and the save see the same row."""
    stored = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if stored is None:
        raise NotFound(f"No campaign {campaign_id}.")
    per_clip = changes.get("annotations_per_clip")
    if (
        per_clip is not None
        and per_clip != stored.annotations_per_clip
        and campaign_labelling_begun(campaign_id)
    ):
        raise ValidationError(
            {
                "annotations_per_clip": gettext(
                    "The annotations per clip cannot change once labelling has begun: clips "
                    "of this campaign already have leases or labels counted against %(n)d."
                )
                % {"n": stored.annotations_per_clip}
            }
        )


def campaign_update(*, campaign: Campaign) -> Campaign:
    """Saves the changes made to ``campaign`` (an existing row), under the change rule."""
    with transaction.atomic():
        campaign_check_change(campaign.pk, annotations_per_clip=campaign.annotations_per_clip)
        campaign.full_clean()
        campaign.save()
    return campaign


# --- Teams: memberships and invitations ------------------------------------------------------

INVITATION_SALT = "labeling.invitation"
INVITATION_DAYS = 7
# A CSV of users is read whole before anything is written: this bounds what a page holds.
CSV_MAX_LINES = 5000


def label_set_parse(text: str) -> list[tuple[int, str]]:
    """A label set written one label a line, ``code name`` (``1 happy``), as the staff page
    takes it. Raises ``ValidationError`` naming the first bad line; codes and names unique."""
    labels: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
            raise ValidationError(
                gettext('Line %(n)d: write a code and a name, such as "1 happy".') % {"n": number}
            )
        labels.append((int(parts[0]), parts[1].lower()))
    codes = [code for code, _ in labels]
    names = [name for _, name in labels]
    if len(labels) < 2:
        raise ValidationError(gettext("A label set needs at least two labels."))
    if len(set(codes)) != len(codes) or len(set(names)) != len(names):
        raise ValidationError(gettext("Each code and each name may appear only once."))
    return labels


def membership_add(
    *, campaign: Campaign, user, role: str, added_by=None
) -> tuple[Membership, bool]:
    """Puts ``user`` on the campaign's team in ``role`` and gives them the role's site-wide
    group (the pages it opens). Returns the membership and whether it is new; adding an
    existing membership again changes nothing. One transaction; the unique constraint on
    (campaign, user, role) holds under concurrent adds."""
    role = Role(role)
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            campaign=campaign, user=user, role=role.value, defaults={"added_by": added_by}
        )
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    if hasattr(user, "role_names"):
        del user.role_names  # read afresh (annotation_site.roles.user_has_role)
    return membership, created


def membership_remove(*, campaign: Campaign, user, role: str) -> bool:
    """Takes ``user`` off the campaign's team in ``role``. Their submitted labels, clips and
    earnings stay; live leases lapse as usual. The site-wide group stays (other campaigns may
    need it). Returns whether a membership was removed."""
    deleted, _ = Membership.objects.filter(
        campaign=campaign, user=user, role=Role(role).value
    ).delete()
    return bool(deleted)


def invitation_create(
    *, campaign: Campaign, role: str, created_by, username: str = "", days: int = INVITATION_DAYS
) -> Invitation:
    """A one-time invitation to the campaign in ``role``, valid ``days`` days; its link is
    ``invitation_token(invitation)``."""
    now = timezone.now()
    invitation = Invitation(
        campaign=campaign,
        role=Role(role).value,
        username=username,
        nonce=secrets.token_urlsafe(24),
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    invitation.full_clean()
    invitation.save()
    return invitation


def invitation_token(invitation: Invitation) -> str:
    """The signed token of an invitation's link: its id and random nonce, signed with the
    site's key. Expiry and single use are the row's (``expires_at``, ``accepted_at``), so a
    link can be shown again while it is pending."""
    return signing.dumps([invitation.pk, invitation.nonce], salt=INVITATION_SALT)


def invitation_for_token(token: str) -> Invitation:
    """The pending invitation a token names. Raises ``ApplicationError`` with the reason a
    person can act on: a broken link, a used one, an expired one."""
    try:
        pk, nonce = signing.loads(token, salt=INVITATION_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise ApplicationError(gettext("This invitation link is not valid.")) from None
    invitation = Invitation.objects.select_related("campaign").filter(pk=pk, nonce=nonce).first()
    if invitation is None:
        raise ApplicationError(gettext("This invitation link is not valid."))
    if invitation.accepted_at is not None:
        raise ApplicationError(gettext("This invitation has already been used."))
    if invitation.expires_at <= timezone.now():
        raise ApplicationError(
            gettext("This invitation has expired; ask the campaign's staff for a new link.")
        )
    return invitation


def invitation_accept(*, token: str, user=None, username: str = "", password: str = ""):
    """Accepts an invitation: ``user`` (someone logged in) joins the campaign in the
    invitation's role; with no ``user`` an account is made from ``username`` (the
    invitation's own when it names one) and ``password``. One transaction: the invitation is
    claimed by a conditional UPDATE, so a link opened twice at once makes one account.
    Returns the user. Raises ``ApplicationError`` or ``ValidationError`` (keyed by field) and
    changes nothing on bad input."""
    invitation = invitation_for_token(token)
    if user is not None and invitation.username and user.username != invitation.username:
        raise ApplicationError(
            gettext("This invitation is for %(name)s; log out to accept it.")
            % {"name": invitation.username}
        )
    with transaction.atomic():
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, expires_at__gt=timezone.now()
        ).update(accepted_at=timezone.now())
        if claimed != 1:
            raise ApplicationError(gettext("This invitation has already been used."))
        if user is None:
            username = invitation.username or username.strip()
            candidate = User(username=username)
            try:
                validate_password(password, candidate)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from None
            user = user_create(username=username, password=password)
        membership_add(
            campaign=invitation.campaign,
            user=user,
            role=invitation.role,
            added_by=invitation.created_by,
        )
        Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
    return user


@dataclass(frozen=True)
class ImportedMember:
    """One line of an imported CSV, done: an existing account added, or an invitation made."""

    line: int
    username: str
    role: str
    added: bool
    invitation: Invitation | None


def members_import(*, campaign: Campaign, text: str, added_by) -> list[ImportedMember]:
    """Adds the people of a CSV (``username,role`` a line; a header line is skipped) to the
    campaign: existing accounts join at once, unknown names get a one-time invitation that
    makes that account. Every line is checked first; any error raises ``ValidationError``
    with one message per bad line ("line 3: ...") and nothing is written. Then one
    transaction writes them all. Re-importing the same file adds nothing new for existing
    members."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if len(rows) > CSV_MAX_LINES:
        raise ValidationError(
            gettext("At most %(n)d lines at once; split the file.") % {"n": CSV_MAX_LINES}
        )
    roles = {r.value for r in Role}
    errors: list[str] = []
    wanted: list[tuple[int, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and [c.lower() for c in cells[:2]] == ["username", "role"]:
            continue
        if len(cells) != 2:
            errors.append(
                gettext("line %(n)d: write two columns, username and role.") % {"n": number}
            )
            continue
        username, role = cells[0], cells[1].lower()
        problems = []
        try:
            User.username_validator(username)
            User._meta.get_field("username").run_validators(username)
        except ValidationError as exc:
            problems.extend(exc.messages)
        if role not in roles:
            problems.append(
                gettext("the role must be one of %(roles)s") % {"roles": ", ".join(sorted(roles))}
            )
        if (username.lower(), role) in seen:
            problems.append(gettext("the same person and role appear on an earlier line"))
        seen.add((username.lower(), role))
        if problems:
            errors.append(
                gettext("line %(n)d (%(name)s): %(problems)s")
                % {"n": number, "name": username or "-", "problems": "; ".join(problems)}
            )
        else:
            wanted.append((number, username, role))
    if errors:
        raise ValidationError(errors)
    if not wanted:
        raise ValidationError(gettext("The file names nobody."))
    existing = {u.username: u for u in User.objects.filter(username__in=[w[1] for w in wanted])}
    done = []
    with transaction.atomic():
        for number, username, role in wanted:
            user = existing.get(username)
            if user is not None:
                _, added = membership_add(
                    campaign=campaign, user=user, role=role, added_by=added_by
                )
                done.append(ImportedMember(number, username, role, added, None))
            else:
                invitation = invitation_create(
                    campaign=campaign, role=role, created_by=added_by, username=username
                )
                done.append(ImportedMember(number, username, role, False, invitation))
    return done
