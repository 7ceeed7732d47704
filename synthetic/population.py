"""Members and their careers: industries, regions, join dates, positions at companies, schools.

Why planted shares: a few very large companies (and schools) are what make co-worker and schoolmate
candidate generation expensive in production, so they are planted at fixed shares of all positions
whatever the run's size; the long tail follows a Zipf law. Tenures are consecutive per member and spread
over years, so members of one company overlap partly, as real co-workers do. Dates are days since
1970-01-01 (int), members are 0-based indices; the writer turns both into the landing formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthetic.graph import Groups, weighted_draw

INDUSTRIES = (
    "software", "finance", "healthcare", "education", "manufacturing", "retail", "consulting", "media",
    "government", "energy", "telecom", "logistics", "legal", "real_estate", "hospitality",
)
INDUSTRY_WEIGHTS = (18, 12, 11, 9, 8, 7, 7, 5, 5, 4, 4, 3, 3, 2, 2)
REGIONS = ("us-west", "us-east", "us-central", "eu-west", "eu-central", "uk", "india", "apac", "latam", "africa")
REGION_WEIGHTS = (14, 16, 8, 12, 10, 8, 14, 9, 6, 3)

LARGE_COMPANY_SHARES = (0.05, 0.03, 0.02)  # of all positions: "a few very large companies"
LARGE_SCHOOL_SHARES = (0.04, 0.02)
MEMBERS_PER_COMPANY = 20
MEMBERS_PER_SCHOOL = 100
OPEN_ENDED = -1  # end day of a current position or ongoing education (written as an empty field)


def planted_zipf(count: int, planted: tuple[float, ...]) -> np.ndarray:
    """Weights for `count` organisations: the first few at fixed shares, the rest Zipf over the remainder."""
    head = np.array(planted[: max(count - 1, 0)])
    tail = 1.0 / np.arange(1, count - len(head) + 1) ** 0.9
    tail *= (1.0 - head.sum()) / tail.sum()
    return np.concatenate((head, tail))


def categorical(rng: np.random.Generator, weights: tuple[int, ...], size: int) -> np.ndarray:
    probabilities = np.asarray(weights, float) / sum(weights)
    return rng.choice(len(weights), size=size, p=probabilities).astype(np.int16)


@dataclass
class Careers:
    """Position (or education) records as parallel arrays; OPEN_ENDED marks a current one."""

    member: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    org: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    start: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    end: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def extend(self, member, org, start, end) -> None:
        self.member = np.concatenate((self.member, member))
        self.org = np.concatenate((self.org, org))
        self.start = np.concatenate((self.start, start))
        self.end = np.concatenate((self.end, end))

    def groups(self) -> Groups:
        return Groups.of(self.member, self.org)


@dataclass(frozen=True)
class Records:
    """Rows for one landing file: positions or educations emitted on one day."""

    member: np.ndarray
    org: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @staticmethod
    def empty() -> Records:
        none = np.empty(0, np.int64)
        return Records(none, none, none, none)

    def __add__(self, other: Records) -> Records:
        return Records(*(np.concatenate((a, b)) for a, b in
                         zip((self.member, self.org, self.start, self.end),
                             (other.member, other.org, other.start, other.end), strict=True)))

    def __len__(self) -> int:
        return len(self.member)


def _within_group_offsets(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum of `values` within consecutive groups of the given sizes."""
    totals = np.cumsum(values)
    group_first = np.repeat(np.cumsum(counts) - counts, counts)
    before_group = np.where(group_first > 0, totals[np.maximum(group_first - 1, 0)], 0)
    return totals - values - before_group


def careers_for(rng: np.random.Generator, members: np.ndarray, today: int,
                company_cumulative: np.ndarray, school_cumulative: np.ndarray) -> tuple[Records, Records]:
    """Past and current positions (1-4 per member, consecutive) and 1-2 educations ending before the career."""
    n = len(members)
    counts = 1 + rng.binomial(3, 0.4, n)
    rows = np.repeat(members, counts)
    durations = (60 + rng.exponential(900.0, len(rows))).astype(np.int64)
    gaps = rng.integers(0, 120, len(rows))
    spans = np.bincount(np.repeat(np.arange(n), counts), weights=durations + gaps, minlength=n).astype(np.int64)
    career_start = today - spans - rng.integers(30, 700, n)
    starts = np.repeat(career_start, counts) + _within_group_offsets(counts, durations + gaps) + gaps
    ends = starts + durations
    is_last = np.zeros(len(rows), bool)
    is_last[np.cumsum(counts) - 1] = True
    still_there = is_last & (rng.random(len(rows)) < 0.85)
    ends = np.where(still_there, OPEN_ENDED, np.minimum(ends, today - 1))
    companies = weighted_draw(rng, company_cumulative, len(rows))
    positions = Records(rows, companies, starts, ends)

    # Education: one degree ending before the career, and for 30% an earlier one before that.
    degrees = 1 + (rng.random(n) < 0.3).astype(np.int64)
    first_row = np.cumsum(degrees) - degrees
    recent_end = career_start - rng.integers(0, 200, n)
    recent_start = recent_end - rng.integers(365, 800, n)
    has_earlier = degrees == 2
    earlier_end = recent_start[has_earlier] - rng.integers(0, 400, int(has_earlier.sum()))
    edu_start = np.empty(int(degrees.sum()), np.int64)
    edu_end = np.empty_like(edu_start)
    edu_start[first_row], edu_end[first_row] = recent_start, recent_end
    edu_end[first_row[has_earlier] + 1] = earlier_end
    edu_start[first_row[has_earlier] + 1] = earlier_end - rng.integers(1000, 1500, len(earlier_end))
    schools = weighted_draw(rng, school_cumulative, len(edu_start))
    educations = Records(np.repeat(members, degrees), schools, edu_start, edu_end)
    return positions, educations


def job_changes(rng: np.random.Generator, positions: Careers, eligible_members: int, count: int, today: int,
                company_cumulative: np.ndarray) -> Records:
    """Some current positions end today (same member/company/start, new end_date); most start a new one.

    Mutates `positions` so later days' co-worker candidates see the change.
    """
    current = np.flatnonzero((positions.end == OPEN_ENDED) & (positions.member < eligible_members)
                             & (positions.start < today))
    if len(current) == 0 or count == 0:
        return Records.empty()
    chosen = np.sort(rng.choice(current, size=min(count, len(current)), replace=False))
    positions.end[chosen] = today
    ended = Records(positions.member[chosen], positions.org[chosen], positions.start[chosen],
                    positions.end[chosen])
    movers = chosen[rng.random(len(chosen)) < 0.7]
    new_company = weighted_draw(rng, company_cumulative, len(movers))
    started = Records(positions.member[movers], new_company, np.full(len(movers), today),
                      np.full(len(movers), OPEN_ENDED))
    positions.extend(started.member, started.org, started.start, started.end)
    return ended + started


def new_studies(rng: np.random.Generator, eligible_members: int, count: int, today: int,
                school_cumulative: np.ndarray) -> Records:
    """Members who enrolled today in an ongoing programme (end_date empty)."""
    members = np.sort(rng.choice(eligible_members, size=min(count, eligible_members), replace=False))
    schools = weighted_draw(rng, school_cumulative, len(members))
    return Records(members, schools, np.full(len(members), today), np.full(len(members), OPEN_ENDED))
