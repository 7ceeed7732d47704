"""`mutuals generate`: seeded, deterministic synthetic landing files for N days (design.md, "Landing files").

Why a generator and not a fixture: tests, the demo and the benchmarks need realistic inputs at any size,
from 1k to 1M members: a power-law graph with hubs, large companies, served pages and their funnel, a real
experiment effect, late and duplicate events and every kind of bad row. Same seed => byte-identical
files; the JSON summary says what was injected, per table, day, reason and field, so an ingest test can
check quarantine counts exactly. This is plain numpy, not a Spark job.

    mutuals generate --lake ROOT --start 2026-01-01 --days 3 --members 1000 --seed 7

Outcome model (synthetic/outcomes.py), per impression of candidate b on viewer a's page, so that a ranker
has more to learn than common connections (heuristic-v1) and more than a linear model can express:

    c = exact common connections of a and b in the graph the page was served from
    R = same region, I = same industry, w = longest overlapping tenure at one company (days)
    p = display position (1..10), s = earlier showings of (a, b), d = a dismissed b on an earlier day
    A = 2.0 (1 - exp(-c / 4)) + 0.9 R + 0.8 I [c <= 2] + 1.2 min(w / 365, 1)    (industry helps only
        pairs with few common connections; common connections and tenure saturate)
    P = 1.1 exp(-(p - 1) / 2.5)                                                 (saturates from about p = 6)
    click           = sigma(-3.7 + A + P - 0.6 s - 2.5 d)
    invite | click    = sigma(-1.9 + 0.8 A - 0.4 s - 3 d) * L
    invite | no click = sigma(-5.4 + A + 0.5 P - 0.4 s - 3 d) * L    (L: experiment lift, 1.3 for
                                                                       pymk_ranker_v2 treatment; capped at 1)
    dismiss         = sigma(-2.8 - 0.5 A + 0.6 P + 0.3 s)            (if not invited)
    accept          = sigma(-0.4 + 0.8 A), 1-5 days after the invite (mostly the next day); an accepted
                      invite is a connection from the accept's day

Organic new connections (0.05 per member per day from day 2) are drawn among six proposals each (friends
of friends, colleagues, random members) with weight exp(2 A), so they also favour common connections,
shared tenure and one region. Members see about 8 events a day (`--events-per-member`): at 2,000 members
over 3 days that is enough for the experiment report to find pymk_ranker_v2's invite lift.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from mutuals.errors import UsageError
from mutuals.tables import LANDING_FORMATS, LANDING_SCHEMAS
from synthetic import render
from synthetic.seeds import stochastic_round, stream
from synthetic.timefmt import day_number
from synthetic.world import DAY, Options, World
from synthetic.writer import TableDay, write_table_day

TABLES: tuple[str, ...] = tuple(LANDING_SCHEMAS)


class GenerateArgumentError(UsageError, ValueError):
    """An option outside its valid range; the message says what was expected and what was given."""


def _check(options: Options, days: int, members: int) -> None:
    problems = []
    if days < 1:
        problems.append(f"days must be >= 1, got {days}")
    if members < 10:
        problems.append(f"members must be >= 10, got {members}")
    for name in ("bad_share", "crlf_share"):
        value = getattr(options, name)
        if not 0.0 <= value <= 1.0:
            problems.append(f"{name} must be in [0, 1], got {value}")
    if options.events_per_member < 0:
        problems.append(f"events_per_member must be >= 0, got {options.events_per_member}")
    if options.rows_per_file < 1:
        problems.append(f"rows_per_file must be >= 1, got {options.rows_per_file}")
    if problems:
        raise GenerateArgumentError("; ".join(problems))


def _crlf_tables(seed: int, day: int, share: float) -> set[str]:
    """Which of the day's files use CRLF: about `share` of them, chosen per day."""
    rng = stream(seed, "files/crlf", day)
    count = min(len(TABLES), stochastic_round(rng, share * len(TABLES)))
    return {TABLES[i] for i in rng.choice(len(TABLES), size=count, replace=False).tolist()}


def generate(lake_root: str | Path, start: str, days: int, members: int, seed: int, **opts) -> dict:
    """Write `days` days of landing files under `lake_root/landing/` and return the summary.

    `opts` are `Options` fields (bad_share, crlf_share, events_per_member, rows_per_file, ...). The summary
    has, per day and table, rows, good_rows, bad_rows and bad counts per "reason:field"; `bad_lines` (not
    printed by the CLI) lists (file, line, "reason:field") for every injected bad row.
    """
    began = time.perf_counter()
    options = Options(**opts)
    _check(options, days, members)
    root = Path(lake_root)
    world = World(seed, day_number(start), members, options)
    per_day: dict[str, dict[str, dict]] = {}
    bad_lines: dict[str, dict[str, list]] = {table: {} for table in TABLES}
    for day in range(days):
        ds = (dt.date.fromisoformat(start) + dt.timedelta(days=day)).isoformat()
        simulated = world.advance(day, render.MEMBER_ID_BASE)
        renderers = render.day_tables(world, simulated)
        crlf = _crlf_tables(seed, day, options.crlf_share)
        per_day[ds] = {}
        for table in TABLES:
            rows, rendering = renderers[table]
            written: TableDay = write_table_day(
                root, table, ds, (world.start_day + day) * DAY, LANDING_FORMATS[table],
                list(LANDING_SCHEMAS[table].fieldNames()), rows, rendering, stream(seed, f"bad/{table}", day),
                options.bad_share, table in crlf, options.rows_per_file)
            if table == "events":
                written.extra = dict(sorted(simulated.counts.items()))
            per_day[ds][table] = written.summary()
            bad_lines[table][ds] = written.bad_lines
    return {
        "lake": str(root), "start": start, "days": days, "initial_members": members,
        "final_members": world.n, "seed": seed,
        "options": {f.name: getattr(options, f.name) for f in fields(options)},
        "tables": per_day, "totals": _totals(per_day),
        "seconds": round(time.perf_counter() - began, 3), "bad_lines": bad_lines,
    }


def _totals(per_day: dict[str, dict[str, dict]]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for tables in per_day.values():
        for table, summary in tables.items():
            total = totals.setdefault(table, {"rows": 0, "good_rows": 0, "bad_rows": 0})
            for key in total:
                total[key] += summary[key]
    return totals


def parser() -> argparse.ArgumentParser:
    defaults = Options()
    p = argparse.ArgumentParser(prog="mutuals generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", required=True, help="lake root; files go to ROOT/landing/<table>/ds=<D>/")
    p.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first day (YYYY-MM-DD)")
    p.add_argument("--days", required=True, type=int, help="number of days to write")
    p.add_argument("--members", required=True, type=int, help="members on the first day (grows ~0.2%%/day)")
    p.add_argument("--seed", required=True, type=int, help="same seed => byte-identical files")
    p.add_argument("--bad-share", type=float, default=defaults.bad_share, help="share of bad rows per file")
    p.add_argument("--crlf-share", type=float, default=defaults.crlf_share, help="share of files with CRLF")
    p.add_argument("--events-per-member", type=float, default=defaults.events_per_member,
                   help="average events per member per day")
    p.add_argument("--rows-per-file", type=int, default=defaults.rows_per_file,
                   help="split a table's day into part files of at most this many rows")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        summary = generate(args.lake, args.start.isoformat(), args.days, args.members, args.seed,
                           bad_share=args.bad_share, crlf_share=args.crlf_share,
                           events_per_member=args.events_per_member, rows_per_file=args.rows_per_file)
    except GenerateArgumentError as error:
        print(f"mutuals generate: {error}", file=sys.stderr)
        return 2
    summary.pop("bad_lines")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
