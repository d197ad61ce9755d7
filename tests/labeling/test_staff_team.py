"""Campaign teams: memberships by role (the access rules read them), invitation links, a CSV of
users, the team page with each person's progress, and the data migration from the old
"annotators" list."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from annotation_site.errors import ApplicationError
from labeling import access, campaigns
from labeling.loop import services
from labeling.models import Annotation, Assignment, Clip, Invitation, Membership, Movie, Role
from tests.conftest import PASSWORD, make_clips, make_user

User = get_user_model()


def staff_client(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
class MembershipAccessTests:
    def test_an_extractor_member_cannot_lease_even_with_the_annotator_group(self, campaign):
        # given ed, in both groups, but only an extractor on this campaign (the old list
        # made every member an annotator)
        make_clips(campaign, 2)
        ed = make_user("ed", Role.ANNOTATOR, Role.EXTRACTOR)
        campaigns.membership_add(campaign=campaign, user=ed, role=Role.EXTRACTOR)
        # then he is offered no clip, and the campaign is his to mark clips in
        assert services.assignment_next(user=ed) is None
        assert list(access.campaigns_for_extractor(ed)) == [campaign]
        # when he is made an annotator too, he labels
        campaigns.membership_add(campaign=campaign, user=ed, role=Role.ANNOTATOR)
        assert services.assignment_next(user=ed) is not None

    def test_an_annotator_member_does_not_mark_clips_there(self, campaign):
        ann = make_user("ann", Role.ANNOTATOR, Role.EXTRACTOR)
        campaigns.membership_add(campaign=campaign, user=ann, role=Role.ANNOTATOR)
        assert not access.campaigns_for_extractor(ann).exists()
        assert not access.movies_visible(ann).exists()

    def test_adding_a_member_grants_the_roles_pages_and_twice_changes_nothing(self, campaign, dave):
        _, created = campaigns.membership_add(campaign=campaign, user=dave, role="reviewer")
        _, again = campaigns.membership_add(campaign=campaign, user=dave, role="reviewer")
        assert (created, again) == (True, False)
        assert Membership.objects.filter(user=dave).count() == 1
        dave = User.objects.get(pk=dave.pk)
        assert access.user_has_role(dave, Role.REVIEWER)
        assert not access.user_has_role(dave, Role.ANNOTATOR)

    def test_removing_a_member_ends_their_leasing_and_keeps_their_labels(self, campaign, alice):
        make_clips(campaign, 2)
        lease = services.assignment_next(user=alice)
        services.annotation_submit(user=alice, assignment_id=lease.pk, label_name="happy")
        assert campaigns.membership_remove(campaign=campaign, user=alice, role="annotator")
        assert services.assignment_next(user=alice) is None
        assert Annotation.objects.filter(annotator=alice).count() == 1


@pytest.mark.django_db
class InvitationTests:
    def test_a_link_makes_an_account_with_its_role_once(self, campaign, admin_user):
        invitation = campaigns.invitation_create(
            campaign=campaign, role="annotator", created_by=admin_user
        )
        token = campaigns.invitation_token(invitation)
        user = campaigns.invitation_accept(token=token, username="newbie", password=PASSWORD)
        assert Membership.objects.filter(campaign=campaign, user=user, role="annotator").exists()
        assert access.user_has_role(User.objects.get(pk=user.pk), Role.ANNOTATOR)
        with pytest.raises(ApplicationError, match="already been used"):
            campaigns.invitation_accept(token=token, username="second", password=PASSWORD)
        assert not User.objects.filter(username="second").exists()

    def test_an_expired_or_altered_link_is_refused_and_makes_nothing(self, campaign, admin_user):
        invitation = campaigns.invitation_create(
            campaign=campaign, role="extractor", created_by=admin_user
        )
        token = campaigns.invitation_token(invitation)
        with pytest.raises(ApplicationError, match="not valid"):
            campaigns.invitation_accept(token=token[:-2] + "xx", username="x", password=PASSWORD)
        Invitation.objects.filter(pk=invitation.pk).update(
            created_at=timezone.now() - timedelta(days=9),
            expires_at=timezone.now() - timedelta(days=2),
        )
        with pytest.raises(ApplicationError, match="expired"):
            campaigns.invitation_accept(token=token, username="x", password=PASSWORD)
        assert not User.objects.filter(username="x").exists()

    def test_a_weak_password_or_taken_name_leaves_the_link_usable(
        self, campaign, admin_user, alice
    ):
        invitation = campaigns.invitation_create(
            campaign=campaign, role="annotator", created_by=admin_user
        )
        token = campaigns.invitation_token(invitation)
        with pytest.raises(ValidationError):
            campaigns.invitation_accept(token=token, username="newbie", password="short")
        with pytest.raises(ValidationError):
            campaigns.invitation_accept(token=token, username="alice", password=PASSWORD)
        invitation.refresh_from_db()
        assert invitation.accepted_at is None
        campaigns.invitation_accept(token=token, username="newbie", password=PASSWORD)

    def test_the_page_makes_the_account_logs_in_and_opens_the_roles_page(
        self, client, campaign, admin_user
    ):
        staff = staff_client(client, admin_user)
        response = staff.post(f"/staff/campaigns/{campaign.pk}/team/invite/", {"role": "annotator"})
        assert response.status_code == 302
        link = campaigns.invitation_token(Invitation.objects.get())
        assert link in staff.get(f"/staff/campaigns/{campaign.pk}/team/").content.decode()
        staff.logout()
        page = client.get(f"/invite/{link}/")
        assert "Join Campaign" in page.content.decode()
        joined = client.post(f"/invite/{link}/", {"username": "newbie", "password": PASSWORD})
        assert joined.status_code == 302
        assert client.get("/label/").status_code == 200
        again = client.get(f"/invite/{link}/")
        assert again.status_code == 400 and "already been used" in again.content.decode()

    def test_a_link_for_a_named_account_refuses_someone_else(self, client, campaign, admin_user):
        invitation = campaigns.invitation_create(
            campaign=campaign, role="annotator", created_by=admin_user, username="zoe"
        )
        make_user("dana")
        client.login(username="dana", password=PASSWORD)
        url = f"/invite/{campaigns.invitation_token(invitation)}/"
        assert (
            "This invitation is for zoe; log out to accept it." in client.get(url).content.decode()
        )
        refused = client.post(url)
        assert refused.status_code == 400
        assert not Membership.objects.exists()
        invitation.refresh_from_db()
        assert invitation.accepted_at is None

    def test_someone_logged_in_joins_with_their_own_account(self, client, campaign, admin_user):
        invitation = campaigns.invitation_create(
            campaign=campaign, role="reviewer", created_by=admin_user
        )
        dana = make_user("dana")
        client.login(username="dana", password=PASSWORD)
        response = client.post(f"/invite/{campaigns.invitation_token(invitation)}/")
        assert response.status_code == 302
        assert Membership.objects.filter(user=dana, role="reviewer").exists()
        assert client.get("/review/").status_code == 200


@pytest.mark.django_db
class CsvImportTests:
    def test_any_bad_line_is_named_and_nothing_is_imported(self, client, campaign, admin_user):
        make_user("eve")
        text = "username,role\neve,extractor\nbad name!,annotator\nzoe,boss\neve,extractor\n"
        response = staff_client(client, admin_user).post(
            f"/staff/campaigns/{campaign.pk}/team/import/",
            {"file": SimpleUploadedFile("team.csv", text.encode())},
        )
        assert response.status_code == 400
        page = response.content.decode()
        assert "line 3 (bad name!)" in page
        assert "line 4 (zoe): the role must be one of annotator, extractor, reviewer" in page
        assert "line 5 (eve): the same person and role appear on an earlier line" in page
        assert "line 2" not in page
        assert not Membership.objects.exists() and not Invitation.objects.exists()

    def test_known_people_join_and_unknown_ones_get_their_own_link(
        self, client, campaign, admin_user
    ):
        eve = make_user("eve")
        text = "\ufeffeve,extractor\neve,reviewer\nnew1,annotator\n"
        response = staff_client(client, admin_user).post(
            f"/staff/campaigns/{campaign.pk}/team/import/",
            {"file": SimpleUploadedFile("team.csv", text.encode())},
        )
        assert response.status_code == 302
        assert set(Membership.objects.filter(user=eve).values_list("role", flat=True)) == {
            "extractor",
            "reviewer",
        }
        (invitation,) = Invitation.objects.all()
        assert (invitation.username, invitation.role) == ("new1", "annotator")
        # the link makes exactly that account
        user = campaigns.invitation_accept(
            token=campaigns.invitation_token(invitation), username="other", password=PASSWORD
        )
        assert user.username == "new1"


@pytest.mark.django_db
class TeamPageTests:
    def test_it_lists_each_role_with_progress_and_speed(self, client, campaign, alice, bob):
        # given alice labelled two clips within one hour, each 4 s after it was shown, and
        # ed marked one clip
        make_clips(campaign, 3)
        hour = (timezone.now() - timedelta(hours=2)).replace(minute=10, second=0, microsecond=0)
        for i in range(2):
            lease = services.assignment_next(user=alice)
            services.annotation_submit(user=alice, assignment_id=lease.pk, label_name="happy")
            done = hour + timedelta(minutes=i)
            Assignment.objects.filter(pk=lease.pk).update(
                finished_at=done, shown_at=done - timedelta(seconds=4)
            )
        ed = make_user("ed", Role.EXTRACTOR)
        campaigns.membership_add(campaign=campaign, user=ed, role="extractor")
        movie = Movie.objects.get()
        Clip.objects.filter(pk=Clip.objects.filter(movie=movie).first().pk).update(proposed_by=ed)
        admin = make_user("admin", staff=True)
        page = staff_client(client, admin).get(f"/staff/campaigns/{campaign.pk}/team/")
        assert page.status_code == 200
        html = re.sub(r">\s+<", "><", page.content.decode())
        annotators = html[html.index('id="role-annotator"') : html.index('id="role-extractor"')]
        extractors = html[html.index('id="role-extractor"') : html.index('id="role-reviewer"')]
        assert "Annotator <small>(2)</small>" in annotators
        assert "<td>alice</td><td>2</td><td>4.0</td><td>2.0</td>" in annotators
        assert "<td>bob</td><td>0</td>" in annotators
        assert "<td>ed</td><td>1</td><td>1</td><td>0</td>" in extractors
        assert "No reviewers yet" in html

    def test_adding_an_unknown_name_is_a_400_that_says_what_to_do(
        self, client, campaign, admin_user
    ):
        response = staff_client(client, admin_user).post(
            f"/staff/campaigns/{campaign.pk}/team/add/", {"username": "ghost", "role": "annotator"}
        )
        assert response.status_code == 400
        assert "send an invitation link instead" in response.content.decode()
        assert not Membership.objects.exists()


def _memberships_migration() -> tuple[tuple[str, str], tuple[str, str]]:
    """(the memberships migration, the labeling migration before it), by name, so the test
    still finds them after the migrations are renumbered."""
    graph = MigrationExecutor(connection).loader.graph
    (node,) = [n for n in graph.nodes if n[0] == "labeling" and n[1].endswith("_memberships")]
    (before,) = [p for p in graph.node_map[node].parents if p.key[0] == "labeling"]
    return node, before.key


@pytest.mark.django_db(transaction=True)
class MembershipMigrationTests:
    def test_the_old_list_and_groups_become_memberships_and_nobody_loses_access(self):
        node, before = _memberships_migration()
        executor = MigrationExecutor(connection)
        executor.migrate([before])
        old = executor.loader.project_state([before]).apps
        Group, OldUser = old.get_model("auth", "Group"), old.get_model("auth", "User")
        Campaign = old.get_model("labeling", "Campaign")
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in Role.values}
        people = {}
        for name, roles in {
            "ann": ["annotator"],
            "ed": ["extractor"],
            "both": ["annotator", "extractor"],
            "rita": ["reviewer"],
            "staffer": [],
        }.items():
            people[name] = OldUser.objects.create(username=name, is_staff=name == "staffer")
            people[name].groups.set([groups[r] for r in roles])
        one = Campaign.objects.create(name="One", slug="one")
        two = Campaign.objects.create(name="Two", slug="two")
        one.annotators.add(people["ann"], people["ed"], people["both"], people["staffer"])
        two.annotators.add(people["ann"])
        # when
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        # then
        got = set(Membership.objects.values_list("campaign__slug", "user__username", "role"))
        assert got == {
            ("one", "ann", "annotator"),
            ("one", "ed", "extractor"),
            ("one", "both", "annotator"),
            ("one", "both", "extractor"),
            ("one", "staffer", "annotator"),
            ("one", "rita", "reviewer"),
            ("two", "ann", "annotator"),
            ("two", "rita", "reviewer"),
        }
        ed = User.objects.get(username="ed")
        assert [c.slug for c in access.campaigns_for_extractor(ed)] == ["one"]
