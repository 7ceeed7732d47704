"""A simulated day as landing-file columns: member indices become ids, codes become strings, and every
value becomes its CSV text or JSON literal (see `writer`). Columns come from the landing registry
(`spark_jobs.tables.LANDING_SCHEMAS`) so the files and the ingest can never disagree on names or order.
"""

from __future__ import annotations

import numpy as np

from spark_jobs.synthetic import events as ev
from spark_jobs.synthetic import experiments, population
from spark_jobs.synthetic.timefmt import iso_dates, iso_timestamps
from spark_jobs.synthetic.world import Day, World

MEMBER_ID_BASE = 1_000_001  # member index 0 has id 1000001: ids look like longs, never 0 or 1
COMPANY_ID_BASE = 50_000_000
SCHOOL_ID_BASE = 80_000_000

Columns = dict[str, list[str]]


def _text(values) -> list[str]:
    return list(map(str, np.asarray(values).tolist()))


def _quoted(values) -> list[str]:
    return ['"' + v + '"' for v in np.asarray(values).tolist()]


def _nullable(values: np.ndarray, present: np.ndarray, null: str) -> list[str]:
    return [v if keep else null for v, keep in zip(_text(values), present.tolist(), strict=True)]


def members(world: World, day: Day) -> Columns:
    m = day.new_members
    return {
        "member_id": _text(MEMBER_ID_BASE + m),
        "industry": np.asarray(population.INDUSTRIES)[world.industry[m]].tolist(),
        "region": np.asarray(population.REGIONS)[world.region[m]].tolist(),
        "joined_on": iso_dates(world.joined_day[m]).tolist(),
    }


def connections(day: Day) -> Columns:
    src, dst, at = day.edges
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


def events(batch: ev.Events) -> Columns:
    has_request = batch.request != 0
    requests = [f'"{r:016x}"' if keep else "null"
                for r, keep in zip(batch.request.tolist(), has_request.tolist(), strict=True)]
    surfaces = np.asarray([f'"{s}"' for s in ev.SURFACES] + ["null"])
    return {
        "event_id": [f'"{h:016x}{lo:016x}"' for h, lo in zip(batch.id_hi.tolist(), batch.id_lo.tolist(), strict=True)],
        "member_id": _text(MEMBER_ID_BASE + batch.member),
        "ts": _quoted(iso_timestamps(batch.ts)),
        "event_type": np.asarray([f'"{t}"' for t in ev.EVENT_TYPES])[batch.kind].tolist(),
        "candidate_id": _text(MEMBER_ID_BASE + batch.candidate),
        "request_id": requests,
        "surface": surfaces[np.where(batch.surface == ev.NO_VALUE, len(ev.SURFACES), batch.surface)].tolist(),
        "position": _nullable(batch.position, batch.position != ev.NO_VALUE, "null"),
        "dwell_ms": _nullable(batch.dwell, batch.dwell != ev.NO_VALUE, "null"),
    }


def assignments(day: Day) -> Columns:
    member, at = day.assigned
    ids = MEMBER_ID_BASE + member
    experiment_rows = len(experiments.EXPERIMENTS)
    columns: Columns = {"member_id": [], "experiment": [], "variant": [], "assigned_at": []}
    id_text, at_text = _text(ids), _quoted(iso_timestamps(at))
    for experiment in experiments.EXPERIMENTS:
        variant = np.where(experiments.is_treated(experiment, ids), experiments.TREATMENT, experiments.CONTROL)
        columns["variant"] += _quoted(variant)
        columns["experiment"] += [f'"{experiment.name}"'] * len(ids)
        columns["member_id"] += id_text
        columns["assigned_at"] += at_text
    order = np.lexsort((np.repeat(np.arange(experiment_rows), len(ids)), np.tile(at, experiment_rows)))
    return {name: [values[i] for i in order.tolist()] for name, values in columns.items()}


def day_columns(world: World, day: Day) -> dict[str, Columns]:
    return {
        "members": members(world, day),
        "connections": connections(day),
        "positions": careers(day.positions, "company_id", COMPANY_ID_BASE),
        "educations": careers(day.educations, "school_id", SCHOOL_ID_BASE),
        "events": events(day.events),
        "experiment_assignments": assignments(day),
    }
