"""The PYMK event funnel: served pages of candidates, then clicks, invites, dismisses and later accepts.

Why simulate the served list from the graph: attribution, labels and training only make sense when the
impressions are the candidates a PYMK system would really show, i.e. friends of friends ranked by common
connections, plus co-workers and a few popular members for cold starts. Two-hop random walks estimate the
common-connection count (a candidate reached by more paths shares more friends) at any graph size, and
rank the page. What members then do with an impression follows the outcome model (`synthetic.outcomes`):
exact common connections, region, industry, co-worker tenure, position, earlier showings and dismissals of
the pair, and the experiments' invite lift.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from synthetic import outcomes
from synthetic.graph import Adjacency, Groups, weighted_draw
from synthetic.history import PairHistory, earlier_today, pair_keys
from synthetic.signals import PairContext

EVENT_TYPES = ("impression", "click", "invite", "accept", "dismiss")  # order = code; see tables.EVENT_TYPES
IMPRESSION, CLICK, INVITE, ACCEPT, DISMISS = range(5)
SURFACES = ("pymk_page", "feed_module", "email_digest", "profile", "notifications")
SERVED_SURFACES, SERVED_SURFACE_WEIGHTS = (0, 1, 2), (0.6, 0.3, 0.1)
PROFILE, NOTIFICATIONS = 3, 4

DAY = 86_400
EVENTS_PER_REQUEST = 8.5  # ~7.5 impressions plus the actions they lead to
WALKS, COWORKER_DRAWS, POPULAR_DRAWS = 24, 4, 2
WALK_SCORE, COWORKER_SCORE, POPULAR_SCORE = 1.0, 0.8, 0.05
PAGE_SIZES = (5, 11)  # a page shows 5..10 candidates at positions 1..n
ORGANIC_INVITE_SHARE = 0.15  # invites sent from a profile, with no request_id
ACCEPT_DELAY_MEAN = 0.7 * DAY  # after the first day; most accepts come the next day, all within 5
RESENT_REQUEST_SHARE = 0.01  # pages whose impressions the client sent twice (new event ids)
NO_VALUE = -1  # null position, dwell or surface; request 0 is a null request_id


@dataclass(frozen=True)
class Events:
    """A batch of events as parallel arrays (members are indices; codes index EVENT_TYPES / SURFACES)."""

    id_hi: np.ndarray
    id_lo: np.ndarray
    member: np.ndarray
    ts: np.ndarray  # seconds since the epoch, UTC
    kind: np.ndarray
    candidate: np.ndarray
    request: np.ndarray  # uint64, 0 = null
    surface: np.ndarray
    position: np.ndarray  # NO_VALUE = null
    dwell: np.ndarray  # NO_VALUE = null

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray) -> Events:
        return Events(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concat(batches: list[Events]) -> Events:
        return Events(*(np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(Events)))

    @staticmethod
    def empty() -> Events:
        return Events(*(np.empty(0, t) for t in _DTYPES))

    def with_new_ids(self, rng: np.random.Generator) -> Events:
        hi = rng.integers(0, 2**64, len(self), dtype=np.uint64, endpoint=False)
        lo = rng.integers(0, 2**64, len(self), dtype=np.uint64, endpoint=False)
        return Events(hi, lo, *(getattr(self, f.name) for f in fields(self)[2:]))

    def in_time_order(self) -> Events:
        """Sorted by ts, then event id: a total, reproducible order (exact duplicates end up adjacent)."""
        return self.take(np.lexsort((self.id_lo, self.id_hi, self.ts)))


_DTYPES = (np.uint64, np.uint64, np.int64, np.int64, np.int8, np.int64, np.uint64, np.int8, np.int16, np.int64)


def _events(member, ts, kind, candidate, request, surface, position, dwell) -> Events:
    """A batch without ids yet (ids are drawn once per day, after the batch is assembled)."""
    n = len(ts)
    zeros = np.zeros(n, np.uint64)

    def full(value, dtype):
        return np.broadcast_to(np.asarray(value, dtype), (n,)).copy()

    return Events(zeros, zeros.copy(), full(member, np.int64), full(ts, np.int64), full(kind, np.int8),
                  full(candidate, np.int64), full(request, np.uint64), full(surface, np.int8),
                  full(position, np.int16), full(dwell, np.int64))


@dataclass(frozen=True)
class Served:
    """One row per impression of a served page."""

    request: np.ndarray  # index into the day's requests
    candidate: np.ndarray
    position: np.ndarray  # 1-based


def serve_pages(rng: np.random.Generator, graph: Adjacency, coworkers: Groups, popular: np.ndarray,
                viewers: np.ndarray, page_sizes: np.ndarray) -> Served:
    """Each viewer's page: candidates from two-hop walks, co-workers and popular members, best first.

    Ranking: estimated common connections (walk hits) descending, then candidate index ascending; a
    candidate is never the viewer, an existing connection, or a member who joined today.
    """
    requests = len(viewers)
    walk_viewers = np.repeat(viewers, WALKS)
    walked = graph.random_neighbour(rng, graph.random_neighbour(rng, walk_viewers))
    peers = _coworkers(rng, coworkers, np.repeat(viewers, COWORKER_DRAWS))
    famous = weighted_draw(rng, popular, requests * POPULAR_DRAWS)
    request = np.concatenate([np.repeat(np.arange(requests), d) for d in (WALKS, COWORKER_DRAWS, POPULAR_DRAWS)])
    candidate = np.concatenate((walked, peers, famous))
    score = np.concatenate([np.full(requests * d, s) for d, s in
                            ((WALKS, WALK_SCORE), (COWORKER_DRAWS, COWORKER_SCORE), (POPULAR_DRAWS, POPULAR_SCORE))])
    viewer = viewers[request]
    is_candidate = (candidate >= 0) & (candidate < graph.n) & (candidate != viewer)
    is_candidate[is_candidate] = ~graph.connected(viewer[is_candidate], candidate[is_candidate])
    request, candidate, score = request[is_candidate], candidate[is_candidate], score[is_candidate]

    pair = request * graph.n + candidate
    order = np.argsort(pair, kind="stable")
    pair, score = pair[order], score[order]
    starts = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1]))) if len(pair) else np.empty(0, int)
    total = np.add.reduceat(score, starts) if len(starts) else np.empty(0)
    request, candidate = pair[starts] // graph.n, pair[starts] % graph.n
    order = np.lexsort((candidate, -total, request))
    request, candidate, total = request[order], candidate[order], total[order]
    group_start = np.searchsorted(request, request, side="left")
    position = np.arange(len(request)) - group_start + 1
    on_page = position <= page_sizes[request]
    return Served(request[on_page], candidate[on_page], position[on_page])


def _coworkers(rng: np.random.Generator, groups: Groups, members: np.ndarray) -> np.ndarray:
    """A random current co-worker of each member (-1 without a current position)."""
    if len(groups.members) == 0:
        return np.full(len(members), -1, np.int64)
    by_member = np.argsort(groups.members, kind="stable")
    sorted_members = groups.members[by_member]
    first = np.searchsorted(sorted_members, members, side="left")
    count = np.searchsorted(sorted_members, members, side="right") - first
    pick = first + np.floor(rng.random(len(members)) * count).astype(np.int64)
    rows = by_member[np.minimum(pick, len(by_member) - 1)]
    return np.where(count > 0, groups.peer_of_rows(rng, rows), -1)


@dataclass(frozen=True)
class DayEvents:
    today: Events  # everything that happened today (ts within the day)
    accepts: Events  # accepts of today's invites, 1-5 days later (ts in later days)


def simulate_day(rng: np.random.Generator, day_start: int, context: PairContext, coworkers: Groups,
                 popular: np.ndarray, invite_multiplier: np.ndarray, events_per_member: float,
                 history: PairHistory) -> DayEvents:
    """The day's requests and everything members did with them; accepts are scheduled for later days.

    Outcomes follow `synthetic.outcomes`; a pair's earlier showings are those of earlier days (`history`)
    plus today's earlier pages, and the day's impressions and dismisses are added to `history` at the end.
    """
    graph = context.graph
    existing = graph.n
    expected = events_per_member * existing / EVENTS_PER_REQUEST
    requests = max(1, int(rng.poisson(expected))) if expected > 0 else 0  # >= 1 page a day: files never empty
    activity = np.sqrt(graph.degree + 1.0)
    viewers = weighted_draw(rng, np.cumsum(activity), requests)
    page_sizes = rng.integers(PAGE_SIZES[0], PAGE_SIZES[1], requests)
    request_ids = rng.integers(1, 2**63, requests, dtype=np.int64).astype(np.uint64)
    request_ts = day_start + rng.integers(0, DAY - 600, requests)
    request_surface = rng.choice(SERVED_SURFACES, size=requests, p=SERVED_SURFACE_WEIGHTS)
    served = serve_pages(rng, graph, coworkers, popular, viewers, page_sizes)

    r = served.request
    viewer, candidate, position, shown_at = viewers[r], served.candidate, served.position, request_ts[r]
    day_end = day_start + DAY - 1
    impressions = _events(viewer, shown_at, IMPRESSION, candidate, request_ids[r], request_surface[r],
                          position, NO_VALUE)

    a = outcomes.affinity(context.signals(viewer, candidate))
    keys = pair_keys(viewer, candidate)
    shown_earlier_days, dismissed_before = history.lookup(keys)
    shown_before = shown_earlier_days + earlier_today(keys, shown_at)
    clicked = rng.random(len(r)) < outcomes.click_probability(a, position, shown_before, dismissed_before)
    clicked_at = np.minimum(shown_at + 2 + rng.exponential(20.0, len(r)).astype(np.int64), day_end)
    dwell = np.maximum(200, rng.lognormal(np.log(3000.0), 1.0, len(r))).astype(np.int64)
    clicks = _events(viewer[clicked], clicked_at[clicked], CLICK, candidate[clicked],
                     request_ids[r][clicked], request_surface[r][clicked], position[clicked], dwell[clicked])

    invite_p = outcomes.invite_probability(a, clicked, position, shown_before, dismissed_before,
                                           invite_multiplier[viewer])
    invited = rng.random(len(r)) < invite_p
    acted_from = np.where(clicked, clicked_at, shown_at)
    invited_at = np.minimum(acted_from + 5 + rng.exponential(60.0, len(r)).astype(np.int64), day_end)
    served_invites = _events(viewer[invited], invited_at[invited], INVITE, candidate[invited],
                             request_ids[r][invited], request_surface[r][invited], position[invited], NO_VALUE)
    dismissed = ~invited & (rng.random(len(r)) < outcomes.dismiss_probability(a, position, shown_before))
    dismissed_at = np.minimum(acted_from + 1 + rng.exponential(10.0, len(r)).astype(np.int64), day_end)
    dismisses = _events(viewer[dismissed], dismissed_at[dismissed], DISMISS, candidate[dismissed],
                        request_ids[r][dismissed], request_surface[r][dismissed], position[dismissed], NO_VALUE)
    history.record(keys, keys[dismissed])

    organic = _organic_invites(rng, graph, viewers, int(rng.poisson(ORGANIC_INVITE_SHARE * len(served_invites))),
                               day_start)
    resent = _resent_impressions(rng, impressions, r, requests, day_end)
    invites = Events.concat([served_invites, organic])
    invite_affinity = np.concatenate((a[invited], outcomes.affinity(context.signals(organic.member,
                                                                                   organic.candidate))))
    accepts = _accepts(rng, invites, outcomes.accept_probability(invite_affinity))
    today = Events.concat([impressions, resent, clicks, invites, dismisses]).with_new_ids(rng)
    return DayEvents(today, accepts.with_new_ids(rng))


def _organic_invites(rng: np.random.Generator, graph: Adjacency, viewers: np.ndarray, count: int,
                     day_start: int) -> Events:
    """Invites sent from a member's profile page: a friend of a friend, no request_id and no position."""
    if len(viewers) == 0 or count == 0:
        return _events([], [], INVITE, [], 0, PROFILE, NO_VALUE, NO_VALUE)
    inviter = viewers[rng.integers(0, len(viewers), count)]
    invitee = graph.random_neighbour(rng, graph.random_neighbour(rng, inviter))
    is_new_pair = (invitee >= 0) & (invitee != inviter)
    is_new_pair[is_new_pair] = ~graph.connected(inviter[is_new_pair], invitee[is_new_pair])
    inviter, invitee = inviter[is_new_pair], invitee[is_new_pair]
    ts = day_start + rng.integers(0, DAY, len(inviter))
    return _events(inviter, ts, INVITE, invitee, 0, PROFILE, NO_VALUE, NO_VALUE)


def _resent_impressions(rng: np.random.Generator, impressions: Events, request_of: np.ndarray, requests: int,
                        day_end: int) -> Events:
    """Pages the client reported twice: same request, member, candidate and position, seconds later."""
    again = np.flatnonzero(rng.random(requests) < RESENT_REQUEST_SHARE)
    rows = np.flatnonzero(np.isin(request_of, again))
    copies = impressions.take(rows)
    delay = rng.integers(1, 31, len(again))[np.searchsorted(again, request_of[rows])]
    return Events(copies.id_hi, copies.id_lo, copies.member, np.minimum(copies.ts + delay, day_end),
                  copies.kind, copies.candidate, copies.request, copies.surface, copies.position, copies.dwell)


def _accepts(rng: np.random.Generator, invites: Events, probability: np.ndarray) -> Events:
    """Invitees who accept, 1 to 5 days after the invite (mostly the next day): member = invitee,
    candidate = inviter."""
    accepted = rng.random(len(invites)) < probability
    delay = DAY + np.minimum(rng.exponential(ACCEPT_DELAY_MEAN, int(accepted.sum())), 4 * DAY - 1).astype(np.int64)
    return _events(invites.candidate[accepted], invites.ts[accepted] + delay, ACCEPT, invites.member[accepted],
                   0, NOTIFICATIONS, NO_VALUE, NO_VALUE)
