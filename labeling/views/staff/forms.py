"""The staff pages' forms. The campaign form is the admin's (``labeling.admin``), so both
doors show the same rule for the annotations per clip and call the same services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from labeling.admin import CampaignAdminForm
from labeling.models import Campaign, Role
from pipeline.emotions import DFEW_EMOTIONS, DFEW_RARE

DEFAULT_LABELS = "\n".join(f"{code} {name}" for code, name in DFEW_EMOTIONS)


class CampaignForm(CampaignAdminForm):
    class Meta:
        model = Campaign
        exclude = ("annotators", "created_at")


class CampaignCreateForm(CampaignForm):
    labels = forms.CharField(
        label=_("Label set"),
        widget=forms.Textarea(attrs={"rows": 8}),
        initial=DEFAULT_LABELS,
        help_text=_("One label a line: its code and its name. DFEW's seven emotions by default."),
    )
    rare = forms.CharField(
        label=_("Rare labels"),
        required=False,
        initial=" ".join(DFEW_RARE),
        help_text=_("Names from the label set, separated by spaces: they earn extra rewards."),
    )


class MemberForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class InviteForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV of users"),
        help_text=_("Two columns, username and role (annotator, extractor or reviewer)."),
    )


class InviteAcceptForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150, required=False)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, required=False)
