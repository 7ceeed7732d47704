"""Every transform's input check raises the one MissingColumns of the core, in the schema family (exit 4)."""

from __future__ import annotations

import pytest

from joins.candidates import with_exact_common_connections
from joins.economic import tenure_intervals
from joins.ppr import personalized_pagerank
from labelling.attribution import dedup_events
from mutuals.checks import MissingColumns, require_columns
from mutuals.errors import SchemaError
from ranking.heuristic import top_k_recommendations


def test_the_message_names_the_check_the_missing_and_the_present_columns(spark):
    frame = spark.createDataFrame([(1, 2)], "member_id long, other long")
    with pytest.raises(MissingColumns) as raised:
        require_columns(frame, ["member_id", "candidate_id"], "some_transform")
    assert str(raised.value) == ("some_transform: expected columns ['member_id', 'candidate_id'], "
                                 "missing ['candidate_id']; found ['member_id', 'other']")
    assert isinstance(raised.value, SchemaError) and raised.value.exit_code == 4


def test_joins_labelling_and_ranking_raise_the_same_class(spark):
    wrong = spark.createDataFrame([(1,)], "nobody long")
    with pytest.raises(MissingColumns, match=r"^tenure_intervals: .*missing \['member_id'"):
        wrong.transform(tenure_intervals("company_id", "2024-06-30"))
    with pytest.raises(MissingColumns, match=r"^personalized_pagerank edges: .*missing \['src', 'dst'\]"):
        personalized_pagerank(wrong, seed=1, top_k=1)
    with pytest.raises(MissingColumns, match=r"^dedup_events: .*missing \['event_id'"):
        dedup_events(wrong)
    edges = spark.createDataFrame([(1, 2)], "src long, dst long")
    with pytest.raises(MissingColumns, match=r"^with_exact_common_connections degrees: .*missing \['member_id'"):
        with_exact_common_connections(edges, wrong, "known")
    with pytest.raises(MissingColumns, match=r"^top_k_recommendations: .*missing \['member_id'"):
        wrong.transform(top_k_recommendations(3, edges))
