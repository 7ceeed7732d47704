"""The simulated network, advanced one day at a time: who joined, who connected, who moved jobs, what
members did with their PYMK pages.

Why a stateful world: later days must follow from earlier ones. Accepts land 1-5 days after their invite
(most the next day), an accepted invite becomes a connection on the accept's day, late events arrive in a
later day's file, a pair shown or dismissed before is remembered (fatigue), and each day's pages are served
from the graph as it stood at the start of that day. Organic new connections (from day 1) prefer the pairs
the outcome model likes: common connections, co-worker tenure, same region. Day 0 carries the initial
population. Every random draw comes from a named stream (`seeds.stream`), per day.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthetic import events as ev
from synthetic import experiments, graph, outcomes, population
from synthetic.history import PairHistory
from synthetic.seeds import stochastic_round, stream
from synthetic.signals import PairContext, Stints

DAY = 86_400
ORGANIC_PROPOSALS = 6  # candidate pairs drawn per organic new connection, before the affinity-weighted pick
ORGANIC_AFFINITY_SCALE = 2.0  # a proposal's weight is exp(2 A): members befriend whom they would invite, only more so


@dataclass(frozen=True)
class Options:
    bad_share: float = 0.01
    crlf_share: float = 0.3
    events_per_member: float = 8.0
    rows_per_file: int = 1_000_000
    mean_degree: float = 16.0  # of the initial graph
    new_member_rate: float = 0.002  # per member per day
    new_edge_rate: float = 0.05  # organic new connections per member per day (accepts come on top)
    job_change_rate: float = 0.001
    study_rate: float = 0.0005
    late_share: float = 0.02  # impressions, clicks and dismisses that arrive 1-2 days late
    duplicate_event_share: float = 0.005  # exact repeats (same event_id)
    reversed_edge_share: float = 0.01  # an edge sent again in the other direction


@dataclass(frozen=True)
class Day:
    """Everything that lands in day D's files (members are indices)."""

    new_members: np.ndarray
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]  # src, dst, connected_at
    positions: population.Records
    educations: population.Records
    events: ev.Events
    assigned: tuple[np.ndarray, np.ndarray]  # member, assigned_at
    counts: dict[str, int]


@dataclass
class World:
    seed: int
    start_day: int  # days since the epoch of the first generated day
    initial_members: int
    options: Options = field(default_factory=Options)

    def __post_init__(self) -> None:
        self.n = 0
        self.industry = np.empty(0, np.int16)
        self.region = np.empty(0, np.int16)
        self.joined_day = np.empty(0, np.int64)
        self.weights = np.empty(0)
        self.positions = population.Careers()
        self.src = np.empty(0, np.int64)
        self.dst = np.empty(0, np.int64)
        self.pending_accepts = ev.Events.empty()
        self.pending_late: list[tuple[int, ev.Events]] = []
        self.history = PairHistory()
        companies = max(50, self.initial_members // population.MEMBERS_PER_COMPANY)
        schools = max(20, self.initial_members // population.MEMBERS_PER_SCHOOL)
        self.company_cumulative = np.cumsum(population.planted_zipf(companies, population.LARGE_COMPANY_SHARES))
        self.school_cumulative = np.cumsum(population.planted_zipf(schools, population.LARGE_SCHOOL_SHARES))

    # ------------------------------------------------------------------ one day
    def advance(self, day: int, member_id_base: int) -> Day:
        today = self.start_day + day
        day_start = today * DAY
        existing = self.n if day > 0 else self.initial_members  # members served today (not today's joiners)
        if day == 0:
            joined, positions, educations, edges, assigned = self._initial_population(today)
            job_moves = population.Records.empty()
        else:
            joined, positions, educations, edges, assigned = self._newcomers(day, today)
            o, rng = self.options, stream(self.seed, "careers/changes", day)
            job_moves = population.job_changes(rng, self.positions, existing,
                                               max(1, stochastic_round(rng, o.job_change_rate * existing)), today,
                                               self.company_cumulative)
            educations = educations + population.new_studies(
                rng, existing, max(1, stochastic_round(rng, o.study_rate * existing)), today, self.school_cumulative)
        if day == 0:  # the initial graph is what day 0's pages are served from
            self._remember(edges)
        served_graph = graph.Adjacency.build(existing, self.src, self.dst)
        context = PairContext(served_graph, self.region, self.industry, Stints.of(self.positions, self.n), today)
        simulated = self._simulate_events(day, day_start, context, member_id_base)
        organic = self._organic_edges(day, day_start, context) if day > 0 else _no_edges()
        accepts_today = self._take_due_accepts(day_start)
        accepted = (accepts_today.candidate, accepts_today.member, accepts_today.ts)
        self._remember(_concat_edges(organic, accepted) if day == 0 else _concat_edges(edges, organic, accepted))
        todays_edges = _concat_edges(edges, organic, accepted)
        file_edges = self._with_reversed_repeats(day, todays_edges)
        file_events, counts = self._events_file(day, simulated, accepts_today)
        counts["accepts"] = len(accepts_today)
        return Day(joined, file_edges, positions + job_moves, educations, file_events, assigned, counts)

    def _remember(self, edges) -> None:
        self.src = np.concatenate((self.src, edges[0]))
        self.dst = np.concatenate((self.dst, edges[1]))

    # ------------------------------------------------------------------ members and careers
    def _add_members(self, rng: np.random.Generator, count: int, joined_day: np.ndarray) -> np.ndarray:
        members = np.arange(self.n, self.n + count)
        self.n += count
        self.industry = np.concatenate((self.industry, population.categorical(rng, population.INDUSTRY_WEIGHTS, count)))
        self.region = np.concatenate((self.region, population.categorical(rng, population.REGION_WEIGHTS, count)))
        self.joined_day = np.concatenate((self.joined_day, joined_day))
        return members

    def _careers(self, rng: np.random.Generator, members: np.ndarray, today: int):
        positions, educations = population.careers_for(rng, members, today, self.company_cumulative,
                                                       self.school_cumulative)
        self.positions.extend(positions.member, positions.org, positions.start, positions.end)
        return positions, educations

    def _initial_population(self, today: int):
        o = self.options
        rng = stream(self.seed, "members/initial")
        n = self.initial_members
        joined = self._add_members(rng, n, today - np.sort(rng.integers(1, 3650, n))[::-1])
        positions, educations = self._careers(stream(self.seed, "careers/initial"), joined, today)

        rng = stream(self.seed, "graph/initial")
        total = int(o.mean_degree * n / 2)
        chung_lu = int(0.6 * total)
        self.weights = graph.member_weights(rng, n, chung_lu)
        src, dst = graph.chung_lu_edges(rng, self.weights, chung_lu)
        colleagues = graph.colleague_edges(rng, self._current_positions(), int(0.2 * total))
        src, dst = np.concatenate((src, colleagues[0])), np.concatenate((dst, colleagues[1]))
        closure = graph.closure_edges(rng, graph.Adjacency.build(n, src, dst), np.cumsum(self.weights),
                                      int(0.2 * total))
        src, dst = graph.orient_randomly(rng, np.concatenate((src, closure[0])), np.concatenate((dst, closure[1])))
        at = today * DAY + rng.integers(0, DAY, len(src))
        return joined, positions, educations, (src, dst, at), (joined, np.full(n, today * DAY))

    def _newcomers(self, day: int, today: int):
        o = self.options
        rng = stream(self.seed, "members/new", day)
        count = max(1, stochastic_round(rng, o.new_member_rate * self.n))
        existing = self.n
        joined = self._add_members(rng, count, np.full(count, today))
        joined_at = today * DAY + rng.integers(0, int(0.8 * DAY), count)
        self.weights = np.concatenate((self.weights, np.minimum(1.0 + rng.pareto(graph.PARETO_SHAPE, count), 50.0)))
        positions, educations = self._careers(stream(self.seed, "careers/new", day), joined, today)

        rng = stream(self.seed, "graph/newcomers", day)
        first_contacts = 1 + rng.poisson(4.0, count)
        src = np.repeat(joined, first_contacts)
        dst = graph.weighted_draw(rng, np.cumsum(self.weights[:existing]), len(src))
        starts = np.repeat(joined_at, first_contacts)
        at = starts + (rng.random(len(src)) * (today * DAY + DAY - starts)).astype(np.int64)
        src, dst = graph.orient_randomly(rng, src, dst)
        return joined, positions, educations, (src, dst, at), (joined, joined_at)

    def _current_positions(self) -> graph.Groups:
        current = self.positions.end == population.OPEN_ENDED
        return graph.Groups.of(self.positions.member[current], self.positions.org[current])

    # ------------------------------------------------------------------ connections
    def _organic_edges(self, day: int, day_start: int, context: PairContext):
        """New connections made outside PYMK: ORGANIC_PROPOSALS candidate pairs per edge (friends of friends,
        colleagues, random members), of which `count` are kept, each drawn with weight exp(2 A) (A: the outcome
        model's affinity) without replacement, so pairs with common connections, shared tenure or one region
        connect more often."""
        served = context.graph
        rng = stream(self.seed, "graph/daily", day)
        count = max(1, stochastic_round(rng, self.options.new_edge_rate * served.n))
        proposals = ORGANIC_PROPOSALS * count
        cumulative = np.cumsum(self.weights[: served.n])
        closing = graph.closure_edges(rng, served, cumulative, proposals // 2)
        colleagues = graph.colleague_edges(rng, self._current_positions(), proposals // 4)
        random = graph.chung_lu_edges(rng, self.weights[: served.n], proposals - proposals // 2 - proposals // 4)
        src = np.concatenate((closing[0], colleagues[0], random[0]))
        dst = np.concatenate((closing[1], colleagues[1], random[1]))
        keep = (src < served.n) & (dst < served.n)
        src, dst = src[keep], dst[keep]
        keep = ~served.connected(src, dst)
        src, dst = src[keep], dst[keep]
        weight = np.exp(ORGANIC_AFFINITY_SCALE * outcomes.affinity(context.signals(src, dst)))
        priority = rng.exponential(1.0, len(src)) / weight  # smallest first = weighted draw without replacement
        chosen = np.sort(np.argsort(priority, kind="stable")[:count])
        src, dst = graph.orient_randomly(rng, src[chosen], dst[chosen])
        return src, dst, day_start + rng.integers(0, DAY, len(src))

    def _with_reversed_repeats(self, day: int, edges):
        """The day's edges plus a few sent again in the other direction (valid duplicates)."""
        rng = stream(self.seed, "connections/repeats", day)
        src, dst, at = edges
        again = np.flatnonzero(rng.random(len(src)) < self.options.reversed_edge_share)
        order = np.argsort(np.concatenate((at, at[again])), kind="stable")
        return tuple(np.concatenate(pair)[order] for pair in ((src, dst[again]), (dst, src[again]), (at, at[again])))

    # ------------------------------------------------------------------ events
    def _simulate_events(self, day: int, day_start: int, context: PairContext, member_id_base: int):
        n = context.graph.n
        ids = member_id_base + np.arange(n)
        simulated = ev.simulate_day(stream(self.seed, "events", day), day_start, context, self._current_positions(),
                                    np.cumsum(self.weights[:n]), experiments.invite_multiplier(ids),
                                    self.options.events_per_member, self.history)
        self.pending_accepts = ev.Events.concat([self.pending_accepts, simulated.accepts])
        return simulated.today

    def _take_due_accepts(self, day_start: int) -> ev.Events:
        due = (self.pending_accepts.ts >= day_start) & (self.pending_accepts.ts < day_start + DAY)
        accepts = self.pending_accepts.take(np.flatnonzero(due))
        self.pending_accepts = self.pending_accepts.take(np.flatnonzero(~due))
        return accepts.in_time_order()

    def _events_file(self, day: int, today: ev.Events, accepts: ev.Events) -> tuple[ev.Events, dict[str, int]]:
        """Today's events minus those arriving late, plus late arrivals due today, plus exact repeats."""
        o, rng = self.options, stream(self.seed, "events/delivery", day)
        may_be_late = np.isin(today.kind, (ev.IMPRESSION, ev.CLICK, ev.DISMISS))
        late = may_be_late & (rng.random(len(today)) < o.late_share)
        delay = rng.integers(1, 3, len(today))
        for lag in (1, 2):
            self.pending_late.append((day + lag, today.take(np.flatnonzero(late & (delay == lag)))))
        arriving = [batch for due, batch in self.pending_late if due == day]
        self.pending_late = [(due, batch) for due, batch in self.pending_late if due > day]
        on_time = today.take(np.flatnonzero(~late))
        delivered = ev.Events.concat([on_time, accepts, *arriving])
        repeats = np.flatnonzero(rng.random(len(delivered)) < o.duplicate_event_share)
        file_events = delivered.take(np.concatenate((np.arange(len(delivered)), repeats))).in_time_order()
        counts = {"late_events": sum(len(b) for b in arriving), "duplicate_events": len(repeats),
                  "resent_impressions": int(_resent_count(today))}
        return file_events, counts


def _resent_count(events: ev.Events) -> int:
    """Impressions whose (request, candidate, position) was already shown: the client's re-sends."""
    shown = events.kind == ev.IMPRESSION
    request, candidate = events.request[shown], events.candidate[shown]
    order = np.lexsort((candidate, request))
    request, candidate = request[order], candidate[order]
    return int(((request[1:] == request[:-1]) & (candidate[1:] == candidate[:-1])).sum())


def _concat_edges(*edge_sets):
    return tuple(np.concatenate(parts) for parts in zip(*edge_sets, strict=True))


def _no_edges():
    none = np.empty(0, np.int64)
    return none, none, none
