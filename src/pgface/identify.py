"""Identify: who each face of a photo most likely is, with a confidence; search results
grouped by person. Thresholds and the figures that chose them are in docs/people.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from pgface import verdicts
from pgface.search import Match

# Confidence of identify: logistic in similarity, 0.5 at the match threshold; slope fitted by
# maximum likelihood on LFW View 1 DevTrain pairs (free fit: centre 0.23, slope 36).
CONFIDENCE_SLOPE = 36.0
IDENTIFY_CANDIDATES = 50  # nearest assigned faces looked at per query face


@dataclass
class Candidate:
    person_id: int
    name: str | None
    similarity: float  # to the person's nearest stored face
    confidence: float


@dataclass
class IdentifiedFace:
    """One face of a photo: the person it most likely is, or nobody (person_id None)."""

    bbox: list[float]
    det_score: float
    person_id: int | None
    name: str | None
    similarity: float | None
    confidence: float | None
    candidates: list[Candidate] = field(default_factory=list)
    # "same" where the best similarity clears the same-person similarity of the named faces'
    # library (pgface.verdicts), "possible" below it, None with nobody
    verdict: verdicts.Verdict | None = None


@dataclass
class Identification:
    source: str
    model: str
    threshold: float
    faces: list[IdentifiedFace]
    # Faces that belong to a person (identify's library) and the same-person similarity there.
    library_size: int = 0
    same_person_similarity: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PersonMatches:
    """The matches of one query face that belong to one person (person_id None: to nobody)."""

    person_id: int | None
    name: str | None
    best_similarity: float
    matches: list[Match]


def confidence(similarity: float, threshold: float) -> float:
    """Probability-like score: 0.5 at the match threshold, steep where pairs are ambiguous."""
    return round(1.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * (similarity - threshold))), 4)



def group_by_person(matches: Sequence[Match]) -> list[PersonMatches]:
    """Matches grouped by person, groups in order of their best match; unassigned ones last."""
    groups: dict[int | None, PersonMatches] = {}
    for m in matches:
        group = groups.get(m.person_id)
        if group is None:
            group = groups[m.person_id] = PersonMatches(m.person_id, m.person_name,
                                                        m.similarity, [])
        group.matches.append(m)
        group.best_similarity = max(group.best_similarity, m.similarity)
    return sorted(groups.values(),
                  key=lambda g: (g.person_id is None, -g.best_similarity))
