"""The loop's rules written once: held slots, live and lapsed leases, the annotation's tie to
its assignment, the minimum viewing time, the tally, and the cost of `next` and `submit`."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation_site.errors import Conflict
from labeling import campaigns
from labeling.loop import services, sql
from labeling.models import (
    LIVE_ASSIGNMENT_STATUSES,
    Annotation,
    AnnotatorTally,
    Assignment,
    Clip,
    Label,
)
from labeling.results import aggregation
from tests.conftest import make_clips
from tests.labeling.test_api import client_for


def _held_as_counted() -> dict[int, int]:
    """Each clip's slots held, counted from the assignment rows (the definition)."""
    counted = {pk: 0 for pk in Clip.objects.values_list("pk", flat=True)}
    for clip_id in Assignment.objects.filter(status__in=LIVE_ASSIGNMENT_STATUSES).values_list(
        "clip_id", flat=True
    ):
        counted[clip_id] += 1
    return counted


def _held_as_stored() -> dict[int, int]:
    return dict(Clip.objects.values_list("pk", "slots_held"))


@pytest.mark.django_db
class SlotsHeldTests:
    def test_every_service_keeps_the_stored_count_equal_to_the_rows(
        self, campaign, alice, bob, annotators, admin_user, rita
    ):
        make_clips(campaign, 3)

        def check(step):
            assert _held_as_stored() == _held_as_counted(), step

        a = services.assignment_next(user=alice)
        check("lease")
        services.annotation_submit(user=alice, assignment_id=a.pk, label_name="happy")
        check("submit")
        b = services.assignment_next(user=bob)
        services.assignment_release(user=bob, assignment_id=b.pk)
        check("release")
        c = services.assignment_next(user=annotators[0])
        Assignment.objects.filter(pk=c.pk).update(expires_at=timezone.now() - timedelta(1))
        check("lapsed lease still holds its slot")
        assert services.assignment_expire_stale() == 1
        check("sweep")
        services.assignment_show(user=annotators[0], assignment_id=c.pk)
        check("a swept lease shown again holds its slot again")
        d = services.assignment_next(user=annotators[1])
        assert d.clip_id == c.clip_id  # the clip nearest completion
        services.clip_report_problem(user=annotators[0], assignment_id=c.pk, kind="no_face")
        check("report")
        services.clip_screen(reviewer=rita, clip_id=c.clip_id, shows_face=False, shows_emotion=True)
        assert Assignment.objects.get(pk=d.pk).status == Assignment.Status.RELEASED
        check("a rejected clip's leases are released")
        e = services.assignment_next(user=annotators[1])
        services.annotation_submit(user=annotators[1], assignment_id=e.pk, label_name="sad")
        mine = Annotation.objects.get(assignment=e)
        aggregation.annotations_invalidate(staff=admin_user, annotation_ids=[mine.pk])
        check("invalidate")

    def test_a_lapsed_lease_on_the_last_free_slot_is_freed_when_nothing_else_is_found(
        self, campaign, alice, annotators
    ):
        # given: one clip whose ten slots are held, one of them by a lease that has lapsed
        (clip,) = make_clips(campaign, 1)
        leases = [services.assignment_next(user=user) for user in annotators]
        Assignment.objects.filter(pk=leases[3].pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert Clip.objects.get(pk=clip.pk).slots_held == 10
        # when: another annotator asks for a clip
        got = services.assignment_next(user=alice)
        # then: the lapsed lease is expired and its slot is hers
        assert got is not None and got.slot == leases[3].slot
        assert Assignment.objects.get(pk=leases[3].pk).status == Assignment.Status.EXPIRED
        assert Clip.objects.get(pk=clip.pk).slots_held == 10

    def test_next_skips_a_clip_whose_slots_are_all_held(self, campaign, alice, annotators):
        first, second = make_clips(campaign, 2)
        assert set(Clip.objects.with_free_slot()) == {first, second}
        for user in annotators:
            assert services.assignment_next(user=user).clip_id == first.pk
        # the rule the pages use says the same as the hot path's SQL
        assert list(Clip.objects.with_free_slot()) == [second]
        assert services.assignment_next(user=alice).clip_id == second.pk


@pytest.mark.django_db
class LiveLeaseRuleTests:
    def test_the_sql_rule_and_the_queryset_select_the_same_rows(self, campaign, alice):
        now = timezone.now()
        clips = make_clips(campaign, 6)
        states = [
            ("leased", now + timedelta(minutes=1)),
            ("leased", now - timedelta(minutes=1)),
            ("leased", now),
            ("submitted", now + timedelta(minutes=1)),
            ("expired", now + timedelta(minutes=1)),
            ("released", now + timedelta(minutes=1)),
        ]
        for clip, (status, expires) in zip(clips, states, strict=True):
            Assignment.objects.create(
                clip=clip, annotator=alice, slot=1, status=status, expires_at=expires
            )
        by_sql = set(sql.open_lease_ids(alice.pk, campaign.pk, now))
        by_orm = set(
            Assignment.objects.live_leases(now).filter(annotator=alice).values_list("pk", flat=True)
        )
        by_row = {a.pk for a in Assignment.objects.all() if a.is_live_lease(now)}
        assert by_sql == by_orm == by_row
        assert len(by_sql) == 1


@pytest.mark.django_db
class AnnotationTiedToAssignmentTests:
    @pytest.mark.parametrize("field", ["clip", "slot", "annotator"])
    def test_an_annotation_cannot_carry_another_clip_slot_or_annotator(
        self, campaign, alice, bob, field
    ):
        clips = make_clips(campaign, 2)
        a = services.assignment_next(user=alice)
        label = Label.objects.get(campaign=campaign, name="happy")
        values = {"clip": a.clip, "slot": a.slot, "annotator": alice}
        values[field] = {"clip": clips[1], "slot": a.slot + 1, "annotator": bob}[field]
        with pytest.raises(IntegrityError), transaction.atomic():
            Annotation.objects.create(assignment=a, label=label, **values)
            # PostgreSQL checks the deferred foreign key at commit; force it here.
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    def test_an_annotation_with_its_own_assignment_is_accepted(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        result = services.annotation_submit(user=alice, assignment_id=a.pk, label_name="happy")
        assert result.annotation.assignment_id == a.pk


@pytest.mark.django_db
class MinimumViewingTimeTests:
    def test_a_label_before_the_minimum_time_is_refused_and_one_after_is_kept(
        self, campaign, alice
    ):
        campaign.min_view_seconds = 2
        campaign.save()
        make_clips(campaign, 1)
        client = client_for(alice)
        lease = client.post("/api/v1/tasks/next/", {}, format="json").json()
        client.post(f"/api/v1/assignments/{lease['assignment']}/shown/")
        early = client.post(
            f"/api/v1/assignments/{lease['assignment']}/submit/", {"label": "happy"}, format="json"
        )
        assert early.status_code == 409
        assert "at least 2 s" in early.json()["detail"]
        assert 0 < early.json()["retry_after_s"] <= 2
        assert not Annotation.objects.exists()
        # when: the clip has been on screen for 2 s
        Assignment.objects.filter(pk=lease["assignment"]).update(
            shown_at=timezone.now() - timedelta(seconds=2)
        )
        late = client.post(
            f"/api/v1/assignments/{lease['assignment']}/submit/", {"label": "happy"}, format="json"
        )
        assert late.status_code == 201

    def test_the_clock_starts_when_the_clip_is_shown_not_when_it_was_leased(self, campaign, alice):
        campaign.min_view_seconds = 1
        campaign.save()
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        # leased long ago (prefetched), shown just now
        Assignment.objects.filter(pk=a.pk).update(leased_at=timezone.now() - timedelta(60))
        services.assignment_show(user=alice, assignment_id=a.pk)
        with pytest.raises(Conflict):
            services.annotation_submit(user=alice, assignment_id=a.pk, label_name="happy")

    def test_the_default_is_half_a_second(self, db):
        made = campaigns.campaign_create(name="Defaults", slug="defaults")
        assert made.min_view_seconds == 0.5


@pytest.mark.django_db
class TallyTests:
    def test_progress_counts_the_annotators_own_labels_only(self, campaign, alice, bob):
        make_clips(campaign, 3)
        for user in (alice, alice, bob):
            a = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=a.pk, label_name="happy")
        answer = client_for(alice).post("/api/v1/tasks/next/", {}, format="json").json()
        assert answer["progress"]["submitted"] == 2
        assert AnnotatorTally.objects.get(campaign=campaign, annotator=bob).submitted == 1

    def test_a_repeated_submit_does_not_count_twice(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        for _ in range(2):
            services.annotation_submit(user=alice, assignment_id=a.pk, label_name="happy")
        assert AnnotatorTally.objects.get(campaign=campaign, annotator=alice).submitted == 1

    def test_the_rebuild_gives_the_same_counts(self, campaign, alice, bob):
        make_clips(campaign, 2)
        for user in (alice, bob, alice):
            a = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=a.pk, label_name="sad")
        kept = set(AnnotatorTally.objects.values_list("annotator_id", "submitted"))
        Clip.objects.update(slots_held=0)
        sql.campaign_counts_rebuild(campaign.pk)
        assert set(AnnotatorTally.objects.values_list("annotator_id", "submitted")) == kept
        assert _held_as_stored() == _held_as_counted()


# The number of statements of the hot path, pinned: a change that adds a query per request
# (an N+1, a count over the annotator's history) shows up here. Counted inside the test's
# transaction, so `atomic()` is a SAVEPOINT and its RELEASE; SQLite has no row locks, so the
# user lock is not a statement there. next: auth (user and roles), the user lock, open
# leases, member campaigns, the candidate (here two: the in-flight window holds only the
# annotator's own clips, then a fresh clip), its slots, the lease, the recount, labels and
# tally, the pool size (once a minute; counted here). submit: auth, clip lock, assignment
# lock, label, the update, the annotation, the tally, the label's reward, the completion count.
NEXT_QUERIES = {"postgresql": 13, "sqlite": 12}
SUBMIT_QUERIES = {"postgresql": 11, "sqlite": 11}


@pytest.mark.django_db
class QueryCountTests:
    def _counted(self, call) -> list[str]:
        cache.clear()  # the pool size (cached for a minute) is counted on each measured call
        with CaptureQueriesContext(connection) as queries:
            call()
        return [q["sql"] for q in queries.captured_queries]

    def test_next_and_submit_cost_a_fixed_number_of_statements_whatever_the_size(
        self, campaign, alice, bob
    ):
        client = client_for(alice)
        make_clips(campaign, 5)
        small = self._counted(lambda: client.post("/api/v1/tasks/next/", {}, format="json"))
        lease = Assignment.objects.get(annotator=alice).pk
        small_submit = self._counted(
            lambda: client.post(
                f"/api/v1/assignments/{lease}/submit/", {"label": "happy"}, format="json"
            )
        )
        # when: the campaign is two hundred times larger and alice has a history
        make_clips(campaign, 1000, start_number=100)
        for _ in range(20):
            a = services.assignment_next(user=alice)
            services.annotation_submit(user=alice, assignment_id=a.pk, label_name="sad")
        large = self._counted(lambda: client.post("/api/v1/tasks/next/", {}, format="json"))
        lease = Assignment.objects.get(annotator=alice, status="leased").pk
        large_submit = self._counted(
            lambda: client.post(
                f"/api/v1/assignments/{lease}/submit/", {"label": "happy"}, format="json"
            )
        )
        assert len(small) == len(large) == NEXT_QUERIES[connection.vendor], large
        assert len(small_submit) == len(large_submit) == SUBMIT_QUERIES[connection.vendor], (
            large_submit
        )


@pytest.mark.django_db
class FarAheadAnnotatorTests:
    """DFEW's shape: everyone labels every clip, so an annotator far ahead of the others has
    touched every in-flight clip near the top of the lease order. `next` looks at a bounded
    window of in-flight clips, then at fresh ones, and walks everything only as a last resort."""

    def _label(self, user, n: int) -> list[int]:
        done = []
        for _ in range(n):
            lease = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=lease.pk, label_name="sad")
            done.append(lease.clip_id)
        return done

    def test_past_the_window_of_in_flight_clips_it_takes_a_fresh_clip(
        self, campaign, alice, bob, monkeypatch
    ):
        monkeypatch.setattr(sql, "CANDIDATE_WINDOW", 3)
        clips = make_clips(campaign, 8)
        # given bob has labelled clips 1-5 (in flight: one slot held each) and alice 1-3
        for _ in clips[:5]:
            lease = services.assignment_next(user=bob)
            services.annotation_submit(user=bob, assignment_id=lease.pk, label_name="sad")
        assert sorted(self._label(alice, 3)) == [c.pk for c in clips[:3]]
        # when alice asks again: the window is clips 1-3 (two slots held each, all hers); the
        # in-flight clips 4 and 5 (one slot held) lie beyond it
        lease = services.assignment_next(user=alice)
        # then a fresh clip comes next (the whole walk would have given clip 4)
        assert lease.clip_id == clips[5].pk

    def test_when_no_fresh_clip_is_left_the_whole_walk_finds_the_rest(
        self, campaign, alice, bob, monkeypatch
    ):
        monkeypatch.setattr(sql, "CANDIDATE_WINDOW", 2)
        clips = make_clips(campaign, 4)
        # given bob labelled every clip and alice the first two (both inside the window)
        for _ in clips:
            lease = services.assignment_next(user=bob)
            services.annotation_submit(user=bob, assignment_id=lease.pk, label_name="sad")
        self._label(alice, 2)
        # then alice still gets clips 3 and 4 (beyond the window, none of them fresh)
        assert sorted(self._label(alice, 2)) == [clips[2].pk, clips[3].pk]
        assert services.assignment_next(user=alice) is None
