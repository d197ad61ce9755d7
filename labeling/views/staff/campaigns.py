"""Staff pages of a campaign: create it, change its settings, and run its team (memberships
by role, invitation links, a CSV of users, each person's progress). Every write goes through
``labeling.campaigns``; the pages only read forms and show what the services say."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation_site.errors import ApplicationError
from annotation_site.guards import staff_required
from labeling import campaigns
from labeling.models import Campaign, Role
from labeling.views.staff import selectors
from labeling.views.staff.forms import (
    CampaignCreateForm,
    CampaignForm,
    ImportForm,
    InviteAcceptForm,
    InviteForm,
    MemberForm,
)

User = get_user_model()
# An uploaded CSV of users is read into memory: this bounds it.
CSV_MAX_BYTES = 1_000_000


@staff_required
@require_http_methods(["GET", "POST"])
def campaign_new(request):
    """A new campaign: its settings and its label set (``campaigns.campaign_create``)."""
    form = CampaignCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        options = {
            name: value
            for name, value in form.cleaned_data.items()
            if name not in ("name", "slug", "labels", "rare")
        }
        try:
            labels = campaigns.label_set_parse(form.cleaned_data["labels"])
            campaign = campaigns.campaign_create(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                labels=labels,
                rare=form.cleaned_data["rare"].lower().split(),
                **options,
            )
        except ValidationError as exc:
            form.add_error("labels" if not hasattr(exc, "error_dict") else None, exc)
        except ApplicationError as exc:
            form.add_error("rare", exc.message)
        else:
            messages.success(
                request, _("Campaign %(name)s created. Now add its team.") % {"name": campaign}
            )
            return redirect("staff-team", campaign_id=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "labeling/staff_campaign_form.html",
        {"form": form, "campaign": None},
        status=status,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request, campaign_id: int):
    """A campaign's settings, under the change rule every door calls
    (``campaigns.campaign_check_change`` through the form and ``campaign_update``)."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if request.method == "POST":
        # The change rule locks the campaign row; the check and the save share this
        # transaction, as they do in the admin.
        with transaction.atomic():
            form = CampaignForm(request.POST, instance=campaign)
            if form.is_valid():
                campaigns.campaign_update(campaign=form.instance)
                messages.success(request, _("Settings saved."))
                return redirect("staff-campaign-edit", campaign_id=campaign.pk)
        campaign.refresh_from_db()
        status = 400
    else:
        form = CampaignForm(instance=campaign)
        status = 200
    return render(
        request,
        "labeling/staff_campaign_form.html",
        {"form": form, "campaign": campaign, "labels": list(campaign.labels.all())},
        status=status,
    )


def _team_page(request, campaign: Campaign, status: int = 200, **extra):
    team = selectors.campaign_team(campaign)
    invitations = [
        (
            inv,
            request.build_absolute_uri(
                reverse("invite-accept", args=[campaigns.invitation_token(inv)])
            ),
        )
        for inv in team.invitations
    ]
    context = {
        "campaign": campaign,
        "groups": [
            (role, label, team.members[role.value])
            for role, label in zip(Role, Role.labels, strict=True)
        ],
        "invitations": invitations,
        "member_form": MemberForm(),
        "invite_form": InviteForm(),
        "import_form": ImportForm(),
        **extra,
    }
    return render(request, "labeling/staff_team.html", context, status=status)


@staff_required
@require_GET
def team(request, campaign_id: int):
    """The campaign's team by role, with each person's progress and speed, and the ways to
    add people: by name, by invitation link, by a CSV of users."""
    return _team_page(request, get_object_or_404(Campaign, pk=campaign_id))


@staff_required
@require_POST
def member_add(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = MemberForm(request.POST)
    if not form.is_valid():
        return _team_page(request, campaign, 400, member_form=form)
    user = User.objects.filter(username=form.cleaned_data["username"]).first()
    if user is None:
        form.add_error("username", _("No account has this name; send an invitation link instead."))
        return _team_page(request, campaign, 400, member_form=form)
    _membership, created = campaigns.membership_add(
        campaign=campaign, user=user, role=form.cleaned_data["role"], added_by=request.user
    )
    role = Role(form.cleaned_data["role"]).label
    if created:
        messages.success(request, _("%(user)s joined as %(role)s.") % {"user": user, "role": role})
    else:
        messages.info(
            request, _("%(user)s is already %(role)s here.") % {"user": user, "role": role}
        )
    return redirect("staff-team", campaign_id=campaign.pk)


@staff_required
@require_POST
def member_remove(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = MemberForm(request.POST)
    user = User.objects.filter(username=request.POST.get("username", "")).first()
    if not form.is_valid() or user is None:
        return _team_page(
            request, campaign, 400, team_error=_("Choose a member and a role to remove.")
        )
    if campaigns.membership_remove(campaign=campaign, user=user, role=form.cleaned_data["role"]):
        messages.success(
            request,
            _("%(user)s is no longer %(role)s here; their work stays.")
            % {"user": user, "role": Role(form.cleaned_data["role"]).label},
        )
    return redirect("staff-team", campaign_id=campaign.pk)


@staff_required
@require_POST
def invite_create(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, campaign, 400, invite_form=form)
    invitation = campaigns.invitation_create(
        campaign=campaign, role=form.cleaned_data["role"], created_by=request.user
    )
    messages.success(
        request,
        _("Invitation link made: send it to one person; it works once, for %(days)d days.")
        % {"days": campaigns.INVITATION_DAYS},
    )
    return redirect(reverse("staff-team", args=[campaign.pk]) + f"#invitation-{invitation.pk}")


@staff_required
@require_POST
def members_import(request, campaign_id: int):
    """A CSV of users: every line checked first, per-line errors shown, nothing half-done."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _team_page(request, campaign, 400, import_form=form)
    upload = form.cleaned_data["file"]
    try:
        if upload.size > CSV_MAX_BYTES:
            raise ValidationError(_("The file is larger than 1 MB; split it."))
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(_("The file is not UTF-8 text; save it as CSV UTF-8.")) from None
        done = campaigns.members_import(campaign=campaign, text=text, added_by=request.user)
    except ValidationError as exc:
        return _team_page(request, campaign, 400, import_errors=exc.messages)
    added = sum(1 for d in done if d.added)
    invited = sum(1 for d in done if d.invitation is not None)
    messages.success(
        request,
        _(
            "%(added)d added, %(invited)d invited (their links are under Pending invitations), "
            "%(same)d already on the team."
        )
        % {"added": added, "invited": invited, "same": len(done) - added - invited},
    )
    return redirect("staff-team", campaign_id=campaign.pk)


@require_http_methods(["GET", "POST"])
def invite_accept(request, token: str):
    """An invitation link: whoever opens it joins the campaign in its role, with the account
    they are logged in with or a new one made here. Public: the signed token is the key."""
    try:
        invitation = campaigns.invitation_for_token(token)
    except ApplicationError as exc:
        return render(request, "labeling/staff_invite.html", {"error": exc.message}, status=400)
    user = request.user if request.user.is_authenticated else None
    form = InviteAcceptForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            joined = campaigns.invitation_accept(
                token=token,
                user=user,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if user is None:
                login(request, joined, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                _("Welcome to %(campaign)s, as %(role)s.")
                % {"campaign": invitation.campaign, "role": Role(invitation.role).label},
            )
            return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "labeling/staff_invite.html",
        {"invitation": invitation, "role": Role(invitation.role).label, "form": form},
        status=status,
    )
