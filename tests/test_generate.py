"""`mutuals generate`: determinism, realism and the injected bad rows, checked from the files themselves.

The files are read back with a small validator written here from the landing contract in design.md (not
from the generator's code), so a bad row the generator did not report, or a good row that breaks the
contract, fails the test. Runs are small (1k-5k members) and take about a second each. The outcome model's
effects (region, industry, co-workers, position, repeats, dismissals, organic connections) are measured on a
1,500-member, 3-day lake with sets and pandas, never with the generator's own signal code.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from synthetic.generate import generate, main

START = "2026-01-01"
DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")
TABLES = ("members", "connections", "positions", "educations", "events", "experiment_assignments")
CSV_TABLES = {"members", "connections", "positions", "educations"}
EVENT_TYPES = {"impression", "click", "invite", "accept", "dismiss"}
LATENESS = dt.timedelta(days=3)

# The landing contract (design.md): field, type, required, checked against the day's window.
CONTRACT = {
    "members": [("member_id", "long", True, False), ("industry", "str", False, False),
                ("region", "str", False, False), ("joined_on", "date", False, False)],
    "connections": [("src", "long", True, False), ("dst", "long", True, False),
                    ("connected_at", "ts", False, True)],
    "positions": [("member_id", "long", True, False), ("company_id", "long", True, False),
                  ("start_date", "date", True, False), ("end_date", "date", False, False)],
    "educations": [("member_id", "long", True, False), ("school_id", "long", True, False),
                   ("start_date", "date", True, False), ("end_date", "date", False, False)],
    "events": [("event_id", "str", True, False), ("member_id", "long", True, False), ("ts", "ts", True, True),
               ("event_type", "str", True, False), ("candidate_id", "long", True, False),
               ("request_id", "str", False, False), ("surface", "str", False, False),
               ("position", "long", False, False), ("dwell_ms", "long", False, False)],
    "experiment_assignments": [("member_id", "long", True, False), ("experiment", "str", True, False),
                               ("variant", "str", True, False), ("assigned_at", "ts", True, True)],
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _parse(kind: str, value, from_json: bool):
    """The typed value, or raise ValueError."""
    if kind == "long":
        if from_json:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(value)
            return value
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError(value)
        return int(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    if kind == "date":
        return dt.date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else _fail(value)
    if not TIMESTAMP.match(value):
        raise ValueError(value)
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")


def _fail(value):
    raise ValueError(value)


def check_row(table: str, ds: str, raw: dict, from_json: bool) -> tuple[str | None, dict]:
    """('reason:field', {}) for a bad row, (None, typed row) for a good one."""
    day = dt.datetime.fromisoformat(ds)
    row = {}
    for name, kind, required, windowed in CONTRACT[table]:
        value = raw.get(name)
        if value is None or (not from_json and value == ""):
            if required:
                return f"missing_field:{name}", {}
            row[name] = None
            continue
        try:
            row[name] = _parse(kind, value, from_json)
        except ValueError:
            return f"bad_type:{name}", {}
        if name == "event_type" and value not in EVENT_TYPES:
            return f"unknown_enum:{name}", {}
        if windowed and not (day - LATENESS <= row[name] < day + dt.timedelta(days=1)):
            return f"out_of_window:{name}", {}
    if table == "connections" and row["src"] == row["dst"]:
        return "self_loop:dst", {}
    if table in ("positions", "educations") and row["end_date"] is not None and row["end_date"] < row["start_date"]:
        return "invalid_range:end_date", {}
    return None, row


def read_day(root: Path, table: str, ds: str) -> tuple[list[dict], list[tuple[str, int, str]]]:
    """Good typed rows and (file, line, 'reason:field') of bad ones, for one table and day."""
    good, bad = [], []
    folder = root / "landing" / table / f"ds={ds}"
    for path in sorted(folder.glob("part-*")):
        lines = path.read_bytes().decode("utf-8").split("\n")
        assert lines[-1] == "", f"{path} must end with a line end"
        lines = [line.removesuffix("\r") for line in lines[:-1]]
        if table in CSV_TABLES:
            header = lines[0].split(",")
            assert header == [f[0] for f in CONTRACT[table]], path
            numbered = [(number, dict(zip(header, next(csv.reader([text])), strict=True)))
                        for number, text in enumerate(lines[1:], start=2)]
        else:
            numbered = [(number, json.loads(text)) for number, text in enumerate(lines, start=1)]
        for number, raw in numbered:
            reason, row = check_row(table, ds, raw, from_json=table not in CSV_TABLES)
            if reason:
                bad.append((str(path), number, reason))
            else:
                good.append(row)
    return good, bad


def file_hashes(root: Path) -> dict[str, str]:
    """Digests of the landing data files; the empty `_SUCCESS` readiness markers carry no data."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "landing").rglob("*")) if p.is_file() and not p.name.startswith("_")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    summary = generate(root, START, len(DAYS), 1000, seed=7)
    return root, summary


@pytest.fixture(scope="module")
def rows(run):
    root, _ = run
    return {(table, ds): read_day(root, table, ds) for table in TABLES for ds in DAYS}


def test_same_seed_gives_identical_bytes_and_a_different_seed_does_not(run, tmp_path):
    root, _ = run
    again = generate(tmp_path / "again", START, len(DAYS), 1000, seed=7)
    other = generate(tmp_path / "other", START, len(DAYS), 1000, seed=8)
    expected = file_hashes(root)
    assert len(expected) == len(TABLES) * len(DAYS)
    assert file_hashes(tmp_path / "again") == expected
    assert again["tables"] == run[1]["tables"]
    different = file_hashes(tmp_path / "other")
    assert different.keys() == expected.keys()
    assert all(different[name] != expected[name] for name in expected), "every file should change with the seed"
    assert other["tables"] != run[1]["tables"]


def test_fewer_days_give_a_byte_identical_prefix(run, tmp_path):
    root, _ = run
    generate(tmp_path / "short", START, 2, 1000, seed=7)
    short = file_hashes(tmp_path / "short")
    assert len(short) == len(TABLES) * 2
    assert all(file_hashes(root)[name] == digest for name, digest in short.items())


def test_every_table_has_rows_every_day_and_the_summary_counts_them(run, rows):
    _, summary = run
    for (table, ds), (good, bad) in rows.items():
        assert len(good) > 0, (table, ds)
        reported = summary["tables"][ds][table]
        assert reported["rows"] == len(good) + len(bad)
        assert reported["good_rows"] == len(good)
    assert len(rows[("members", DAYS[0])][0]) == 1000
    assert all(len(rows[("connections", ds)][0]) >= 10 for ds in DAYS)


def test_injected_bad_rows_are_exactly_the_reported_ones(run, rows):
    _, summary = run
    kinds_seen = set()
    for (table, ds), (_, bad) in rows.items():
        reported = summary["tables"][ds][table]
        found = Counter(reason for _, _, reason in bad)
        assert dict(found) == reported["bad"], (table, ds)
        assert reported["bad_rows"] == len(bad)
        assert sorted(bad) == sorted(summary["bad_lines"][table][ds]), (table, ds)
        kinds_seen |= set(found)
    for kind in ("bad_type:member_id", "missing_field:member_id", "bad_type:joined_on", "self_loop:dst",
                 "out_of_window:connected_at", "invalid_range:end_date", "unknown_enum:event_type",
                 "out_of_window:ts", "missing_field:candidate_id", "missing_field:event_id",
                 "missing_field:variant"):
        assert kind in kinds_seen, kind
    total_good = sum(len(good) for good, _ in rows.values())
    total_bad = sum(len(bad) for _, bad in rows.values())
    assert 0.005 < total_bad / total_good < 0.02  # --bad-share 0.01 by default


def test_bad_share_zero_writes_only_good_rows(tmp_path):
    summary = generate(tmp_path, START, 1, 200, seed=3, bad_share=0.0)
    for table in TABLES:
        good, bad = read_day(tmp_path, table, START)
        assert bad == [] and summary["tables"][START][table]["bad_rows"] == 0 and good


def test_crlf_and_lf_files_are_both_present_and_consistent(run):
    root, summary = run
    crlf, lf = [], []
    for path in sorted((root / "landing").rglob("part-*")):
        data = path.read_bytes()
        if b"\r\n" in data:
            assert data.count(b"\n") == data.count(b"\r\n"), f"{path} mixes line ends"
            crlf.append(path)
        else:
            lf.append(path)
    assert crlf and lf
    reported = sum(summary["tables"][ds][t]["crlf"] for ds in DAYS for t in TABLES)
    assert reported == len(crlf)


def test_the_graph_has_a_hub_with_at_least_five_percent_of_members(rows):
    members = {row["member_id"] for row in rows[("members", DAYS[0])][0]}
    neighbours: dict[int, set[int]] = defaultdict(set)
    for row in rows[("connections", DAYS[0])][0]:
        neighbours[row["src"]].add(row["dst"])
        neighbours[row["dst"]].add(row["src"])
    degrees = sorted((len(n) for n in neighbours.values()), reverse=True)
    assert degrees[0] >= 0.05 * len(members)
    assert degrees[len(degrees) // 2] <= 20  # heavy tail: the median member is far from the hub
    assert set(neighbours) <= members


def test_companies_include_a_few_very_large_ones_with_overlapping_tenures(rows):
    positions = rows[("positions", DAYS[0])][0]
    sizes = Counter(row["company_id"] for row in positions)
    (largest, size), = sizes.most_common(1)
    assert size >= 0.03 * len(positions)
    assert len(sizes) >= 30
    tenures = [(row["start_date"], row["end_date"] or dt.date(2026, 1, 1))
               for row in positions if row["company_id"] == largest]
    overlapping = sum(1 for a in tenures[:50] for b in tenures[:50] if a < b and a[0] < b[1] and b[0] < a[1])
    assert overlapping > 0


def test_later_days_carry_job_changes_as_the_same_position_with_a_new_end_date(rows):
    known = {(r["member_id"], r["company_id"], r["start_date"]) for r in rows[("positions", DAYS[0])][0]}
    for ds in DAYS[1:]:
        today = dt.date.fromisoformat(ds)
        day_rows = rows[("positions", ds)][0]
        ended = [r for r in day_rows if r["end_date"] == today]
        assert ended and all((r["member_id"], r["company_id"], r["start_date"]) in known for r in ended)
        known |= {(r["member_id"], r["company_id"], r["start_date"]) for r in day_rows}


def test_events_follow_served_pages(rows):
    events = [row for ds in DAYS for row in rows[("events", ds)][0]]
    kinds = Counter(row["event_type"] for row in events)
    assert all(kinds[kind] > 0 for kind in EVENT_TYPES)
    impressions = [row for row in events if row["event_type"] == "impression"]
    assert all(row["request_id"] and row["surface"] and 1 <= row["position"] <= 10 for row in impressions)
    pages = defaultdict(set)
    for row in impressions:
        pages[row["request_id"]].add((row["member_id"], row["position"]))
    assert all(len({m for m, _ in page}) == 1 for page in pages.values()), "a request belongs to one member"
    full = [sorted(p for _, p in page) for page in pages.values() if len(page) >= 5]
    assert sum(positions == list(range(1, len(positions) + 1)) for positions in full) >= 0.9 * len(full)
    dwell = [row["dwell_ms"] for row in events if row["event_type"] == "click"]
    assert any(d < 3000 for d in dwell) and any(d >= 3000 for d in dwell)
    invites = [row for row in events if row["event_type"] == "invite"]
    assert any(row["request_id"] is None for row in invites) and any(row["request_id"] for row in invites)
    ids = Counter(row["event_id"] for row in events)
    assert any(count > 1 for count in ids.values()), "some events are repeated with the same event_id"
    shown = defaultdict(set)
    for row in impressions:
        shown[(row["request_id"], row["candidate_id"], row["position"])].add(row["event_id"])
    resent = [key for key, event_ids in shown.items() if len(event_ids) > 1]
    assert resent, "some impressions are re-sent with new event ids"


def test_some_events_arrive_late_within_the_allowed_lateness(rows):
    late = [(ds, row["ts"]) for ds in DAYS[1:] for row in rows[("events", ds)][0]
            if row["ts"] < dt.datetime.fromisoformat(ds)]
    assert late
    assert all(dt.datetime.fromisoformat(ds) - ts <= dt.timedelta(days=2) for ds, ts in late)
    first_day = rows[("events", DAYS[0])][0]
    assert all(row["ts"] >= dt.datetime.fromisoformat(DAYS[0]) for row in first_day)


def test_accepts_answer_an_earlier_invite_in_the_reverse_direction_1_to_5_days_later(rows):
    events = [row for ds in DAYS for row in rows[("events", ds)][0]]
    invited_at = defaultdict(list)
    for row in events:
        if row["event_type"] == "invite":
            invited_at[(row["member_id"], row["candidate_id"])].append(row["ts"])
    accepts = [row for row in events if row["event_type"] == "accept"]
    assert len(accepts) >= 10
    for accept in accepts:
        sent = invited_at[(accept["candidate_id"], accept["member_id"])]
        gaps = [accept["ts"] - ts for ts in sent]
        assert any(dt.timedelta(days=1) <= gap <= dt.timedelta(days=5) for gap in gaps), accept
    first_day_accepts = [row for row in rows[("events", DAYS[0])][0] if row["event_type"] == "accept"]
    assert first_day_accepts == []


def test_accepted_invites_become_connections_on_the_accept_day(rows):
    for ds in DAYS[1:]:
        edges = {frozenset((r["src"], r["dst"])) for r in rows[("connections", ds)][0]}
        accepts = [r for r in rows[("events", ds)][0]
                   if r["event_type"] == "accept" and r["ts"] >= dt.datetime.fromisoformat(ds)]
        assert accepts
        assert all(frozenset((a["member_id"], a["candidate_id"])) in edges for a in accepts)


def test_members_are_assigned_to_both_experiments_on_day_one_or_their_join_day(rows):
    for ds in DAYS:
        joined = {r["member_id"] for r in rows[("members", ds)][0]}
        assigned = Counter(r["member_id"] for r in rows[("experiment_assignments", ds)][0])
        assert set(assigned) == joined and set(assigned.values()) == {2}
    first = rows[("experiment_assignments", DAYS[0])][0]
    variants = Counter((r["experiment"], r["variant"]) for r in first)
    assert set(variants) == {(e, v) for e in ("pymk_ranker_v2", "pymk_layout") for v in ("control", "treatment")}
    assert all(400 <= count <= 600 for count in variants.values())


def test_ranker_treatment_lifts_invites_per_impression_and_layout_does_not(tmp_path):
    generate(tmp_path, START, 1, 5000, seed=11, bad_share=0.0, events_per_member=8.0)
    arms = {}
    for row in read_day(tmp_path, "experiment_assignments", START)[0]:
        arms[(row["experiment"], row["member_id"])] = row["variant"]
    events = read_day(tmp_path, "events", START)[0]

    def invites_per_impression(experiment: str, variant: str) -> float:
        mine = [e for e in events if arms[(experiment, e["member_id"])] == variant and e["request_id"]]
        kinds = Counter(e["event_type"] for e in mine)
        return kinds["invite"] / kinds["impression"]

    ranker = invites_per_impression("pymk_ranker_v2", "treatment") / invites_per_impression("pymk_ranker_v2",
                                                                                             "control")
    layout = invites_per_impression("pymk_layout", "treatment") / invites_per_impression("pymk_layout", "control")
    assert ranker > 1.15
    assert 0.85 < layout < 1.15


def test_cli_prints_a_json_summary(tmp_path, capsys):
    assert main(["--lake", str(tmp_path), "--start", START, "--days", "2", "--members", "100", "--seed", "1",
                 "--bad-share", "0.05", "--crlf-share", "1", "--events-per-member", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["tables"]) == {"2026-01-01", "2026-01-02"}
    assert all(summary["tables"][ds][t]["crlf"] for ds in summary["tables"] for t in TABLES)
    assert summary["seconds"] >= 0 and "bad_lines" not in summary
    members = (tmp_path / "landing" / "members" / "ds=2026-01-01" / "part-00000.csv").read_bytes()
    assert members.startswith(b"member_id,industry,region,joined_on\r\n")


def test_cli_rejects_bad_options(tmp_path, capsys):
    assert main(["--lake", str(tmp_path), "--start", START, "--days", "0", "--members", "100", "--seed", "1",
                 "--bad-share", "2"]) == 2
    error = capsys.readouterr().err
    assert "days must be >= 1, got 0" in error and "bad_share must be in [0, 1], got 2.0" in error


def test_big_days_are_split_into_part_files_with_bad_lines_located(tmp_path):
    summary = generate(tmp_path, START, 1, 300, seed=5, rows_per_file=500, bad_share=0.05)
    folder = tmp_path / "landing" / "connections" / f"ds={START}"
    parts = sorted(folder.glob("part-*.csv"))
    assert len(parts) >= 4 and [p.name for p in parts[:2]] == ["part-00000.csv", "part-00001.csv"]
    good, bad = read_day(tmp_path, "connections", START)
    assert sorted(bad) == sorted(summary["bad_lines"]["connections"][START])
    assert {path for path, _, _ in bad} - {str(p) for p in parts} == set()
    assert len({path for path, _, _ in bad}) > 1


# ---------------------------------------------------------------------------------------------------------------
# The outcome model, measured from the files: every distinct impression with what the landing files say about its
# pair when it was shown (common connections in the graph the page was served from, region, industry, co-worker
# tenure, earlier showings and dismissals), and what the viewer did. Computed here with sets and pandas, never with
# the generator's own signal code.

OUTCOME_MEMBERS, OUTCOME_SEED = 1500, 3


def _served_graph_days(connections_by_day: dict[str, list[dict]]) -> dict[dt.date, dict[int, set[int]]]:
    """Per day, the graph its pages were served from: day one's file on day one (the initial graph), then
    every earlier day's file (a day's own new connections only count from the next day)."""
    graphs, neighbours = {}, defaultdict(set)

    def add(rows):
        for row in rows:
            neighbours[row["src"]].add(row["dst"])
            neighbours[row["dst"]].add(row["src"])

    for number, ds in enumerate(DAYS):
        if number == 0:
            add(connections_by_day[ds])
        graphs[dt.date.fromisoformat(ds)] = {member: set(friends) for member, friends in neighbours.items()}
        if number > 0:
            add(connections_by_day[ds])
    return graphs


def _overlap_days(stints_a: list[tuple], stints_b: list[tuple], today: dt.date) -> int:
    """Longest same-company tenure overlap in days, both ends inclusive, open ends at today."""
    best = 0
    for company_a, start_a, end_a in stints_a:
        for company_b, start_b, end_b in stints_b:
            if company_a == company_b:
                days = (min(end_a or today, end_b or today, today) - max(start_a, start_b)).days + 1
                best = max(best, days)
    return best


def _frame(root: Path, table: str):
    """A table's rows over all days, read with pandas (the outcome lake has no bad rows to screen out)."""
    import pandas as pd

    parts = sorted((root / "landing" / table).glob("ds=*/part-*"))
    if table in CSV_TABLES:
        return pd.concat([pd.read_csv(p, dtype={"end_date": str}, keep_default_na=False) for p in parts])
    return pd.concat([pd.read_json(p, lines=True, dtype=False, convert_dates=False) for p in parts])


@pytest.fixture(scope="module")
def outcome_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("outcomes")
    generate(root, START, len(DAYS), OUTCOME_MEMBERS, seed=OUTCOME_SEED, bad_share=0.0)
    return root


@pytest.fixture(scope="module")
def shown(outcome_root):
    import pandas as pd

    root = outcome_root
    members = _frame(root, "members").set_index("member_id")
    region, industry = members["region"].to_dict(), members["industry"].to_dict()
    stints: dict[int, dict[tuple, dt.date | None]] = defaultdict(dict)  # member -> (company, start) -> end
    for r in _frame(root, "positions").itertuples():
        end = dt.date.fromisoformat(r.end_date) if r.end_date else None
        stints[r.member_id][(r.company_id, dt.date.fromisoformat(r.start_date))] = end
    connections = {ds: [{"src": r.src, "dst": r.dst} for r in
                        pd.read_csv(p).itertuples()]
                   for ds in DAYS for p in sorted((root / "landing" / "connections" / f"ds={ds}").glob("part-*"))}
    graphs = _served_graph_days(connections)
    events = _frame(root, "events")
    events["day"] = pd.to_datetime(events["ts"]).dt.date
    acted = {kind: set(zip(events.request_id[events.event_type == kind],
                           events.candidate_id[events.event_type == kind], strict=True))
             for kind in ("click", "invite", "dismiss")}
    dismissed_on = defaultdict(list)
    for r in events[events.event_type == "dismiss"].itertuples():
        dismissed_on[(r.member_id, r.candidate_id)].append(r.day)
    impressions = (events[events.event_type == "impression"].sort_values(["ts", "event_id"])
                   .drop_duplicates(["request_id", "candidate_id"]))  # a page the client re-sent counts once
    table, times_shown = [], Counter()
    for e in impressions.itertuples():
        viewer, candidate, day = e.member_id, e.candidate_id, e.day
        graph, pair, key = graphs[day], (e.member_id, e.candidate_id), (e.request_id, e.candidate_id)
        table.append({
            "day": day, "position": e.position,
            "common": len(graph.get(viewer, set()) & graph.get(candidate, set())),
            "same_region": region[viewer] == region[candidate],
            "same_industry": industry[viewer] == industry[candidate],
            "coworker_days": _overlap_days([(c, s, end) for (c, s), end in stints[viewer].items()],
                                           [(c, s, end) for (c, s), end in stints[candidate].items()], day),
            "shown_before": times_shown[pair],
            "dismissed_before": any(d < day for d in dismissed_on[pair]),
            "clicked": key in acted["click"], "invited": key in acted["invite"], "dismissed": key in acted["dismiss"],
        })
        times_shown[pair] += 1
    return pd.DataFrame(table)


def _rate(frame, outcome: str, min_rows: int = 150) -> float:
    assert len(frame) >= min_rows, f"only {len(frame)} impressions in this group"
    return float(frame[outcome].mean())


def test_same_region_pairs_are_invited_more_than_cross_region_pairs_at_equal_common_connections(shown):
    for common in (1, 2):
        equal = shown[(shown.common == common) & ~shown.dismissed_before]
        same, cross = _rate(equal[equal.same_region], "invited"), _rate(equal[~equal.same_region], "invited")
        assert same > 1.8 * cross, (common, same, cross)


def test_more_common_connections_mean_more_invites(shown):
    cross_region = shown[~shown.same_region & ~shown.same_industry & (shown.coworker_days == 0)]
    one, several = cross_region[cross_region.common == 1], cross_region[cross_region.common >= 4]
    assert _rate(several, "invited") > 2 * _rate(one, "invited")


def test_same_industry_helps_only_pairs_with_few_common_connections(shown):
    """The interaction a linear model cannot express: same industry lifts invites at 1-2 common connections
    and does nothing from 3 up."""
    few, many = shown[shown.common.between(1, 2)], shown[shown.common >= 3]
    lift_few = _rate(few[few.same_industry], "invited") / _rate(few[~few.same_industry], "invited")
    lift_many = _rate(many[many.same_industry], "invited") / _rate(many[~many.same_industry], "invited")
    assert lift_few > 1.7, lift_few
    assert lift_many < 1.35, lift_many


def test_co_workers_are_invited_more_than_strangers_with_as_many_common_connections(shown):
    few = shown[shown.common <= 1]
    coworkers, others = few[few.coworker_days >= 365], few[few.coworker_days == 0]
    assert _rate(coworkers, "invited", min_rows=50) > 2 * _rate(others, "invited")


def test_position_one_beats_position_ten(shown):
    first, tenth = shown[shown.position == 1], shown[shown.position == 10]
    assert _rate(first, "clicked") > 2 * _rate(tenth, "clicked")
    assert _rate(first, "invited") > 1.5 * _rate(shown[shown.position >= 9], "invited")
    # the position effect saturates: the bottom of a page is flat
    assert abs(_rate(shown[shown.position == 7], "clicked") - _rate(tenth, "clicked")) < 0.025


def test_a_pair_shown_again_is_clicked_and_invited_less(shown):
    fresh, again = shown[shown.shown_before == 0], shown[shown.shown_before >= 1]
    assert _rate(again, "clicked") < 0.8 * _rate(fresh, "clicked")
    assert _rate(again, "invited") < 0.8 * _rate(fresh, "invited")


def test_a_dismissed_pair_is_rarely_invited_later(shown):
    dismissed = shown[shown.dismissed_before]
    assert _rate(dismissed, "invited", min_rows=60) < 0.2 * _rate(shown[~shown.dismissed_before], "invited")


def test_organic_new_connections_prefer_common_connections_and_one_region(outcome_root):
    """Connections of later days that are neither an accepted invite nor a newcomer's first contacts are the
    organic ones: they close triangles and stay within a region far more often than the initial graph does."""
    import pandas as pd

    members = _frame(outcome_root, "members")
    region = members.set_index("member_id")["region"].to_dict()
    connections = {ds: pd.read_csv(next((outcome_root / "landing" / "connections" / f"ds={ds}").glob("part-*")))
                   for ds in DAYS}
    graphs = _served_graph_days({ds: connections[ds].to_dict("records") for ds in DAYS})
    events = _frame(outcome_root, "events")
    accepts = events[events.event_type == "accept"]
    accepted = {frozenset(pair) for pair in zip(accepts.member_id, accepts.candidate_id, strict=True)}
    initial = {frozenset(pair) for pair in zip(connections[DAYS[0]].src, connections[DAYS[0]].dst, strict=True)}
    organic, common = set(), []
    for ds in DAYS[1:]:
        newcomers = set(_frame(outcome_root, "members").query("joined_on == @ds").member_id)
        graph = graphs[dt.date.fromisoformat(ds)]
        for src, dst in zip(connections[ds].src, connections[ds].dst, strict=True):
            pair = frozenset((src, dst))
            if pair in accepted or src in newcomers or dst in newcomers or pair in organic:
                continue
            organic.add(pair)
            common.append(len(graph.get(src, set()) & graph.get(dst, set())))
    assert len(organic) >= 100

    def same_region_share(pairs) -> float:
        return sum(region[a] == region[b] for a, b in map(tuple, pairs)) / len(pairs)

    assert same_region_share(organic) > 2 * same_region_share(initial)
    assert sum(c >= 1 for c in common) / len(common) > 0.65


def test_the_outcome_formulas_give_the_documented_values():
    """Hand-computed from the formula in `mutuals generate --help`: a stranger pair (c = 0, nothing shared) at
    position 1, and a same-region pair with 4 common connections at position 10 shown twice before."""
    import numpy as np

    from synthetic import outcomes
    from synthetic.signals import PairSignals

    def one(value, dtype):
        return np.array([value], dtype)

    stranger = outcomes.affinity(PairSignals(one(0, np.int64), one(False, bool), one(False, bool), one(0, np.int64)))
    assert stranger[0] == 0.0
    click = outcomes.click_probability(stranger, one(1, np.int64), one(0, np.int64), one(False, bool))[0]
    assert click == pytest.approx(1 / (1 + np.exp(2.6)))  # sigma(-3.7 + 0 + 1.1)
    friendly = outcomes.affinity(PairSignals(one(4, np.int64), one(True, bool), one(True, bool), one(730, np.int64)))
    assert friendly[0] == pytest.approx(2.0 * (1 - np.exp(-1)) + 0.9 + 0 + 1.2)  # industry: c > 2, no bonus
    invite = outcomes.invite_probability(friendly, one(False, bool), one(10, np.int64), one(2, np.int64),
                                         one(False, bool), one(1.3, float))[0]
    expected_logit = -5.4 + friendly[0] + 0.5 * 1.1 * np.exp(-9 / 2.5) - 0.4 * 2
    assert invite == pytest.approx(1.3 / (1 + np.exp(-expected_logit)))
