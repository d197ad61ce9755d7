"""The rewards ledger: rare-class bonuses, label and clip rewards, reversals, holds, payouts.

Amounts are campaign settings; the expected figures below are those settings times counts,
worked by hand in each test. The ledger, the payout CSV and the per-person totals are three
sums of the same entries done by the database and must agree to the cent.
"""

from __future__ import annotations

import csv
import io
import threading
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.urls import reverse

from annotation_site.errors import Conflict, Forbidden
from labeling.loop import services
from labeling.models import Clip, ClipLabel, Payout, RewardEntry, RewardHold, RewardKind, Role
from labeling.results import aggregation
from labeling.rewards import earnings, payouts
from tests.conftest import PASSWORD, make_clips, make_user, need

K = RewardKind


def label(users, names: list[str]) -> None:
    """Each user leases their next clip and labels it (one clip at a time: `next` fills the
    clip nearest completion first)."""
    for user, name in zip(users, names, strict=True):
        lease = services.assignment_next(user=user)
        services.annotation_submit(user=user, assignment_id=lease.pk, label_name=name)


def entries(**filters) -> list[tuple[str, str, str]]:
    """(person, kind, amount) of the matching entries, oldest first."""
    return [
        (e.person.username, e.kind, str(e.amount))
        for e in RewardEntry.objects.filter(**filters).select_related("person").order_by("pk")
    ]


def ledger_sum(**filters) -> Decimal:
    return (
        Decimal(RewardEntry.objects.filter(**filters).aggregate(s=Sum("amount_cents"))["s"] or 0)
        / 100
    )


@pytest.fixture
def ed(campaign):
    """An extractor whose clips the campaign's clips are."""
    return make_user("ed", Role.EXTRACTOR)


@pytest.fixture
def clip(campaign, ed):
    """One clip open for labelling, proposed by ed."""
    made = make_clips(campaign, 1)[0]
    Clip.objects.filter(pk=made.pk).update(proposed_by=ed)
    return Clip.objects.get(pk=made.pk)


def complete(clip, annotators, votes: list[str]) -> None:
    label(annotators, votes)
    assert aggregation.clips_aggregate([clip.pk]) == 1


RARE7 = ["fear"] * 7 + ["sad"] * 3  # single label fear (7 of 10, the campaign's majority)


@pytest.mark.django_db
class LabelRewardTests:
    def test_each_accepted_label_earns_the_rate_in_force_when_it_was_given(
        self, campaign, clip, annotators
    ):
        # given the default 0.20 per label
        label(annotators[:1], ["happy"])
        # when staff raise it to 0.35 and a second label is given
        campaign.reward_annotation = Decimal("0.35")
        campaign.save()
        label(annotators[1:2], ["sad"])
        # then each entry keeps its own rate; nothing else was earned
        assert entries() == [("a01", K.ANNOTATION, "0.20"), ("a02", K.ANNOTATION, "0.35")]

    def test_a_rate_of_zero_earns_nothing(self, campaign, clip, annotators):
        campaign.reward_annotation = Decimal("0")
        campaign.save()
        label(annotators[:2], ["happy", "sad"])
        assert entries() == []

    def test_tenths_add_up_exactly_on_every_database(self, campaign, annotators):
        # 0.1 + 0.2 is 0.30000000000000004 in floats; a ledger of money must say 0.30
        make_clips(campaign, 3)
        campaign.reward_annotation = Decimal("0.10")
        campaign.save()
        label(annotators[:1], ["happy"])
        campaign.reward_annotation = Decimal("0.20")
        campaign.save()
        label(annotators[1:2], ["happy"])
        earned = earnings.earnings_of(annotators[0])
        assert ledger_sum() == Decimal("0.30")
        assert str(earnings.earnings_of(annotators[1]).total) == "0.20"
        assert isinstance(earned.total, Decimal) and str(earned.total) == "0.10"

    def test_the_database_refuses_a_second_live_earning_for_the_same_label(
        self, campaign, clip, annotators
    ):
        label(annotators[:1], ["happy"])
        first = RewardEntry.objects.get()
        with pytest.raises(IntegrityError), transaction.atomic():
            RewardEntry.objects.create(
                campaign=campaign,
                person=first.person,
                kind=K.ANNOTATION,
                clip=clip,
                amount_cents=20,
            )

    def test_the_database_refuses_a_positive_reversal_and_a_negative_earning(
        self, campaign, clip, annotators
    ):
        label(annotators[:1], ["happy"])
        first = RewardEntry.objects.get()
        for bad in (
            {"kind": K.CLIP, "amount_cents": -5},
            {"kind": K.ANNOTATION, "amount_cents": 20, "reverses": first},
        ):
            with pytest.raises(IntegrityError), transaction.atomic():
                RewardEntry.objects.create(campaign=campaign, person=first.person, clip=clip, **bad)


@pytest.mark.django_db
class ClipRewardTests:
    def test_a_clip_that_passes_screening_earns_its_extractor_and_a_rejected_one_nothing(
        self, campaign, ed, rita
    ):
        # given two clips ed proposed, waiting for screening
        passed, rejected = make_clips(campaign, 2, status=Clip.Status.SCREENING)
        Clip.objects.update(proposed_by=ed)
        # when the reviewer accepts one and rejects the other
        services.clip_screen(reviewer=rita, clip_id=passed.pk, shows_face=True, shows_emotion=True)
        services.clip_screen(
            reviewer=rita, clip_id=rejected.pk, shows_face=False, shows_emotion=True
        )
        # then only the accepted clip earns the default 1.00
        assert entries() == [("ed", K.CLIP, "1.00")]
        assert RewardEntry.objects.get().clip_id == passed.pk

    def test_a_clip_reported_and_then_rejected_has_its_reward_reversed(
        self, campaign, ed, rita, alice
    ):
        # given a clip that passed screening and earned ed 1.00
        (made,) = make_clips(campaign, 1, status=Clip.Status.SCREENING)
        Clip.objects.update(proposed_by=ed)
        services.clip_screen(reviewer=rita, clip_id=made.pk, shows_face=True, shows_emotion=True)
        # when an annotator reports it and the reviewer rejects it
        lease = services.assignment_next(user=alice)
        services.clip_report_problem(user=alice, assignment_id=lease.pk, kind="no_face")
        assert entries() == [("ed", K.CLIP, "1.00")]  # back in screening: nothing changes yet
        services.clip_screen(reviewer=rita, clip_id=made.pk, shows_face=False, shows_emotion=True)
        # then the reward is reversed, and the history keeps both lines
        assert entries() == [("ed", K.CLIP, "1.00"), ("ed", K.CLIP, "-1.00")]
        reversal = RewardEntry.objects.get(amount_cents__lt=0)
        assert reversal.reverses.kind == K.CLIP and reversal.reason == "clip rejected"
        assert ledger_sum() == 0


@pytest.mark.django_db
class RareBonusTests:
    def test_a_rare_single_label_pays_the_extractor_and_the_voters_of_that_label(
        self, campaign, clip, annotators
    ):
        campaign.reward_rare_vote = Decimal("0.50")
        campaign.save()
        # when ten annotators give fear seven votes of ten
        complete(clip, annotators, RARE7)
        # then ed gets the 5.00 bonus (beside the clip's 1.00) and each of the seven fear voters
        # 0.50 on top of their label's 0.20
        assert entries(kind=K.RARE_CLIP) == [("ed", K.RARE_CLIP, "5.00")]
        assert entries(kind=K.CLIP) == [("ed", K.CLIP, "1.00")]
        voters = entries(kind=K.RARE_VOTE)
        assert sorted(p for p, _, _ in voters) == [f"a{i:02d}" for i in range(1, 8)]
        assert {amount for _, _, amount in voters} == {"0.50"}
        # 10 × 0.20 + 1.00 + 5.00 + 7 × 0.50
        assert ledger_sum() == Decimal("11.50")

    def test_the_vote_bonus_is_off_by_default(self, campaign, clip, annotators):
        complete(clip, annotators, RARE7)
        assert entries(kind=K.RARE_VOTE) == []
        assert entries(kind=K.RARE_CLIP) == [("ed", K.RARE_CLIP, "5.00")]

    def test_a_common_label_pays_no_bonus(self, campaign, clip, annotators):
        complete(clip, annotators, ["happy"] * 7 + ["fear"] * 3)
        assert entries(kind=K.RARE_CLIP) == []

    def test_the_top_vote_rule_pays_where_the_single_label_rule_does_not(
        self, campaign, ed, annotators
    ):
        # given two clips with fear as top vote but short of the majority, one with a tie
        clear, tied = make_clips(campaign, 2)
        Clip.objects.update(proposed_by=ed)
        label(annotators, ["fear"] * 5 + ["sad"] * 3 + ["happy"] * 2)
        label(annotators, ["fear"] * 4 + ["sad"] * 4 + ["happy"] * 2)
        # under the single-label rule neither pays
        aggregation.clips_aggregate([clear.pk, tied.pk])
        assert entries(kind=K.RARE_CLIP) == []
        # when staff switch the campaign to the top vote and the clips are aggregated again
        campaign.rare_label_rule = "top"
        campaign.save()
        aggregation.clips_aggregate([clear.pk, tied.pk])
        # then the clear top vote pays and the tie does not
        assert [e.clip_id for e in RewardEntry.objects.filter(kind=K.RARE_CLIP)] == [clear.pk]

    def test_aggregating_again_pays_nothing_more(self, campaign, clip, annotators):
        complete(clip, annotators, RARE7)
        before = entries()
        for _ in range(3):
            aggregation.clips_aggregate([clip.pk])
        assert entries() == before

    def test_a_relabelled_clip_reverses_the_old_bonus_and_keeps_the_history(
        self, campaign, clip, annotators, admin_user
    ):
        # given a fear clip (7 of 10) that paid ed the rare bonus
        complete(clip, annotators, RARE7)
        # when staff invalidate two fear votes and two new annotators vote sad
        ids = list(
            clip.annotations.filter(annotator__in=annotators[:2]).values_list("pk", flat=True)
        )
        aggregation.annotations_invalidate(staff=admin_user, annotation_ids=ids, reason="spam")
        # (re-opened: the bonus stands until the clip has a new result)
        assert entries(kind=K.RARE_CLIP) == [("ed", K.RARE_CLIP, "5.00")]
        late = [make_user(f"late{i}", Role.ANNOTATOR) for i in range(2)]
        campaign.annotators.add(*late)
        complete(clip, late, ["sad", "sad"])
        # then fear has 5 of 10 (no single label): the bonus is reversed, with its reason
        assert ClipLabel.objects.get(clip=clip).single_label is None
        assert entries(kind=K.RARE_CLIP) == [
            ("ed", K.RARE_CLIP, "5.00"),
            ("ed", K.RARE_CLIP, "-5.00"),
        ]
        assert RewardEntry.objects.get(kind=K.RARE_CLIP, amount_cents__lt=0).reason == (
            "no final label now"
        )
        # and the two invalidated labels' rewards were reversed, the others stand
        reversed_labels = entries(kind=K.ANNOTATION, amount_cents__lt=0)
        assert sorted(reversed_labels) == [
            ("a01", K.ANNOTATION, "-0.20"),
            ("a02", K.ANNOTATION, "-0.20"),
        ]
        # 12 labels given, 2 taken back; the clip's 1.00 stands; the bonus earned and reversed
        assert ledger_sum() == Decimal("3.00")

    def test_a_clip_relabelled_back_to_fear_earns_the_bonus_again_once(
        self, campaign, clip, annotators, admin_user
    ):
        # fear 7 → invalidate 2 → sad, sad (no label) → invalidate the 2 sad → fear, fear
        complete(clip, annotators, RARE7)
        first = list(clip.annotations.filter(annotator__in=annotators[:2]).values("pk"))
        aggregation.annotations_invalidate(
            staff=admin_user, annotation_ids=[a["pk"] for a in first], reason="x"
        )
        late = [make_user(f"late{i}", Role.ANNOTATOR) for i in range(4)]
        campaign.annotators.add(*late)
        complete(clip, late[:2], ["sad", "sad"])
        second = list(clip.annotations.filter(annotator__in=late[:2]).values("pk"))
        aggregation.annotations_invalidate(
            staff=admin_user, annotation_ids=[a["pk"] for a in second], reason="x"
        )
        complete(clip, late[2:], ["fear", "fear"])
        assert [a for _, _, a in entries(kind=K.RARE_CLIP)] == ["5.00", "-5.00", "5.00"]
        assert (
            RewardEntry.objects.filter(
                kind=K.RARE_CLIP, reverses__isnull=True, reversed_at__isnull=True
            ).count()
            == 1
        )


@pytest.mark.django_db(transaction=True)
class ConcurrentRewardTests:
    def test_concurrent_and_repeated_aggregation_of_a_clip_pays_one_set_of_entries(
        self, campaign, annotators
    ):
        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        # given six rare clips, each complete without a result yet
        clips = make_clips(campaign, 6)
        ed = make_user("ed", Role.EXTRACTOR)
        Clip.objects.update(proposed_by=ed)
        campaign.reward_rare_vote = Decimal("0.50")
        campaign.save()
        for _ in clips:
            label(annotators, RARE7)
        ids = [c.pk for c in clips]
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def aggregate(order) -> None:
            try:
                start.wait()
                for _ in range(3):
                    aggregation.clips_aggregate(order)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        # when eight workers aggregate the same clips at once, three times each, some in
        # reverse order
        threads = [
            threading.Thread(target=aggregate, args=(ids if i % 2 else ids[::-1],))
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        # then each clip has one rare-clip bonus and seven vote bonuses, nothing reversed
        assert not errors, errors
        assert RewardEntry.objects.filter(kind=K.RARE_CLIP).count() == 6
        assert RewardEntry.objects.filter(kind=K.RARE_VOTE).count() == 6 * 7
        assert not RewardEntry.objects.filter(amount_cents__lt=0).exists()
        assert RewardEntry.objects.filter(kind=K.CLIP).count() == 6
        # 6 × (10 × 0.20 + 1.00 + 5.00 + 7 × 0.50)
        assert ledger_sum() == Decimal("69.00")

    def test_concurrent_payouts_pay_each_entry_once(self, campaign, annotators):
        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        make_clips(campaign, 3)
        for _ in range(3):
            label(annotators, ["happy"] * 10)
        staff = make_user("boss", staff=True)
        start = threading.Barrier(6)
        made: list[Payout] = []
        refused: list[Conflict] = []
        errors: list[BaseException] = []

        def pay() -> None:
            try:
                start.wait()
                made.append(payouts.payout_create(staff=staff, campaign_id=campaign.pk))
            except Conflict as exc:
                refused.append(exc)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=pay) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(made) == 1 and len(refused) == 5
        assert made[0].total == Decimal("6.00") and made[0].entries == 30
        assert not RewardEntry.objects.filter(payout__isnull=True).exists()


@pytest.mark.django_db
class PayoutTests:
    def test_a_payout_marks_the_entries_paid_and_a_second_one_pays_nothing(
        self, campaign, clip, annotators, admin_user
    ):
        complete(clip, annotators, RARE7)
        payout = payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        # 10 labels × 0.20 + the clip's 1.00 + the rare bonus 5.00, to 10 annotators and ed
        assert payout.total == Decimal("8.00") and payout.people == 11 and payout.entries == 12
        with pytest.raises(Conflict, match="Nothing to pay"):
            payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        assert Payout.objects.count() == 1
        assert str(earnings.earnings_of(clip.proposed_by).paid) == "6.00"

    def test_ledger_sum_equals_csv_sum_equals_per_person_totals(
        self, campaign, ed, annotators, admin_user
    ):
        # given a mix: rare and common clips, rates changed mid-way, invalidated labels
        clips = make_clips(campaign, 3)
        Clip.objects.update(proposed_by=ed)
        campaign.reward_rare_vote = Decimal("0.33")
        campaign.save()
        label(annotators, RARE7)
        campaign.reward_annotation = Decimal("0.17")
        campaign.save()
        label(annotators, ["happy"] * 10)
        aggregation.clips_aggregate([c.pk for c in clips])
        first = list(clips[0].annotations.filter(annotator=annotators[0]).values_list("pk"))
        aggregation.annotations_invalidate(
            staff=admin_user, annotation_ids=[pk for (pk,) in first], reason="x"
        )
        # when a payout is made
        people = {p.username: p.pending for p in earnings.totals_by_person(campaign.pk)}
        payout = payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        rows = list(csv.DictReader(io.StringIO(payouts.payout_csv(payout))))
        # then the three sums agree to the cent
        csv_sum = sum(Decimal(r["amount"]) for r in rows)
        assert csv_sum == payout.total == ledger_sum(payout=payout) == ledger_sum()
        assert {r["username"]: Decimal(r["amount"]) for r in rows} == people
        assert sum(people.values()) == csv_sum
        # worked by hand: 10 × 0.20 + 10 × 0.17 − 0.20 (a01's fear label) + 5.00 + 6 × 0.33
        # (a01's fear vote bonus went with its label) + 2 × 1.00 (the two aggregated clips;
        # the third was never labelled) = 12.48
        assert csv_sum == Decimal("12.48")

    def test_a_held_person_is_left_out_until_released(self, campaign, clip, annotators, admin_user):
        label(annotators[:3], ["happy"] * 3)
        payouts.reward_hold(
            staff=admin_user, campaign_id=campaign.pk, username="a02", reason="flagged"
        )
        with pytest.raises(Conflict):
            payouts.reward_hold(
                staff=admin_user, campaign_id=campaign.pk, username="a02", reason="again"
            )
        held = earnings.earnings_of(annotators[1])
        assert (str(held.held), str(held.pending)) == ("0.20", "0.00")
        first = payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        assert first.people == 2 and first.total == Decimal("0.40")
        # released: the next payout pays the held entry
        payouts.reward_hold_release(staff=admin_user, campaign_id=campaign.pk, username="a02")
        second = payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        assert [r["username"] for r in payouts.payout_rows(second)] == ["a02"]
        assert second.total == Decimal("0.20")
        assert RewardHold.objects.get().released_by == admin_user

    def test_a_person_whose_reversals_outweigh_their_earnings_waits(
        self, campaign, clip, annotators, admin_user
    ):
        # given a01 paid for a label that is then invalidated (a reversal of −0.20, unpaid)
        label(annotators[:2], ["happy", "sad"])
        payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        mine = clip.annotations.filter(annotator=annotators[0]).values_list("pk", flat=True)
        aggregation.annotations_invalidate(staff=admin_user, annotation_ids=list(mine), reason="x")
        label(annotators[2:3], ["happy"])
        # when the next payout is made: a03 is paid (and ed, for the clip, synced as it was
        # re-opened), a01's −0.20 waits
        payout = payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        assert [r["username"] for r in payouts.payout_rows(payout)] == ["a03", "ed"]
        assert str(earnings.earnings_of(annotators[0]).pending) == "-0.20"

    def test_only_staff_pay_out_or_hold(self, campaign, clip, annotators):
        label(annotators[:1], ["happy"])
        with pytest.raises(Forbidden):
            payouts.payout_create(staff=annotators[0], campaign_id=campaign.pk)
        with pytest.raises(Forbidden):
            payouts.reward_hold(
                staff=annotators[0], campaign_id=campaign.pk, username="a01", reason="x"
            )

    def test_a_username_that_looks_like_a_formula_is_quoted_in_the_csv(
        self, campaign, clip, admin_user
    ):
        sneaky = make_user("+cmd", Role.ANNOTATOR)
        campaign.annotators.add(sneaky)
        label([sneaky], ["happy"])
        payout = payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        assert payouts.payout_rows(payout)[0]["username"] == "'+cmd"


@pytest.mark.django_db
class PayoutCommandTests:
    def test_it_pays_writes_the_csv_and_pays_nothing_the_second_time(
        self, campaign, clip, annotators, tmp_path
    ):
        label(annotators[:3], ["happy"] * 3)
        out = io.StringIO()
        call_command("payout", "campaign", "--csv", str(tmp_path / "p1.csv"), stdout=out)
        payout = Payout.objects.get()
        assert out.getvalue().splitlines()[-1] == f"payout {payout.pk} 0.60 CNY"
        rows = list(csv.DictReader((tmp_path / "p1.csv").open()))
        assert [(r["username"], r["amount"]) for r in rows] == [
            ("a01", "0.20"),
            ("a02", "0.20"),
            ("a03", "0.20"),
        ]
        with pytest.raises(CommandError, match="Nothing to pay"):
            call_command("payout", "campaign", "--csv", str(tmp_path / "p2.csv"))
        assert not (tmp_path / "p2.csv").exists()

    def test_it_refuses_an_existing_file_and_pays_nothing(
        self, campaign, clip, annotators, tmp_path
    ):
        label(annotators[:1], ["happy"])
        (tmp_path / "taken.csv").write_text("finance's file")
        with pytest.raises(CommandError, match="exists"):
            call_command("payout", "campaign", "--csv", str(tmp_path / "taken.csv"))
        assert not Payout.objects.exists()
        assert (tmp_path / "taken.csv").read_text() == "finance's file"


@pytest.mark.django_db
class MeApiTests:
    def test_it_shows_only_your_own_earnings_as_decimal_strings(
        self, client, campaign, clip, annotators, admin_user
    ):
        label(annotators[:2], ["happy", "sad"])
        payouts.payout_create(staff=admin_user, campaign_id=campaign.pk)
        label(annotators[2:3], ["happy"])
        client.login(username="a01", password=PASSWORD)
        body = client.get(reverse("api:me")).json()
        assert body == {
            "username": "a01",
            "annotations": 1,
            "earnings": {
                "currency": "CNY",
                "today": "0.20",
                "total": "0.20",
                "pending": "0.00",
                "paid": "0.20",
                "held": "0.00",
            },
        }
        client.login(username="a03", password=PASSWORD)
        assert client.get(reverse("api:me")).json()["earnings"]["pending"] == "0.20"

    def test_anonymous_callers_get_401(self, client, db):
        assert client.get(reverse("api:me")).status_code == 401


@pytest.mark.django_db
class RewardsPageTests:
    def test_staff_see_totals_pay_out_and_download_the_csv(
        self, client, campaign, clip, annotators, admin_user
    ):
        complete(clip, annotators, RARE7)
        client.force_login(admin_user)
        page = client.get(reverse("campaign-rewards", args=[campaign.pk])).content.decode()
        assert "Create payout (8.00 CNY)" in page
        assert "<td>ed</td><td>1</td><td>1</td><td>1</td><td>5.00</td><td>0.00</td>" in page
        # when staff create the payout (and click again)
        url = reverse("campaign-payout-create", args=[campaign.pk])
        assert client.post(url).status_code == 302
        again = client.post(url, follow=True).content.decode()
        assert "Nothing to pay" in again
        payout = Payout.objects.get()
        download = client.get(reverse("payout-download", args=[payout.pk]))
        assert download["Content-Disposition"] == f'attachment; filename="payout-{payout.pk}.csv"'
        rows = list(csv.DictReader(io.StringIO(download.content.decode())))
        assert sum(Decimal(r["amount"]) for r in rows) == Decimal("8.00")

    def test_staff_hold_and_release_from_the_page(
        self, client, campaign, clip, annotators, admin_user
    ):
        label(annotators[:1], ["happy"])
        client.force_login(admin_user)
        url = reverse("campaign-reward-hold", args=[campaign.pk])
        client.post(url, {"person": "a01", "action": "hold", "reason": "flagged by the report"})
        assert RewardHold.objects.get(released_at__isnull=True).reason == "flagged by the report"
        refused = client.post(url, {"person": "a01", "action": "hold", "reason": ""}, follow=True)
        assert "Say why" in refused.content.decode()
        client.post(url, {"person": "a01", "action": "release"})
        assert not RewardHold.objects.filter(released_at__isnull=True).exists()

    def test_the_admin_cannot_add_change_or_delete_ledger_rows(
        self, client, campaign, clip, annotators, admin_user
    ):
        label(annotators[:1], ["happy"])
        entry = RewardEntry.objects.get()
        client.force_login(admin_user)
        assert client.get(reverse("admin:labeling_rewardentry_add")).status_code == 403
        change = reverse("admin:labeling_rewardentry_change", args=[entry.pk])
        assert client.post(change, {"amount_cents": 999}).status_code == 403
        delete = reverse("admin:labeling_rewardentry_delete", args=[entry.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403
        assert RewardEntry.objects.get().amount_cents == 20


@pytest.mark.django_db
class RewardsTranslationTests:
    def test_the_annotator_and_staff_see_the_rewards_in_chinese(
        self, client, campaign, clip, annotators, admin_user
    ):
        label(annotators[:1], ["happy"])
        client.force_login(annotators[0])
        client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/label/"})
        page = client.get(reverse("annotate")).content.decode()
        assert "今日收入 0.20 · 待付 0.20 · 暂扣 0.00 · 已付 0.00 · 合计 0.20 CNY" in page
        client.force_login(admin_user)
        client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
        page = client.get(reverse("campaign-rewards", args=[campaign.pk])).content.decode()
        assert "生成支付（0.20 CNY）" in page and "各提取者的稀有类别产出" in page


@pytest.mark.django_db
class RewardSettingsTests:
    def _form(self, campaign, **changes) -> dict:
        data = {
            "name": campaign.name,
            "slug": campaign.slug,
            "annotations_per_clip": 10,
            "single_label_min_votes": 7,
            "lease_minutes": 10,
            "clips_per_movie": 20,
            "clip_min_seconds": 0.5,
            "clip_max_seconds": 15,
            "clip_max_height": 720,
            "min_face_ratio": 0.5,
            "face_crop_size": 112,
            "face_lost_share": 0.2,
            "face_min_px": 48,
            "min_view_seconds": 0,
            "reward_annotation": "0.20",
            "reward_clip": "1.00",
            "reward_rare_clip": "5.00",
            "reward_rare_vote": "0.00",
            "rare_label_rule": "single",
            "aggregation_method": "majority",
            "adaptive_min_votes": 5,
            "is_active": "on",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "labels-TOTAL_FORMS": 0,
            "labels-INITIAL_FORMS": 0,
        }
        return {**data, **changes}

    def test_staff_change_the_amounts_in_the_admin_and_a_negative_one_is_refused(
        self, client, campaign, admin_user
    ):
        client.force_login(admin_user)
        url = reverse("admin:labeling_campaign_change", args=[campaign.pk])
        refused = client.post(url, self._form(campaign, reward_rare_clip="-1.00"))
        assert "Reward amounts cannot be negative." in refused.content.decode()
        campaign.refresh_from_db()
        assert campaign.reward_rare_clip == Decimal("5.00")
        saved = client.post(url, self._form(campaign, reward_rare_clip="7.50"))
        assert saved.status_code == 302, saved.content.decode()[:2000]
        campaign.refresh_from_db()
        assert campaign.reward_rare_clip == Decimal("7.50")


@pytest.mark.django_db
class ExtractionRewardTests:
    def test_a_clip_that_opens_without_screening_earns_its_extractor_once(self, campaign, tmp_path):
        import numpy as np

        from labeling.media import extraction, movies
        from pipeline.media import write_video
        from pipeline.synthetic_movies import drawn_face_movie

        # given a campaign that skips screening, and a drawn face an extractor marked
        campaign.screen_clips = False
        campaign.save()
        eve = make_user("eve", Role.EXTRACTOR)
        campaign.annotators.add(eve, through_defaults={"role": Role.EXTRACTOR})
        frames = drawn_face_movie(["fear"], 1.0, 12, 96, np.random.default_rng(5))
        path = write_video(frames, tmp_path / "face.mp4", fps=12)
        movie = movies.movie_probe(
            movies.movie_register_path(campaign=campaign, path=path, user=eve).pk
        )
        segments = [movies.Segment(0.0, 1.0)]
        (clip,) = movies.clip_propose(user=eve, movie_id=movie.pk, segments=segments).clips
        # when the worker extracts it (and a second delivery runs it again)
        extraction.clip_extract(clip.pk)
        extraction.clip_extract(clip.pk)
        # then it opened for labelling and paid eve the clip reward once
        assert Clip.objects.get(pk=clip.pk).status == Clip.Status.ANNOTATING
        assert entries() == [("eve", K.CLIP, "1.00")]
