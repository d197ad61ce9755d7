"""The reward rules (`labeling.rewards.rules`), table by table, without a database.

Each row is a campaign's settings, one clip's state (status, extractor, valid votes, stored
result) and its live ledger entries, and the entries the rules say to write and to reverse.
The expected amounts are the campaign settings' defaults (``Campaign.reward_*``, and the
README's Rewards table): 0.20 per label (earned at submit, never by these rules), 1.00 per
clip that passes screening, 5.00 rare-clip bonus to the extractor, rare-vote bonus 0.00 (off;
0.50 where a row turns it on). Disgust and fear are the rare labels (DFEW's). The rare bonus
follows the final label: the single label (7 of 10 votes, ``single_label_min_votes``) or,
under the ``top`` rule, the most voted label when no other has as many votes.
"""

from __future__ import annotations

import dataclasses
import math
import random
from decimal import Decimal

import pytest

from labeling.rewards import rules
from labeling.rewards.rules import (
    ANNOTATION,
    CLIP,
    RARE_CLIP,
    RARE_VOTE,
    CampaignRules,
    ClipState,
    Decision,
    Earn,
    Entry,
    Label,
    Result,
    Reverse,
    Vote,
)

CAMPAIGN, CLIP_ID, ED = 1, 10, 100  # the campaign, the clip, its extractor
NAMES = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
LABELS = tuple(
    Label(id=i, name=name, rare=name in ("disgust", "fear")) for i, name in enumerate(NAMES, 1)
)
ID = {label.name: label.id for label in LABELS}

# The campaign settings' defaults (labeling/models/campaigns.py, README "Rewards"), in cents.
LABEL_CENTS, CLIP_CENTS, RARE_CLIP_CENTS, RARE_VOTE_CENTS = 20, 100, 500, 50


def campaign(rule: str = "single", rare_vote: str = "0.00", clip: str = "1.00") -> CampaignRules:
    return CampaignRules(
        reward_clip=Decimal(clip),
        reward_rare_clip=Decimal("5.00"),
        reward_rare_vote=Decimal(rare_vote),
        rare_label_rule=rule,
        labels=LABELS,
    )


def votes(*names: str, first: int = 1) -> tuple[Vote, ...]:
    """Annotator n (from ``first``) voted the n-th name; annotation ids are 1000 + n."""
    return tuple(Vote(1000 + n, n, ID[name]) for n, name in enumerate(names, first))


RARE7 = votes(*["fear"] * 7, *["sad"] * 3)  # fear is the single label: 7 of 10


def fear_result(**counts: int) -> Result:
    single = ID["fear"] if counts.get("fear", 0) >= 7 else None
    return Result(single, counts)


_pk = iter(range(5000, 10**6))


def entry(person: int, kind: str, cents: int, annotation: int | None = None) -> Entry:
    return Entry(next(_pk), CAMPAIGN, person, kind, CLIP_ID, annotation, cents)


def label_rewards(clip_votes) -> tuple[Entry, ...]:
    """The label reward each vote earned at submit (0.20)."""
    return tuple(
        entry(v.annotator_id, ANNOTATION, LABEL_CENTS, v.annotation_id) for v in clip_votes
    )


def vote_bonuses(clip_votes, label: str) -> tuple[Entry, ...]:
    return tuple(
        entry(v.annotator_id, RARE_VOTE, RARE_VOTE_CENTS, v.annotation_id)
        for v in clip_votes
        if v.label_id == ID[label]
    )


PAID_CLIP = entry(ED, CLIP, CLIP_CENTS)
PAID_RARE = entry(ED, RARE_CLIP, RARE_CLIP_CENTS)
FEAR_LABELS = label_rewards(RARE7)
FEAR_BONUSES = vote_bonuses(RARE7, "fear")  # 7 × 0.50, earned with the bonus on
# annotators 1 and 2's labels, invalidated (no longer among the votes), and their rewards
INVALIDATED_LABELS = label_rewards(votes("fear", "fear"))
REOPENED = RARE7[2:]  # the clip after annotators 1 and 2's fear votes were invalidated


def row(id, *, rates=None, clip, earn=(), reverse=()):
    return pytest.param(rates or campaign(), clip, list(earn), list(reverse), id=id)


ROWS = [
    # -- the extractor's clip reward (1.00) follows screening ------------------------------
    row("proposed: nothing yet", clip=ClipState(CLIP_ID, "proposed", ED)),
    row("in screening: nothing yet", clip=ClipState(CLIP_ID, "screening", ED)),
    row(
        "passes screening: 1.00 to the extractor",
        clip=ClipState(CLIP_ID, "annotating", ED),
        earn=[(ED, CLIP, None, CLIP_CENTS)],
    ),
    row(
        "opens without screening, complete: 1.00",
        clip=ClipState(CLIP_ID, "complete", ED),
        earn=[(ED, CLIP, None, CLIP_CENTS)],
    ),
    row(
        "already earned: nothing twice",
        clip=ClipState(CLIP_ID, "annotating", ED, live=(PAID_CLIP,)),
    ),
    row(
        "reported back to screening: keeps it",
        clip=ClipState(CLIP_ID, "screening", ED, live=(PAID_CLIP,)),
    ),
    row(
        "rejected after it passed: reversed",
        clip=ClipState(CLIP_ID, "rejected", ED, live=(PAID_CLIP,)),
        reverse=[(PAID_CLIP, "clip rejected")],
    ),
    row(
        "media failed after it passed: reversed",
        clip=ClipState(CLIP_ID, "failed", ED, live=(PAID_CLIP,)),
        reverse=[(PAID_CLIP, "clip failed")],
    ),
    row("rejected, never earned: nothing", clip=ClipState(CLIP_ID, "rejected", ED)),
    row("no extractor (imported): nothing", clip=ClipState(CLIP_ID, "annotating", None)),
    row(
        "a clip rate of 0 earns nothing",
        rates=campaign(clip="0"),
        clip=ClipState(CLIP_ID, "annotating", ED),
    ),
    row(
        "the extractor gone from the clip: no longer earned",
        clip=ClipState(CLIP_ID, "annotating", None, live=(PAID_CLIP,)),
        reverse=[(PAID_CLIP, "no longer earned")],
    ),
    # -- label rewards (0.20) are earned at submit; the rules only take them back ----------
    row(
        "votes without a label reward (imported): none written here",
        clip=ClipState(CLIP_ID, "annotating", ED, votes=votes("happy", "sad"), live=(PAID_CLIP,)),
    ),
    row(
        "valid labels keep their reward",
        clip=ClipState(
            CLIP_ID, "annotating", ED, votes=RARE7[:3], live=(PAID_CLIP, *FEAR_LABELS[:3])
        ),
    ),
    row(
        "an invalidated label's reward is reversed",
        clip=ClipState(
            CLIP_ID, "annotating", ED, votes=RARE7[1:3], live=(PAID_CLIP, *FEAR_LABELS[:3])
        ),
        reverse=[(FEAR_LABELS[0], "label invalidated")],
    ),
    row(
        "a withdrawn clip: the labels' rewards stand, the clip's is reversed",
        clip=ClipState(
            CLIP_ID, "rejected", ED, votes=RARE7[:3], live=(PAID_CLIP, *FEAR_LABELS[:3])
        ),
        reverse=[(PAID_CLIP, "clip rejected")],
    ),
    # -- rare bonuses follow the final label of the stored result --------------------------
    row(
        "fear 7 of 10: 5.00 to the extractor; the vote bonus is off by default",
        clip=ClipState(
            CLIP_ID, "complete", ED, RARE7, fear_result(fear=7, sad=3), (PAID_CLIP, *FEAR_LABELS)
        ),
        earn=[(ED, RARE_CLIP, None, RARE_CLIP_CENTS)],
    ),
    row(
        "fear 7 of 10, vote bonus 0.50: 5.00 and 0.50 to each fear voter",
        rates=campaign(rare_vote="0.50"),
        clip=ClipState(
            CLIP_ID, "complete", ED, RARE7, fear_result(fear=7, sad=3), (PAID_CLIP, *FEAR_LABELS)
        ),
        earn=[
            (ED, RARE_CLIP, None, RARE_CLIP_CENTS),
            *[(v.annotator_id, RARE_VOTE, v.annotation_id, RARE_VOTE_CENTS) for v in RARE7[:7]],
        ],
    ),
    row(
        "the vote bonus tops up a label reward earned here only",
        rates=campaign(rare_vote="0.50"),
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            RARE7,
            fear_result(fear=7, sad=3),
            (PAID_CLIP, *FEAR_LABELS[2:]),
        ),
        earn=[
            (ED, RARE_CLIP, None, RARE_CLIP_CENTS),
            *[(v.annotator_id, RARE_VOTE, v.annotation_id, RARE_VOTE_CENTS) for v in RARE7[2:7]],
        ],
    ),
    row(
        "aggregated again: nothing more",
        rates=campaign(rare_vote="0.50"),
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            RARE7,
            fear_result(fear=7, sad=3),
            (PAID_CLIP, PAID_RARE, *FEAR_LABELS, *FEAR_BONUSES),
        ),
    ),
    row(
        "no extractor: the vote bonus only",
        rates=campaign(rare_vote="0.50"),
        clip=ClipState(CLIP_ID, "complete", None, RARE7, fear_result(fear=7, sad=3), FEAR_LABELS),
        earn=[(v.annotator_id, RARE_VOTE, v.annotation_id, RARE_VOTE_CENTS) for v in RARE7[:7]],
    ),
    row(
        "a common single label (happy 7): no bonus",
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            votes(*["happy"] * 7, *["fear"] * 3),
            Result(ID["happy"], {"happy": 7, "fear": 3}),
            (PAID_CLIP,),
        ),
    ),
    row(
        "relabelled happy: the bonus is reversed, saying so",
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            votes(*["happy"] * 7, *["fear"] * 3),
            Result(ID["happy"], {"happy": 7, "fear": 3}),
            (PAID_CLIP, PAID_RARE),
        ),
        reverse=[(PAID_RARE, "final label is now happy")],
    ),
    row(
        "fear 5 of 10 (no single label): bonuses reversed, labels kept",
        rates=campaign(rare_vote="0.50"),
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            REOPENED + votes("sad", "sad", first=11),
            Result(None, {"fear": 5, "sad": 5}),
            (PAID_CLIP, PAID_RARE, *FEAR_LABELS[2:], *FEAR_BONUSES[2:]),
        ),
        reverse=[(PAID_RARE, "no final label now")]
        + [(bonus, "no final label now") for bonus in FEAR_BONUSES[2:]],
    ),
    row(
        # the reason a clip with a result gives for every reversal (what clips_sync has
        # always written), an invalidated label's included
        "an invalidated label on a clip now labelled happy: the reason names the label",
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            votes(*["happy"] * 7, first=3),
            Result(ID["happy"], {"happy": 7}),
            (PAID_CLIP, *INVALIDATED_LABELS),
        ),
        reverse=[(e, "final label is now happy") for e in INVALIDATED_LABELS],
    ),
    row(
        "a withdrawn rare clip loses its bonuses",
        rates=campaign(rare_vote="0.50"),
        clip=ClipState(
            CLIP_ID,
            "rejected",
            ED,
            RARE7,
            fear_result(fear=7, sad=3),
            (PAID_CLIP, PAID_RARE, *FEAR_LABELS, *FEAR_BONUSES),
        ),
        reverse=[(PAID_CLIP, "clip rejected"), (PAID_RARE, "clip rejected")]
        + [(bonus, "clip rejected") for bonus in FEAR_BONUSES],
    ),
    # -- a clip re-opened by an invalidation (no result) keeps its bonuses until it has one --
    row(
        "re-opened: the rare bonus stands; the invalidated votes' rewards go",
        rates=campaign(rare_vote="0.50"),
        clip=ClipState(
            CLIP_ID,
            "annotating",
            ED,
            REOPENED,
            None,
            (PAID_CLIP, PAID_RARE, *FEAR_LABELS, *FEAR_BONUSES),
        ),
        reverse=[(e, "label invalidated") for e in FEAR_LABELS[:2] + FEAR_BONUSES[:2]],
    ),
    row(
        "re-opened, nothing invalidated since: nothing changes",
        clip=ClipState(CLIP_ID, "annotating", ED, REOPENED, None, (PAID_CLIP, PAID_RARE)),
    ),
    # -- the top-vote rule: the most voted label when no other has as many -----------------
    row(
        "top vote fear 5 of 10: pays where the single-label rule does not",
        rates=campaign("top"),
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            votes(*["fear"] * 5, *["sad"] * 3, *["happy"] * 2),
            Result(None, {"fear": 5, "sad": 3, "happy": 2}),
            (PAID_CLIP,),
        ),
        earn=[(ED, RARE_CLIP, None, RARE_CLIP_CENTS)],
    ),
    row(
        "single-label rule on the same votes: nothing",
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            votes(*["fear"] * 5, *["sad"] * 3, *["happy"] * 2),
            Result(None, {"fear": 5, "sad": 3, "happy": 2}),
            (PAID_CLIP,),
        ),
    ),
    row(
        "top vote tied fear 4, sad 4: names none",
        rates=campaign("top"),
        clip=ClipState(
            CLIP_ID,
            "complete",
            ED,
            votes(*["fear"] * 4, *["sad"] * 4, *["happy"] * 2),
            Result(None, {"fear": 4, "sad": 4, "happy": 2}),
            (PAID_CLIP, PAID_RARE),
        ),
        reverse=[(PAID_RARE, "no final label now")],
    ),
    row(
        "top vote with no votes counted: names none",
        rates=campaign("top"),
        clip=ClipState(CLIP_ID, "complete", ED, (), Result(None, {"fear": 0}), (PAID_CLIP,)),
    ),
]


@pytest.mark.parametrize(("campaign_rules", "clip", "earn", "reverse"), ROWS)
def test_the_rules_decide(campaign_rules, clip, earn, reverse):
    decision = rules.decide(campaign_rules, clip)
    assert list(decision.earn) == [Earn(*e) for e in earn]
    assert list(decision.reverse) == [Reverse(*r) for r in reverse]


@pytest.mark.parametrize(("campaign_rules", "clip", "earn", "reverse"), ROWS)
def test_deciding_again_on_what_was_written_decides_nothing(campaign_rules, clip, earn, reverse):
    """The sync runs on every screening, aggregation and invalidation: once the ledger holds
    what the rules said, they say nothing more (nothing is paid or taken back twice)."""
    written = rules.decide(campaign_rules, clip)
    gone = {r.entry.pk for r in written.reverse}
    kept = tuple(e for e in clip.live if e.pk not in gone)
    new = tuple(Entry(next(_pk), CAMPAIGN, e[0], e[1], clip.clip_id, *e[2:]) for e in written.earn)
    again = rules.decide(campaign_rules, dataclasses.replace(clip, live=kept + new))
    assert again == Decision()


def test_a_reversal_takes_back_the_amount_earned_not_todays_rate():
    # an entry keeps the amount in force when it was earned (README: changing a rate
    # re-prices nothing): a 1.00 clip reward is reversed whole after the rate became 2.50
    earned = entry(ED, CLIP, 100)
    decision = rules.decide(
        campaign(clip="2.50"), ClipState(CLIP_ID, "rejected", ED, live=(earned,))
    )
    assert decision.reverse == (Reverse(earned, "clip rejected"),)
    assert decision.reverse[0].entry.amount_cents == 100


# -- money: one rate-to-cents rule --------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "cents"),
    [
        ("0", 0),
        ("0.00", 0),
        ("0.01", 1),
        ("0.1", 10),
        ("0.20", 20),  # the label default
        ("0.35", 35),
        ("0.57", 57),  # 0.57 × 100 is 56.99999999999999 in floats
        ("1.00", 100),  # the clip default
        ("1.15", 115),  # 1.15 × 100 is 114.99999999999999 in floats
        ("5.00", 500),  # the rare-clip default
        ("5", 500),
        ("99999999.99", 9_999_999_999),  # the largest rate (max_digits=10, decimal_places=2)
        # no campaign holds a third place (decimal_places=2): rounded half up, as SQL's ROUND
        ("0.125", 13),
        ("0.124", 12),
        ("0.005", 1),
    ],
)
def test_a_rate_in_hundredths(rate, cents):
    assert rules.rate_to_cents(Decimal(rate)) == cents
    assert rules.rate_to_cents(rate) == cents


def _sql_round(x: float) -> int:
    """SQLite's ROUND(x) of a non-negative double: (sqlite_int64)(x + 0.5)."""
    return math.floor(x + 0.5)


def test_the_hot_paths_sql_prices_every_rate_as_the_rule_does():
    """``reward_earn_label`` prices the label in SQL (``RATE_TO_CENTS_SQL``); on SQLite the
    rate is a double, and its hundredths rounded must be the rule's for every rate a campaign
    holds: every cent up to 2,000.00, the top of the range, and a random sample between."""
    assert rules.RATE_TO_CENTS_SQL.format(rate="r") == "CAST(ROUND(r * 100) AS BIGINT)"
    draw = random.Random(18)
    everything = [
        *range(200_001),
        *range(10**10 - 20_000, 10**10),
        *(draw.randrange(10**10) for _ in range(50_000)),
    ]
    for cents in everything:
        rate = Decimal(cents).scaleb(-2)
        assert _sql_round(float(str(rate)) * 100) == rules.rate_to_cents(rate) == cents, rate
        # PostgreSQL's numeric(10, 2): rate × 100 is exact
        assert (rate * 100).to_integral_value() == rate * 100


def test_amounts_read_back_as_decimals_with_two_places():
    assert str(rules.cents_to_decimal(30)) == "0.30"
    assert str(rules.cents_to_decimal(-500)) == "-5.00"
    assert str(rules.cents_to_decimal(None)) == "0.00"


# -- the rules' plain values are the models' ----------------------------------------------


def test_the_rules_speak_the_models_values():
    from labeling.models import Campaign, Clip, RewardKind

    assert {ANNOTATION, CLIP, RARE_CLIP, RARE_VOTE} == set(RewardKind.values)
    assert set(rules.PASSED) == {Clip.Status.ANNOTATING, Clip.Status.COMPLETE}
    assert set(rules.WITHDRAWN) == {Clip.Status.REJECTED, Clip.Status.FAILED}
    rule = Campaign._meta.get_field("rare_label_rule")
    assert {value for value, _ in rule.choices} == {rules.SINGLE, rules.TOP}
    # the domain test_the_hot_paths_sql_prices_every_rate_as_the_rule_does covers
    for name in ("reward_annotation", "reward_clip", "reward_rare_clip", "reward_rare_vote"):
        field = Campaign._meta.get_field(name)
        assert (field.max_digits, field.decimal_places) == (10, 2), name
