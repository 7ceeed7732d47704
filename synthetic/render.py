"""A simulated day as landing-file columns: member indices become ids, codes become strings, and every
value becomes its CSV text or JSON literal (see `writer`). Columns come from the landing registry
(`mutuals.tables.LANDING_SCHEMAS`) so the files and the ingest can never disagree on names or order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from synthetic import events as ev
from synthetic import experiments, population
from synthetic.timefmt import iso_dates, iso_timestamps
from synthetic.world import Day, World

MEMBER_ID_BASE = 1_000_001  # member index 0 has id 1000001: ids look like longs, never 0 or 1
COMPANY_ID_BASE = 50_000_000
SCHOOL_ID_BASE = 80_000_000

Columns = dict[str, list[str]]


def _text(values) -> list[str]:
    return list(map(str, np.asarray(values).tolist()))


def _quoted(values) -> list[str]:
    return ['"' + v + '"' for v in np.asarray(values).tolist()]


_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode("ascii"), np.uint8).reshape(256, 2)
_QUOTE = ord('"')


def _quoted_hex(*columns: np.ndarray) -> list[str]:
    """'"<16 hex digits per column>"' per row for uint64 columns, from a byte lookup table: the same text as
    f'"{a:016x}{b:016x}"', several times faster at a million rows."""
    n = len(columns[0])
    text = np.full((n, 2 + 16 * len(columns)), _QUOTE, np.uint8)
    for k, column in enumerate(columns):
        big_endian = np.asarray(column, np.uint64).astype(">u8").view(np.uint8).reshape(n, 8)
        text[:, 1 + 16 * k:17 + 16 * k] = _HEX_PAIRS[big_endian].reshape(n, 16)
    joined, width = text.tobytes().decode("ascii"), text.shape[1]
    return [joined[i:i + width] for i in range(0, len(joined), width)]


def _nullable(values: np.ndarray, present: np.ndarray, null: str) -> list[str]:
    return [v if keep else null for v, keep in zip(_text(values), present.tolist(), strict=True)]


def members(world: World, m: np.ndarray) -> Columns:
    return {
        "member_id": _text(MEMBER_ID_BASE + m),
        "industry": np.asarray(population.INDUSTRIES)[world.industry[m]].tolist(),
        "region": np.asarray(population.REGIONS)[world.region[m]].tolist(),
        "joined_on": iso_dates(world.joined_day[m]).tolist(),
    }


def connections(src: np.ndarray, dst: np.ndarray, at: np.ndarray) -> Columns:
    return {"src": _text(MEMBER_ID_BASE + src), "dst": _text(MEMBER_ID_BASE + dst),
            "connected_at": iso_timestamps(at).tolist()}


def careers(records: population.Records, org_name: str, org_base: int) -> Columns:
    is_open = records.end == population.OPEN_ENDED
    return {
        "member_id": _text(MEMBER_ID_BASE + records.member),
        org_name: _text(org_base + records.org),
        "start_date": iso_dates(records.start).tolist(),
        "end_date": _nullable(iso_dates(np.where(is_open, 0, records.end)), ~is_open, ""),
    }


_EVENT_TYPE_TOKENS = np.asarray([f'"{t}"' for t in ev.EVENT_TYPES])
_SURFACE_TOKENS = np.asarray([f'"{s}"' for s in ev.SURFACES] + ["null"])  # the last one is NO_VALUE


def events(batch: ev.Events) -> Columns:
    requests = _quoted_hex(batch.request)
    for row in np.flatnonzero(batch.request == 0).tolist():
        requests[row] = "null"
    surface = np.where(batch.surface == ev.NO_VALUE, len(ev.SURFACES), batch.surface)
    return {
        "event_id": _quoted_hex(batch.id_hi, batch.id_lo),
        "member_id": _text(MEMBER_ID_BASE + batch.member),
        "ts": _quoted(iso_timestamps(batch.ts)),
        "event_type": _EVENT_TYPE_TOKENS[batch.kind].tolist(),
        "candidate_id": _text(MEMBER_ID_BASE + batch.candidate),
        "request_id": requests,
        "surface": _SURFACE_TOKENS[surface].tolist(),
        "position": _nullable(batch.position, batch.position != ev.NO_VALUE, "null"),
        "dwell_ms": _nullable(batch.dwell, batch.dwell != ev.NO_VALUE, "null"),
    }


def assignment_rows(day: Day) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, assigned_at, experiment index) per row: every experiment for every assigned member,
    ordered by time, then member, then experiment."""
    member, at = day.assigned
    count = len(experiments.EXPERIMENTS)
    rows = (np.tile(member, count), np.tile(at, count), np.repeat(np.arange(count), len(member)))
    order = np.lexsort((rows[2], rows[0], rows[1]))
    return tuple(r[order] for r in rows)


def assignments(member: np.ndarray, at: np.ndarray, experiment: np.ndarray) -> Columns:
    ids = MEMBER_ID_BASE + member
    variant = np.full(len(ids), f'"{experiments.CONTROL}"', dtype=object)
    for number, spec in enumerate(experiments.EXPERIMENTS):
        treated = (experiment == number) & experiments.is_treated(spec, ids)
        variant[treated] = f'"{experiments.TREATMENT}"'
    names = np.asarray([f'"{spec.name}"' for spec in experiments.EXPERIMENTS])
    return {"member_id": _text(ids), "experiment": names[experiment].tolist(), "variant": variant.tolist(),
            "assigned_at": _quoted(iso_timestamps(at))}


Renderer = tuple[int, Callable[[int, int], Columns]]


def day_tables(world: World, day: Day) -> dict[str, Renderer]:
    """Per table: the row count and a function rendering rows [low, high) of the day's file."""
    src, dst, at = day.edges
    assigned = assignment_rows(day)

    def records(r: population.Records, low: int, high: int) -> population.Records:
        return population.Records(r.member[low:high], r.org[low:high], r.start[low:high], r.end[low:high])

    return {
        "members": (len(day.new_members), lambda lo, hi: members(world, day.new_members[lo:hi])),
        "connections": (len(src), lambda lo, hi: connections(src[lo:hi], dst[lo:hi], at[lo:hi])),
        "positions": (len(day.positions),
                      lambda lo, hi: careers(records(day.positions, lo, hi), "company_id", COMPANY_ID_BASE)),
        "educations": (len(day.educations),
                       lambda lo, hi: careers(records(day.educations, lo, hi), "school_id", SCHOOL_ID_BASE)),
        "events": (len(day.events), lambda lo, hi: events(day.events.take(slice(lo, hi)))),
        "experiment_assignments": (len(assigned[0]),
                                   lambda lo, hi: assignments(*(a[lo:hi] for a in assigned))),
    }
