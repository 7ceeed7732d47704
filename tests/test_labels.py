"""Attribution and labels on tiny hand-built event logs with known answers.

Every expected value below is written by hand from the semantics in `labelling.attribution`; none is
computed by the code under test. Members: 1 is shown candidate 2 unless a test says otherwise.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from labelling.attribution import (
    Windows,
    attribute_actions,
    dedup_events,
    dedup_impressions,
    label_impressions,
    unattributed_actions,
)
from labelling.days import feature_partitions_for, first_event_day, recompute_days, required_event_days
from mutuals import errors
from mutuals.errors import DuplicateKey, GateFailed
from mutuals.lake import Lake
from mutuals.tables import EVENTS
from quality import label_gates
from quality.label_gates import (
    ImpressionVolumeOutOfBand,
    LabelGateConfig,
    LabelRateOutOfBand,
    check_labels,
)
from spark_jobs import labels as labels_job

D = "2026-01-10"
LABEL_VIEW = ["ds", "request_id", "member_id", "candidate_id", "impression_ts", "clicked", "dwell_ms",
              "valid_click", "invited", "accepted", "dismissed", "attributed_by", "provisional"]


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def ev(event_id, member, when, kind, candidate, request=None, dwell=None) -> tuple:
    """One raw event; `when` is 'YYYY-MM-DD HH:MM:SS' UTC."""
    return (event_id, member, when, kind, candidate, request, "pymk", 1, dwell)


def events_df(spark, rows: list[tuple]) -> DataFrame:
    cols = ["event_id", "member_id", "ts", "event_type", "candidate_id", "request_id", "surface", "position",
            "dwell_ms"]
    raw = spark.createDataFrame(rows, "event_id string, member_id long, ts string, event_type string, "
                                      "candidate_id long, request_id string, surface string, position int, "
                                      "dwell_ms long")
    return raw.select(*[F.col(c).cast(f.dataType) for c, f in zip(cols, EVENTS.fields, strict=True)])


def label(spark, rows: list[tuple], run_date: str = D, windows: Windows | None = None) -> DataFrame:
    windows = windows or Windows()
    events = dedup_events(events_df(spark, rows))
    impressions = dedup_impressions(events)
    attributed = events.transform(attribute_actions(impressions, windows))
    return impressions.transform(label_impressions(attributed, windows, run_date))


def unattributed(spark, rows: list[tuple]) -> DataFrame:
    events = dedup_events(events_df(spark, rows))
    attributed = events.transform(attribute_actions(dedup_impressions(events), Windows()))
    return unattributed_actions(attributed).select("ds", "event_id", "event_type", "reason")


def lbl(ds, request, member, candidate, shown, clicked=False, dwell=None, valid=False, invited=False,
        accepted=False, dismissed=False, by=None, provisional=True) -> Row:
    return Row(ds=ds, request_id=request, member_id=member, candidate_id=candidate, impression_ts=ts(shown),
               clicked=clicked, dwell_ms=dwell, valid_click=valid, invited=invited, accepted=accepted,
               dismissed=dismissed, attributed_by=by, provisional=provisional)


IMPRESSION = ev("i1", 1, f"{D} 10:00:00", "impression", 2, "r1")


def test_short_click_is_clicked_but_not_valid_until_an_invite_follows(spark):
    click = ev("c1", 1, f"{D} 10:00:05", "click", 2, "r1", dwell=2500)
    assertDataFrameEqual(
        label(spark, [IMPRESSION, click]).select(LABEL_VIEW),
        [lbl(D, "r1", 1, 2, f"{D} 10:00:00", clicked=True, dwell=2500, by="request_id")],
    )
    invite = ev("v1", 1, f"{D} 10:01:00", "invite", 2, "r1")
    assertDataFrameEqual(
        label(spark, [IMPRESSION, click, invite]).select(LABEL_VIEW),
        [lbl(D, "r1", 1, 2, f"{D} 10:00:00", clicked=True, dwell=2500, valid=True, invited=True,
             by="request_id")],
    )


def test_long_dwell_alone_makes_a_valid_click_and_dwell_is_the_largest(spark):
    rows = [IMPRESSION, ev("c1", 1, f"{D} 10:00:05", "click", 2, "r1", dwell=1000),
            ev("c2", 1, f"{D} 10:02:00", "click", 2, None, dwell=3000)]
    assertDataFrameEqual(
        label(spark, rows).select(LABEL_VIEW),
        [lbl(D, "r1", 1, 2, f"{D} 10:00:00", clicked=True, dwell=3000, valid=True, by="request_id")],
    )


def test_invite_without_request_id_credits_the_later_of_two_impressions(spark):
    rows = [
        IMPRESSION,
        ev("i2", 1, f"{D} 10:30:00", "impression", 2, "r2"),
        ev("v1", 1, f"{D} 11:00:00", "invite", 2, None),
    ]
    assertDataFrameEqual(
        label(spark, rows).select(LABEL_VIEW),
        [lbl(D, "r1", 1, 2, f"{D} 10:00:00"),
         lbl(D, "r2", 1, 2, f"{D} 10:30:00", invited=True)],
    )


def test_duplicated_impression_counts_once_keeping_the_earliest(spark):
    rows = [
        IMPRESSION,
        IMPRESSION,  # the same event delivered twice
        ev("i1-retry", 1, f"{D} 10:00:30", "impression", 2, "r1"),  # same request, pair: a re-log
        ev("c1", 1, f"{D} 10:01:00", "click", 2, "r1", dwell=4000),
    ]
    assertDataFrameEqual(
        label(spark, rows).select(LABEL_VIEW),
        [lbl(D, "r1", 1, 2, f"{D} 10:00:00", clicked=True, dwell=4000, valid=True, by="request_id")],
    )


def test_request_id_match_beats_a_later_impression_and_has_no_time_limit(spark):
    rows = [
        IMPRESSION,
        ev("i2", 1, f"{D} 10:30:00", "impression", 2, "r2"),
        ev("c1", 1, f"{D} 10:40:00", "click", 2, "r1", dwell=100),  # r1 although r2 is later
        ev("d1", 1, "2026-01-12 09:00:00", "dismiss", 2, "r1"),  # two days later, still r1
    ]
    assertDataFrameEqual(
        label(spark, rows, run_date="2026-01-12").select(LABEL_VIEW),
        [lbl(D, "r1", 1, 2, f"{D} 10:00:00", clicked=True, dwell=100, dismissed=True, by="request_id"),
         lbl(D, "r2", 1, 2, f"{D} 10:30:00")],
    )


def test_timestamp_ties_go_to_the_smaller_request_id_and_last_touch_is_24h(spark):
    rows = [
        ev("i9", 1, f"{D} 10:00:00", "impression", 2, "rB"),
        ev("i8", 1, f"{D} 10:00:00", "impression", 2, "rA"),
        ev("c1", 1, f"{D} 10:05:00", "click", 2, None, dwell=5000),  # tie: rA wins
        ev("c2", 1, "2026-01-11 10:00:01", "click", 2, None),  # 24 h + 1 s later: unattributed
        ev("c3", 1, f"{D} 09:00:00", "click", 2, None),  # before any impression: unattributed
    ]
    assertDataFrameEqual(
        label(spark, rows).select(LABEL_VIEW),
        [lbl(D, "rA", 1, 2, f"{D} 10:00:00", clicked=True, dwell=5000, valid=True, by="last_touch"),
         lbl(D, "rB", 1, 2, f"{D} 10:00:00")],
    )
    assertDataFrameEqual(
        unattributed(spark, rows),
        [Row(ds="2026-01-11", event_id="c2", event_type="click", reason="no_impression"),
         Row(ds=D, event_id="c3", event_type="click", reason="no_impression")],
    )


def test_accept_is_credited_through_the_latest_invite_to_its_impression(spark):
    rows = [
        IMPRESSION,
        ev("v1", 1, f"{D} 10:01:00", "invite", 2, "r1"),
        ev("a1", 2, "2026-01-13 08:00:00", "accept", 1, None),  # invitee 2 accepts inviter 1
        # member 3 is shown 4 and invites 8 days later by request id: attributed, outside the 7-day window
        ev("i3", 3, f"{D} 12:00:00", "impression", 4, "r3"),
        ev("v3", 3, "2026-01-18 12:00:01", "invite", 4, "r3"),
        ev("a3", 4, "2026-01-18 13:00:00", "accept", 3, None),
        # an accept with no invite, and an invite/accept pair without any impression
        ev("a5", 5, f"{D} 12:00:00", "accept", 6, None),
        ev("v7", 7, f"{D} 12:00:00", "invite", 8, None),
        ev("a7", 8, f"{D} 13:00:00", "accept", 7, None),
        # an accept 14 days + 1 s after the invite to it: the invite is out of the window
        ev("i9", 9, f"{D} 12:00:00", "impression", 10, "r9"),
        ev("v9", 9, f"{D} 12:00:01", "invite", 10, "r9"),
        ev("a9", 10, "2026-01-24 12:00:02", "accept", 9, None),
    ]
    assertDataFrameEqual(
        label(spark, rows, run_date="2026-01-24").select(LABEL_VIEW),
        [lbl(D, "r1", 1, 2, f"{D} 10:00:00", invited=True, accepted=True),
         lbl(D, "r3", 3, 4, f"{D} 12:00:00"),
         lbl(D, "r9", 9, 10, f"{D} 12:00:00", invited=True)],
    )
    assertDataFrameEqual(
        unattributed(spark, rows),
        [Row(ds=D, event_id="a5", event_type="accept", reason="no_invite"),
         Row(ds=D, event_id="v7", event_type="invite", reason="no_impression"),
         Row(ds=D, event_id="a7", event_type="accept", reason="invite_unattributed"),
         Row(ds="2026-01-24", event_id="a9", event_type="accept", reason="no_invite")],
    )


def test_a_row_is_provisional_until_every_window_closed_by_the_run_date(spark):
    # with the default 7 + 14 days the windows close 2026-01-31 10:00: the end of 01-31 is after, 01-30's not
    assert label(spark, [IMPRESSION], "2026-01-30").first()["provisional"] is True
    assert label(spark, [IMPRESSION], "2026-01-31").first()["provisional"] is False


# ------------------------------------------------------------------------------------- gates, on frames
def test_gates_reject_a_rate_out_of_band_and_a_volume_drop(spark):
    # 10 impressions on each of three trailing days, 2 on the run day; every impression clicked
    rows = [ev(f"i{d}{k}", k, f"2026-01-{d:02d} 10:00:00", "impression", 100, f"r{d}{k}")
            for d in (7, 8, 9) for k in range(10)]
    rows += [ev(f"i10{k}", k, f"{D} 10:00:00", "impression", 100, f"r10{k}") for k in range(2)]
    rows += [ev(f"c{r[0]}", r[1], r[2].replace("10:00:00", "10:00:01"), "click", 100, r[5])
             for r in list(rows)]
    labels = label(spark, rows)
    impressions = dedup_impressions(dedup_events(events_df(spark, rows)))
    wide = LabelGateConfig(rate_bands={**LabelGateConfig().rate_bands, "clicked": (0.0, 1.0)}, min_rows_for_rates=1,
                           min_impressions_for_volume=1)
    with pytest.raises(ImpressionVolumeOutOfBand, match=r"found 2 against a mean of 10.0 over 3 days"):
        check_labels(labels, impressions, D, wide, suite="t_volume")
    narrow = LabelGateConfig(min_rows_for_rates=5, volume_band=(0.0, 9.0))
    with pytest.raises(LabelRateOutOfBand, match=r"clicked rate expected within \[0.001, 0.6\].*1.0000"):
        check_labels(labels, impressions, D, narrow, suite="t_rates")
    unjudged = LabelGateConfig(min_rows_for_rates=11, volume_band=(0.1, 2.0))
    figures = check_labels(labels, impressions, D, unjudged, suite="t_pass")
    expected_volume = {"day_impressions": 2, "trailing_mean": 10.0, "trailing_days": 3, "ratio": 0.2}
    assert figures["volume"] == expected_volume
    with pytest.raises(DuplicateKey, match=r"found rows sharing a key per day: \{'2026-01-10': 2\}"):
        check_labels(labels.unionByName(labels.where(F.col("ds") == D)), impressions, D, unjudged,
                     suite="t_keys")


def daily_impressions(spark, per_day: dict[str, int]) -> tuple[DataFrame, DataFrame]:
    """Labels and deduplicated impressions for `per_day` distinct impressions on each day, nothing else."""
    rows = [ev(f"i{day}-{k}", k, f"{day} 10:00:00", "impression", 100_000 + k, f"r{day}-{k}")
            for day, n in per_day.items() for k in range(n)]
    return label(spark, rows), dedup_impressions(dedup_events(events_df(spark, rows)))


def test_label_gate_errors_belong_to_the_gate_failed_family():
    assert issubclass(GateFailed, errors.GateFailed)
    assert ImpressionVolumeOutOfBand("x").exit_code == 5 and LabelRateOutOfBand("x").exit_code == 5


def test_label_gates_use_the_core_families_only():
    """One class per concept: the gate family is the core's, and a repeated key is the core's DuplicateKey."""
    assert label_gates.GateFailed is errors.GateFailed
    assert label_gates.DuplicateKey is errors.DuplicateKey
    assert DuplicateKey("x").exit_code == 3 and label_gates.SampleCountMismatch("x").exit_code == 5


def test_a_run_owns_the_lookback_days_and_reads_the_attribution_history():
    assert recompute_days("2026-01-10", 3) == ["2026-01-07", "2026-01-08", "2026-01-09", "2026-01-10"]
    assert recompute_days("2026-03-01", 1) == ["2026-02-28", "2026-03-01"]
    with pytest.raises(ValueError, match="--lookback-days must be >= 0, found -1"):
        recompute_days("2026-01-10", -1)
    # 14 accept days + 24 h last touch = 15 days before the first label day
    assert first_event_day(["2026-01-07", "2026-01-10"], Windows()) == "2025-12-23"
    assert first_event_day(["2026-01-07"], Windows(last_touch_hours=25, accept_window_days=1)) == "2026-01-04"


def test_required_event_days_start_at_the_first_ingested_day():
    days = ["2026-01-07", "2026-01-08", "2026-01-09", "2026-01-10"]
    assert required_event_days("2026-01-10", days, "2026-01-09") == ["2026-01-09", "2026-01-10"]
    assert required_event_days("2026-01-10", days, "2026-01-01") == days
    assert required_event_days("2026-01-10", days, None) == ["2026-01-10"]


def test_feature_partitions_are_the_newest_before_each_sample_day():
    published = ["2026-01-05", "2026-01-06", "2026-01-08", "2026-01-10"]
    assert feature_partitions_for(published, ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-09"]) == [
        "2026-01-05", "2026-01-06", "2026-01-08"]
    assert feature_partitions_for([], ["2026-01-05"]) == []


def test_a_small_day_is_not_judged_for_volume(spark):
    labels, impressions = daily_impressions(spark, {"2026-01-08": 1, "2026-01-09": 1, D: 5})
    figures = check_labels(labels, impressions, D, LabelGateConfig(), suite="t_small_day")
    assert figures["volume"] == {"day_impressions": 5, "trailing_mean": 1.0, "trailing_days": 2, "ratio": 5.0}
    assert figures["volume_rule"] == (
        "volume band: not judged, found 5 against a mean of 1.0 over 2 days (ratio 5); the trailing mean is "
        "below the floor of 100 impressions")


@pytest.mark.parametrize("today, ratio", [(1000, "6.67"), (5, "0.0333")])
def test_a_day_far_out_of_band_against_a_real_baseline_fails_naming_the_rule(spark, today, ratio):
    # 150 impressions on each of three trailing days: a baseline above the default floor of 100
    per_day = {"2026-01-07": 150, "2026-01-08": 150, "2026-01-09": 150, D: today}
    labels, impressions = daily_impressions(spark, per_day)
    volume_only = LabelGateConfig(min_rows_for_rates=10_000)
    expected = (rf"volume band: impressions on {D} expected within \[0.5, 2.0\] x the trailing mean, found "
                rf"{today} against a mean of 150.0 over 3 days \(ratio {ratio}\); judged because the trailing "
                r"mean 150.0 >= floor 100")
    with pytest.raises(ImpressionVolumeOutOfBand, match=expected):
        check_labels(labels, impressions, D, volume_only, suite="t_big_day")


def test_a_rate_band_message_names_its_floor_and_the_days_it_did_not_judge(spark):
    labels, impressions = daily_impressions(spark, {"2026-01-09": 3, D: 4})
    config = LabelGateConfig(min_rows_for_rates=4)
    expected = (r"rate band, judged on days with >= 4 impressions: clicked rate expected within \[0.001, 0.6\], "
                rf"found ds={D}: 0.0000 over 4 impressions; not judged below the floor: ds=2026-01-09 \(3\)")
    with pytest.raises(LabelRateOutOfBand, match=expected):
        check_labels(labels, impressions, D, config, suite="t_rate_rule")


# ---------------------------------------------------------------------------------------- the job itself
def run_labels(spark, lake_root: str, date: str, *extra: str) -> dict:
    args = labels_job.build_parser().parse_args(["--date", date, "--lake", lake_root, "--min-rows-for-rates",
                                                 "1000", "--volume-band", "0:10", *extra])
    return labels_job.run(spark, args)


def land(spark, lake: Lake, landing_ds: str, rows: list[tuple]) -> None:
    """Write and publish one raw/events day, as ingest would."""
    lake.write_partition(events_df(spark, rows), "raw/events", landing_ds)
    lake.publish_tables(spark, "ingest", [landing_ds], ["raw/events"])


def test_a_click_a_day_late_changes_the_earlier_day_after_the_next_run(spark, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    land(spark, lake, D, [IMPRESSION, IMPRESSION, ev("x1", 5, f"{D} 11:00:00", "click", 6, None)])
    run_labels(spark, lake.root, D)
    first = lbl(D, "r1", 1, 2, f"{D} 10:00:00")
    assertDataFrameEqual(lake.read(spark, "labels/impressions").select(LABEL_VIEW), [first])

    land(spark, lake, "2026-01-11", [ev("c1", 1, f"{D} 23:59:00", "click", 2, "r1", dwell=9000)])
    late = lbl(D, "r1", 1, 2, f"{D} 10:00:00", clicked=True, dwell=9000, valid=True, by="request_id")
    run_labels(spark, lake.root, "2026-01-11")  # rewrites ds=D: one row, never a second copy
    assertDataFrameEqual(lake.read(spark, "labels/impressions").select(LABEL_VIEW), [late])
    assertDataFrameEqual(
        lake.read(spark, "labels/unattributed").select("ds", "event_id", "reason"),
        [Row(ds=D, event_id="x1", reason="no_impression")],
    )

    # a failed gate raises and leaves the published partitions as they were
    land(spark, lake, "2026-01-12", [ev("i2", 1, "2026-01-12 10:00:00", "impression", 3, "r2")])
    with pytest.raises(LabelRateOutOfBand):
        run_labels(spark, lake.root, "2026-01-12", "--min-rows-for-rates", "1",
                   "--rate-band", "clicked=0.9:1.0")
    assertDataFrameEqual(lake.read(spark, "labels/impressions").select(LABEL_VIEW), [late])


# ------------------------------------------------------------------ an independent reference, plain Python
def reference_labels(rows: list[tuple], run_date: str, w: Windows) -> list[Row]:
    """The issue's semantics written again, directly and slowly, in plain Python (no code shared with
    `labelling.attribution`). Events are `ev` tuples; exact duplicates only share an event_id."""
    events = list({r[0]: r for r in rows}.values())
    at = {r[0]: ts(r[2]) for r in events}
    showings: dict[tuple, tuple] = {}
    for r in sorted((r for r in events if r[3] == "impression"), key=lambda r: (at[r[0]], r[0])):
        showings.setdefault((r[1], r[4], r[5] if r[5] is not None else at[r[0]]), r)
    impressions = list(showings.values())

    def credited(action: tuple) -> tuple[tuple | None, str | None]:
        before = [i for i in impressions if (i[1], i[4]) == (action[1], action[4]) and at[i[0]] <= at[action[0]]]
        same_request = [i for i in before if action[5] is not None and i[5] == action[5]]
        if same_request:
            return same_request[0], "request_id"
        recent = [i for i in before if at[i[0]] >= at[action[0]] - dt.timedelta(hours=w.last_touch_hours)]
        if not recent:
            return None, None
        latest = max(at[i[0]] for i in recent)
        tied = sorted((i for i in recent if at[i[0]] == latest), key=lambda i: (i[5] is None, i[5] or "", i[0]))
        return tied[0], "last_touch"

    actions = {r[0]: (r, *credited(r)) for r in events if r[3] in ("click", "invite", "dismiss")}
    invites = [a for a in actions.values() if a[0][3] == "invite"]
    accepted_invites = set()
    for acc in (r for r in events if r[3] == "accept"):
        window = [v for v in invites if v[0][1] == acc[4] and v[0][4] == acc[1]
                  and at[acc[0]] - dt.timedelta(days=w.accept_window_days) <= at[v[0][0]] <= at[acc[0]]]
        if window:
            latest = max(at[v[0][0]] for v in window)
            accepted_invites.add(min(v[0][0] for v in window if at[v[0][0]] == latest))
    horizon = dt.datetime.fromisoformat(run_date) + dt.timedelta(days=1)
    out = []
    for imp in impressions:
        shown = at[imp[0]]
        mine = [a for a in actions.values() if a[1] is imp]
        clicks = sorted((a for a in mine if a[0][3] == "click"), key=lambda a: (at[a[0][0]], a[0][0]))
        dwells = [a[0][8] for a in clicks if a[0][8] is not None]
        window_invites = [a for a in mine if a[0][3] == "invite"
                          and at[a[0][0]] <= shown + dt.timedelta(days=w.invite_window_days)]
        dwell = max(dwells) if dwells else None
        out.append(lbl(
            imp[2][:10], imp[5], imp[1], imp[4], imp[2], clicked=bool(clicks), dwell=dwell,
            valid=bool(clicks) and ((dwell is not None and dwell >= w.valid_dwell_ms) or bool(window_invites)),
            invited=bool(window_invites),
            accepted=any(v[0][0] in accepted_invites for v in window_invites),
            dismissed=any(a[0][3] == "dismiss" for a in mine),
            by=clicks[0][2] if clicks else None,
            provisional=horizon < shown + dt.timedelta(days=w.invite_window_days + w.accept_window_days),
        ))
    return out


def random_log(seed: int, n: int) -> list[tuple]:
    """A dense, seeded log over 4 members on coarse 2-hour ticks, so requests collide, timestamps tie,
    last-touch windows overlap and events repeat."""
    import random

    rnd = random.Random(seed)
    kinds = ["impression"] * 5 + ["click"] * 3 + ["invite"] * 2 + ["accept"] * 2 + ["dismiss"]
    rows = []
    for k in range(n):
        member, candidate = rnd.sample([1, 2, 3, 4], 2)
        moment = dt.datetime(2026, 1, 9) + dt.timedelta(hours=2 * rnd.randrange(0, 24))
        rows.append(ev(f"e{k:03d}", member, moment.isoformat(sep=" "), rnd.choice(kinds), candidate,
                       rnd.choice(["r1", "r2", "r3", None]), rnd.choice([None, 1000, 3000, 8000])))
    return rows + rnd.sample(rows, n // 10)


@pytest.mark.parametrize("seed", [11, 12])
def test_labels_equal_an_independent_reference_on_a_dense_random_log(spark, seed):
    rows = random_log(seed, 160)
    windows = Windows(last_touch_hours=6, invite_window_days=1, accept_window_days=1)
    expected = reference_labels(rows, "2026-01-11", windows)
    assert sum(r.clicked for r in expected) > 5 and sum(r.accepted for r in expected) > 0
    assertDataFrameEqual(label(spark, rows, "2026-01-11", windows).select(LABEL_VIEW), expected)
