"""The reward rules, written once: which ledger entries a clip should have, which of its live
entries must be reversed and why, and how a campaign's rate becomes an amount in hundredths.

Pure Python: plain values in (the campaign's rates and rule, the clip's state, its valid
votes, its stored result, its live entries), a plain `Decision` out. No Django, no database:
``ledger.clips_sync`` reads the values under the clips' locks, calls `decide`, and writes what
it says; tests/labeling/test_reward_rules.py checks the rules table by table without a
database. The rules themselves are the README's (section Rewards):

- ``annotation``: earned at submit (``loop.sql.reward_earn_label``), never here; it stands
  while its label is valid (a withdrawn clip included) and is reversed when it is invalidated.
- ``clip``: the extractor's once the clip has passed screening (open for labelling or
  complete); reversed when the clip is withdrawn (rejected, failed); a clip sent back to
  screening keeps it.
- ``rare_clip`` (the extractor) and ``rare_vote`` (each voter of that label who earned the
  label reward here): while the final label of the clip's stored result is rare. A clip with
  no result (re-opened by an invalidation) keeps them until it has one, less the vote bonus
  of an invalidated label; a withdrawn clip loses them.
- Amounts are the campaign's rates in force when the entry is written (`rate_to_cents`); a
  rate of 0 earns nothing. A reversal cancels the whole amount of its earning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

# The ledger's kinds (``RewardKind``'s values are these).
ANNOTATION = "annotation"
CLIP = "clip"
RARE_CLIP = "rare_clip"
RARE_VOTE = "rare_vote"

# Clip statuses (``Clip.Status`` values). A clip has passed screening while it is open for
# labelling or complete; a clip reported back to screening keeps what it earned until a
# reviewer rejects it. A withdrawn clip earns nothing.
PASSED = ("annotating", "complete")
WITHDRAWN = ("rejected", "failed")

# Final-label rules (``Campaign.rare_label_rule``).
SINGLE = "single"
TOP = "top"


# Money -------------------------------------------------------------------------------------

_CENT = Decimal("0.01")

# The same rule as `rate_to_cents`, for the one place that prices in SQL: the label reward on
# the submit's hot path (``loop.sql.reward_earn_label``), which copies the campaign's rate in
# the INSERT itself. ``{rate}`` is the rate column. Both give the same cents for every rate a
# campaign can hold, a non-negative DecimalField(max_digits=10, decimal_places=2):
# - PostgreSQL keeps the column as numeric(10, 2) (a third place is rounded on the way in), so
#   rate × 100 is an exact integer and ROUND returns it unchanged;
# - SQLite keeps it as a REAL: for c cents (c < 10**10) the double read back is within
#   c / 100 × 2**-53 of c / 100, so rate × 100 is within about 2.3e-6 of c and ROUND gives c.
# Either way the result is the rate's exact hundredths, which is what `rate_to_cents` returns
# (it rounds half up only for a value no campaign can hold). test_reward_rules checks it.
RATE_TO_CENTS_SQL = "CAST(ROUND({rate} * 100) AS BIGINT)"


def rate_to_cents(rate: Decimal | int | str) -> int:
    """A rate in hundredths of the currency unit: the rate's exact hundredths (a campaign's
    rates have two places), a further place rounded half up as SQL's ROUND does."""
    return int(Decimal(rate).quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2))


def cents_to_decimal(cents: int | None) -> Decimal:
    """An amount kept in hundredths as a Decimal with two places (None, an empty sum, is 0)."""
    return (Decimal(cents or 0) / 100).quantize(_CENT)


# What the rules read -----------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    rare: bool


@dataclass(frozen=True)
class CampaignRules:
    """A campaign's reward settings (``Campaign.reward_*``, ``rare_label_rule``, its labels)."""

    reward_clip: Decimal
    reward_rare_clip: Decimal
    reward_rare_vote: Decimal
    rare_label_rule: str = SINGLE
    labels: tuple[Label, ...] = ()
    cents: Mapping[str, int] = field(init=False, repr=False, compare=False)
    by_id: Mapping[int, Label] = field(init=False, repr=False, compare=False)
    ids: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Priced once per campaign, by the one rule.
        cents = {
            CLIP: rate_to_cents(self.reward_clip),
            RARE_CLIP: rate_to_cents(self.reward_rare_clip),
            RARE_VOTE: rate_to_cents(self.reward_rare_vote),
        }
        object.__setattr__(self, "cents", cents)
        object.__setattr__(self, "by_id", {label.id: label for label in self.labels})
        object.__setattr__(self, "ids", {label.name: label.id for label in self.labels})


class Vote(NamedTuple):
    """A valid (not invalidated) annotation of the clip."""

    annotation_id: int
    annotator_id: int
    label_id: int


@dataclass(frozen=True)
class Result:
    """The clip's stored result: its single label and its votes per label name (the votes
    matter only under the top-vote rule)."""

    single_label_id: int | None
    votes: Mapping[str, int] = field(default_factory=dict)


class Entry(NamedTuple):
    """A live earning of the clip (not a reversal, not reversed)."""

    pk: int
    campaign_id: int
    person_id: int
    kind: str
    clip_id: int
    annotation_id: int | None
    amount_cents: int


@dataclass(frozen=True)
class ClipState:
    """One clip as the rules see it."""

    clip_id: int
    status: str
    extractor_id: int | None = None
    votes: tuple[Vote, ...] = ()
    result: Result | None = None
    live: tuple[Entry, ...] = ()


# What the rules decide ---------------------------------------------------------------------


class Earn(NamedTuple):
    """An entry to write for the clip (its campaign's, in the clip's name)."""

    person_id: int
    kind: str
    annotation_id: int | None
    amount_cents: int


class Reverse(NamedTuple):
    """A live entry to reverse, and why (the reversal's ``reason``)."""

    entry: Entry
    reason: str


@dataclass(frozen=True)
class Decision:
    earn: tuple[Earn, ...] = ()
    reverse: tuple[Reverse, ...] = ()


def final_label_id(result: Result, rule: str, label_ids: Mapping[str, int]) -> int | None:
    """The clip's final label under the campaign's rule: the single label, or the most voted
    label when no other has as many votes (a tie names none)."""
    if rule == SINGLE:
        return result.single_label_id
    ranked = sorted(result.votes.items(), key=lambda item: item[1], reverse=True)
    if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    return label_ids.get(ranked[0][0])


def decide(campaign: CampaignRules, clip: ClipState) -> Decision:
    """The entries the clip should gain and the live ones it must lose (calling it again on
    the state it leaves decides nothing)."""
    wanted, kept, why_not = _standing(campaign, clip)
    live = {(e.person_id, e.kind) for e in clip.live}
    earn = tuple(
        Earn(person, kind, annotation, campaign.cents[kind])
        for (person, kind), annotation in wanted.items()
        # label rewards are earned at submit, never here; a rate of 0 earns nothing
        if kind != ANNOTATION and (person, kind) not in live and campaign.cents[kind] > 0
    )
    reverse = tuple(
        Reverse(e, _reversal_reason(e.kind, why_not))
        for e in clip.live
        if (e.person_id, e.kind) not in wanted and (e.person_id, e.kind) not in kept
    )
    return Decision(earn, reverse)


_Key = tuple[int, str]  # (person, kind) within the clip


def _standing(
    campaign: CampaignRules, clip: ClipState
) -> tuple[dict[_Key, int | None], set[_Key], str | None]:
    """What the clip's state earns (key -> annotation), what it leaves as it is, and why the
    rest is no longer earned (None: the label was invalidated)."""
    wanted: dict[_Key, int | None] = {
        (v.annotator_id, ANNOTATION): v.annotation_id for v in clip.votes
    }
    kept: set[_Key] = set()
    extractor = clip.extractor_id
    if clip.status in WITHDRAWN:
        return wanted, kept, f"clip {clip.status}"
    if extractor and clip.status in PASSED:
        wanted[(extractor, CLIP)] = None
    elif extractor:
        kept.add((extractor, CLIP))
    if clip.result is None:
        kept.update(_bonuses_kept(clip.live, (v.annotation_id for v in clip.votes)))
        return wanted, kept, None
    final_id = final_label_id(clip.result, campaign.rare_label_rule, campaign.ids)
    final = campaign.by_id.get(final_id) if final_id is not None else None
    if final is None or not final.rare:
        return wanted, kept, f"final label is now {final.name}" if final else "no final label now"
    if extractor:
        wanted[(extractor, RARE_CLIP)] = None
    earned_here = {e.annotation_id for e in clip.live if e.kind == ANNOTATION and e.annotation_id}
    for v in clip.votes:
        if v.label_id == final.id and v.annotation_id in earned_here:
            wanted[(v.annotator_id, RARE_VOTE)] = v.annotation_id
    return wanted, kept, None


def _bonuses_kept(live: Iterable[Entry], valid: Iterable[int]) -> set[_Key]:
    """A clip with no result keeps its rare-clip bonus, and the rare-vote bonus of each vote
    still valid, until it has one."""
    valid = set(valid)
    return {
        (e.person_id, e.kind)
        for e in live
        if e.kind == RARE_CLIP or (e.kind == RARE_VOTE and e.annotation_id in valid)
    }


def _reversal_reason(kind: str, why_not: str | None) -> str:
    if kind in (ANNOTATION, RARE_VOTE) and why_not is None:
        return "label invalidated"
    return why_not or "no longer earned"
