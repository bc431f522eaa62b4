"""How well a solution is shown to work: a score in (0, 1] with the reasons, from what it
states and what other cities did with it (docs/discovery.md, "Suggested solutions")."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cityexchange.services.models import Solution
from cityexchange.services.peers import MatchReason, ReasonCode
from cityexchange.services.taxonomy import SolutionStatus


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """What other cities did with a solution, as counted when it is suggested."""

    adoptions: int = 0  # cities whose latest stage is PILOTING or ADOPTED
    abandoned: int = 0  # cities whose latest stage is ABANDONED
    reported_outcomes: int = 0  # outcome reports on it and on its adoptions
    endorsements: int = 0
    answered: int = 0  # problems whose city marked it as (one of) the answer(s)


@dataclass(frozen=True, slots=True)
class EvidenceScore:
    score: float
    reasons: tuple[MatchReason, ...]


# Points of each kind of evidence, each capped so that no one counter can be run up to
# outweigh the rest; the total saturates (1 - e^(-points / SCALE)) above a floor.
STATUS_POINTS = {
    SolutionStatus.IDEA: 0.0,
    SolutionStatus.PILOT: 1.0,
    SolutionStatus.IMPLEMENTED: 2.0,
    SolutionStatus.SCALED: 3.0,
    SolutionStatus.DISCONTINUED: 0.5,  # tried, and its lessons are worth reading
}
STATUS_TEXT = {
    SolutionStatus.IDEA: "an idea, not tried yet",
    SolutionStatus.PILOT: "piloted",
    SolutionStatus.IMPLEMENTED: "implemented",
    SolutionStatus.SCALED: "scaled up",
    SolutionStatus.DISCONTINUED: "discontinued",
}
LEVEL_POINTS = 1.0  # per Nesta level above 1
STATED_OUTCOME_POINTS, STATED_OUTCOMES_CAP = 0.5, 3
REPORTED_OUTCOME_POINTS, REPORTED_OUTCOMES_CAP = 0.5, 5
ADOPTION_POINTS, ADOPTIONS_CAP = 1.0, 5
ABANDONED_POINTS, ABANDONED_CAP = -0.75, 4
ANSWERED_POINTS, ANSWERED_CAP = 0.75, 3
ENDORSEMENT_POINTS, ENDORSEMENTS_CAP = 0.5, 5
FLOOR = 0.1  # an untried idea still counts a little: it may be exactly what is needed
SCALE = 4.0


def _cities(count: int) -> str:
    return f"{count} {'city' if count == 1 else 'cities'}"


def _times(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def assess(solution: Solution, record: TrackRecord) -> EvidenceScore:
    """The evidence score of a solution, in (0, 1], and its reasons, strongest first."""
    details = solution.details
    parts: list[tuple[float, MatchReason]] = [
        (
            STATUS_POINTS[details.status],
            MatchReason(ReasonCode.STATUS, STATUS_TEXT[details.status]),
        )
    ]
    if details.evidence is not None and details.evidence.level > 1:
        level = details.evidence.level
        text = f"Nesta evidence level {level} of 5"
        parts.append((LEVEL_POINTS * (level - 1), MatchReason(ReasonCode.EVIDENCE_LEVEL, text)))
    counted = (
        (
            len(details.outcomes),
            STATED_OUTCOME_POINTS,
            STATED_OUTCOMES_CAP,
            ReasonCode.STATED_OUTCOMES,
            _times(len(details.outcomes), "stated outcome", "stated outcomes"),
        ),
        (
            record.reported_outcomes,
            REPORTED_OUTCOME_POINTS,
            REPORTED_OUTCOMES_CAP,
            ReasonCode.REPORTED_OUTCOMES,
            _times(record.reported_outcomes, "outcome report", "outcome reports") + " over time",
        ),
        (
            record.adoptions,
            ADOPTION_POINTS,
            ADOPTIONS_CAP,
            ReasonCode.ADOPTIONS,
            f"piloted or adopted by {_cities(record.adoptions)}",
        ),
        (
            record.abandoned,
            ABANDONED_POINTS,
            ABANDONED_CAP,
            ReasonCode.ABANDONED,
            f"abandoned by {_cities(record.abandoned)}",
        ),
        (
            record.answered,
            ANSWERED_POINTS,
            ANSWERED_CAP,
            ReasonCode.ANSWERED,
            f"marked as the answer to {_times(record.answered, 'problem', 'problems')}",
        ),
        (
            record.endorsements,
            ENDORSEMENT_POINTS,
            ENDORSEMENTS_CAP,
            ReasonCode.ENDORSEMENTS,
            f"endorsed by {_cities(record.endorsements)}",
        ),
    )
    for count, points, cap, code, text in counted:
        if count > 0:
            parts.append((points * min(count, cap), MatchReason(code, text)))
    total = max(0.0, sum(points for points, _ in parts))
    score = FLOOR + (1 - FLOOR) * (1 - math.exp(-total / SCALE))
    parts.sort(key=lambda part: -abs(part[0]))  # stable: ties keep the order above
    return EvidenceScore(round(score, 6), tuple(reason for _, reason in parts))
