"""The stats engine (reports.stats) against GrowthBook's published test values and against scipy.

Published values come from growthbook/growthbook at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469; each
test names the GrowthBook test it copies. Values that GrowthBook publishes rounded (to 5 or 9 decimals) are
asserted to half a unit of their last decimal, that is, our value rounds to theirs; values published at
full precision, and every comparison with scipy, are asserted to 1e-6.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mutuals.errors import UsageError
from reports.stats import (
    ArmStats,
    StatsInputInvalid,
    analyze,
    benjamini_hochberg,
    cuped_arm,
    cuped_theta,
    holm_bonferroni,
    ratio_moments,
    srm_p_value,
)

TOL = 1e-6


def assert_published(actual: float | None, published: float, decimals: int) -> None:
    """`actual` rounds to the value GrowthBook published with `decimals` decimals."""
    assert actual is not None
    assert abs(actual - published) <= 0.5 * 10.0**-decimals + 1e-12, (actual, published)


def assert_close(actual: float | None, expected: float, tol: float = TOL) -> None:
    assert actual is not None
    assert abs(actual - expected) <= tol, (actual, expected)


def two_variants(units: tuple[int, int] = (1000, 1000)) -> list[dict]:
    return [{"name": "control", "weight": 0.5, "units": units[0]},
            {"name": "treatment", "weight": 0.5, "units": units[1]}]


def one_metric(kind: str, control: dict, treatment: dict, alpha: float = 0.05, goal: bool = True) -> dict:
    """The single result row of a two-variant spec with one metric."""
    spec = {"alpha": alpha, "correction": "none", "variants": two_variants(),
            "metrics": [{"name": "m", "kind": kind, "goal": goal,
                         "stats": {"control": control, "treatment": treatment}}]}
    (row,) = analyze(spec)["results"]
    return row


def mean_stats(values: np.ndarray) -> dict:
    return {"n": len(values), "sum": float(values.sum()), "sum_squares": float((values**2).sum())}


# gbstats tests/frequentist/test_tests.py: TestTwoSidedTTest.setUp
GB_CONTROL = {"n": 3407, "sum": 1396.87, "sum_squares": 52377.9767}
GB_TREATMENT = {"n": 3461, "sum": 2422.7, "sum_squares": 134698.29}
# gbstats tests/frequentist/test_tests.py: TestOneSidedGreaterTTest.setUp / TestOneSidedLesserTTest.setUp
GB_CONTROL_3000 = {"n": 3000, "sum": 1396.87, "sum_squares": 52377.9767}


# ----------------------------------------------------------------------------------------------------------
# Welch t-test, absolute and relative (gbstats TwoSidedTTest)


def test_relative_ttest_matches_gbstats_test_two_sided_ttest():
    # gbstats tests/frequentist/test_tests.py::TestTwoSidedTTest::test_two_sided_ttest
    row = one_metric("mean", GB_CONTROL, GB_TREATMENT)
    assert_published(row["relative"]["estimate"], 0.70732, 5)
    assert_published(row["relative"]["ci"][0], -0.03526, 5)
    assert_published(row["relative"]["ci"][1], 1.44989, 5)
    assert_published(row["relative"]["p_value"], 0.06191, 5)
    # uplift.stddev 0.37879: the CI half-width over the t quantile is the standard error
    half_width = (row["relative"]["ci"][1] - row["relative"]["ci"][0]) / 2
    dof = welch_dof_by_hand(GB_CONTROL, GB_TREATMENT)
    assert_published(half_width / scipy_stats.t.ppf(0.975, dof), 0.37879, 5)


def welch_dof_by_hand(a: dict, b: dict) -> float:
    """Welch-Satterthwaite written out from the sums, independently of the engine."""
    va = (a["sum_squares"] - a["sum"] ** 2 / a["n"]) / (a["n"] - 1) / a["n"]
    vb = (b["sum_squares"] - b["sum"] ** 2 / b["n"]) / (b["n"] - 1) / b["n"]
    return (va + vb) ** 2 / (va**2 / (a["n"] - 1) + vb**2 / (b["n"] - 1))


def test_absolute_ttest_matches_gbstats_test_two_sided_ttest_absolute():
    # gbstats tests/frequentist/test_tests.py::TestTwoSidedTTest::test_two_sided_ttest_absolute
    row = one_metric("mean", GB_CONTROL, GB_TREATMENT)
    assert_published(row["absolute"]["estimate"], 0.29, 5)
    assert_published(row["absolute"]["ci"][0], 0.04538, 5)
    assert_published(row["absolute"]["ci"][1], 0.53462, 5)
    assert_published(row["absolute"]["p_value"], 0.02016, 5)
    assert_published(row["control_mean"], 0.41, 9)
    assert_published(row["variant_mean"], 0.7, 9)


def test_proportion_matches_gbstats_test_two_sided_ttest_binom():
    # gbstats tests/frequentist/test_tests.py::TestTwoSidedTTest::test_two_sided_ttest_binom
    row = one_metric("proportion", {"n": 28, "sum": 14}, {"n": 30, "sum": 16})
    assert_published(row["relative"]["estimate"], round((16 / 30 - 0.5) / 0.5, 5), 5)
    assert_published(row["relative"]["ci"][0], -0.47767, 5)
    assert_published(row["relative"]["ci"][1], 0.61101, 5)
    assert_published(row["relative"]["p_value"], 0.80707, 5)


@pytest.mark.parametrize(("difference", "estimate", "lower", "upper", "one_sided_p"), [
    # gbstats tests/frequentist/test_tests.py::TestOneSidedGreaterTTest::test_one_sided_ttest (lower, p) and
    # ::TestOneSidedLesserTTest::test_one_sided_ttest (upper)
    ("relative", 0.5033610858562358, -0.045136675850396046, 1.0518588475628676, 0.06558262868467746),
    # ...::test_one_sided_ttest_absolute of both classes
    ("absolute", 0.23437666666666668, 0.020791480063255735, 0.44796185327007765, 0.03554272489873023),
])
def test_two_sided_at_alpha_010_matches_gbstats_one_sided_tests_at_005(difference, estimate, lower, upper,
                                                                        one_sided_p):
    # A two-sided CI at alpha = 0.10 has the bounds of the two one-sided CIs at 0.05, and a two-sided p-value
    # is twice the one-sided one; gbstats publishes these at full precision.
    row = one_metric("mean", GB_CONTROL_3000, GB_TREATMENT, alpha=0.10)
    assert_close(row[difference]["estimate"], estimate)
    assert_close(row[difference]["ci"][0], lower)
    assert_close(row[difference]["ci"][1], upper)
    assert_close(row[difference]["p_value"], 2 * one_sided_p)


def test_count_metric_matches_gbstats_test_get_metric_dfs_frequentist():
    # gbstats tests/test_gbstats.py::TestAnalyzeMetricDfFrequentist::test_get_metric_dfs_frequentist
    row = one_metric("mean", {"n": 100, "sum": 270, "sum_squares": 848.79}, {"n": 120, "sum": 300, "sum_squares": 869})
    assert_published(row["control_mean"], 2.7, 9)
    assert_published(row["variant_mean"], 2.5, 9)
    assert_published(row["relative"]["estimate"], -0.074074074, 9)
    assert_published(row["relative"]["p_value"], 0.145219005, 9)


@pytest.mark.parametrize(("control", "treatment"), [
    (GB_CONTROL, GB_TREATMENT),
    ({"n": 100, "sum": 270, "sum_squares": 848.79}, {"n": 120, "sum": 300, "sum_squares": 869}),
])
def test_absolute_p_value_matches_scipy_welch(control, treatment):
    row = one_metric("mean", control, treatment)
    sd = {k: math.sqrt((s["sum_squares"] - s["sum"] ** 2 / s["n"]) / (s["n"] - 1))
          for k, s in (("a", control), ("b", treatment))}
    expected = scipy_stats.ttest_ind_from_stats(treatment["sum"] / treatment["n"], sd["b"], treatment["n"],
                                                control["sum"] / control["n"], sd["a"], control["n"], equal_var=False)
    assert_close(row["absolute"]["p_value"], float(expected.pvalue))


def test_proportion_p_value_matches_scipy_welch_with_bernoulli_variance():
    row = one_metric("proportion", {"n": 28, "sum": 14}, {"n": 30, "sum": 16})
    p_a, p_b = 14 / 28, 16 / 30
    expected = scipy_stats.ttest_ind_from_stats(p_b, math.sqrt(p_b * (1 - p_b)), 30, p_a,
                                                math.sqrt(p_a * (1 - p_a)), 28, equal_var=False)
    assert_close(row["absolute"]["p_value"], float(expected.pvalue))


def test_welch_dof_and_ci_match_scipy_on_raw_data():
    rng = np.random.default_rng(7)
    control, treatment = rng.gamma(2.0, 1.5, size=40), rng.gamma(2.5, 1.5, size=55)
    row = one_metric("mean", mean_stats(control), mean_stats(treatment), alpha=0.05)
    expected = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    ci = expected.confidence_interval(0.95)
    assert_close(row["absolute"]["p_value"], float(expected.pvalue))
    assert_close(row["absolute"]["ci"][0], float(ci.low))
    assert_close(row["absolute"]["ci"][1], float(ci.high))
    # the relative test uses the same Welch df: its half-width over its standard error is t_{0.975, df}
    mean_a, mean_b = control.mean(), treatment.mean()
    se_rel = math.sqrt(treatment.var(ddof=1) / len(treatment) / mean_a**2
                       + control.var(ddof=1) / len(control) * mean_b**2 / mean_a**4)
    half_width = (row["relative"]["ci"][1] - row["relative"]["ci"][0]) / 2
    assert_close(half_width / se_rel, float(scipy_stats.t.ppf(0.975, expected.df)))


# ----------------------------------------------------------------------------------------------------------
# Ratio metrics (delta method with the numerator-denominator covariance)


RATIO_CONTROL = {"n": 100, "sum": 270, "sum_squares": 848.79, "denominator_sum": 510,
                 "denominator_sum_squares": 810, "sum_products": -900}
RATIO_TREATMENT = {"n": 120, "sum": 300, "sum_squares": 869, "denominator_sum": 500,
                   "denominator_sum_squares": 800, "sum_products": -905}


def test_ratio_matches_gbstats_test_get_metric_dfs_frequentist_ratio():
    # gbstats tests/test_gbstats.py::TestAnalyzeMetricDfFrequentist::test_get_metric_dfs_frequentist_ratio
    row = one_metric("ratio", RATIO_CONTROL, RATIO_TREATMENT)
    assert_published(row["control_mean"], 0.529411765, 9)
    assert_published(row["variant_mean"], 0.6, 9)
    assert_published(row["relative"]["estimate"], 0.133333333, 9)
    assert_published(row["relative"]["p_value"], 0.610663339, 9)


def test_ratio_variance_is_the_variance_of_the_linearized_units():
    # The delta-method variance of sum(M)/sum(D) per unit is the sample variance of (M_i - R D_i) / mean(D).
    rng = np.random.default_rng(11)
    impressions = rng.poisson(8, size=300) + 1.0
    clicks = rng.binomial(impressions.astype(int), 0.2).astype(float)
    arm = ArmStats(n=300, sum=clicks.sum(), sum_squares=(clicks**2).sum(), denominator_sum=impressions.sum(),
                   denominator_sum_squares=(impressions**2).sum(), sum_products=(clicks * impressions).sum())
    moments = ratio_moments(arm)
    ratio = clicks.sum() / impressions.sum()
    assert_close(moments.mean, ratio, 1e-12)
    assert_close(moments.variance, float(np.var((clicks - ratio * impressions) / impressions.mean(), ddof=1)), 1e-9)


# ----------------------------------------------------------------------------------------------------------
# CUPED


RA_CONTROL = {"n": 3001, "sum": 300, "sum_squares": 600, "covariate_sum": 210, "covariate_sum_squares": 415,
              "sum_products_covariate": -20}
RA_TREATMENT = {"n": 3000, "sum": 222, "sum_squares": 555, "covariate_sum": 120, "covariate_sum_squares": 405,
                "sum_products_covariate": -10}


def test_cuped_mean_matches_gbstats_test_analyze_metric_df_ra():
    # gbstats tests/test_gbstats.py::TestAnalyzeMetricDfRegressionAdjustment::test_analyze_metric_df_ra
    row = one_metric("mean", RA_CONTROL, RA_TREATMENT)
    assert_published(row["control_mean"], 0.099966678, 9)
    assert_published(row["variant_mean"], 0.074, 9)
    assert_published(row["relative"]["estimate"], -0.281707154, 9)
    assert_published(row["relative"]["p_value"], 0.003732549, 9)


def test_cuped_proportion_matches_gbstats_test_analyze_metric_df_ra_proportion():
    # gbstats tests/test_gbstats.py::TestAnalyzeMetricDfRegressionAdjustment::test_analyze_metric_df_ra_proportion
    strip = ("sum_squares", "covariate_sum_squares")
    control = {k: v for k, v in RA_CONTROL.items() if k not in strip}
    treatment = {k: v for k, v in RA_TREATMENT.items() if k not in strip}
    row = one_metric("proportion", control, treatment)
    assert_published(row["control_mean"], 0.099966678, 9)
    assert_published(row["relative"]["estimate"], -0.31620216, 9)
    assert_published(row["relative"]["p_value"], 0.000000353, 9)


def _arm(stats: dict) -> ArmStats:
    return ArmStats(**stats)


def test_cuped_adjusted_stddevs_match_gbstats_test_three_armed_cuped_baseline_stats_hardcoded():
    # gbstats tests/test_gbstats.py::TestThreeArmedCuped::test_three_armed_cuped_baseline_stats_hardcoded:
    # theta is estimated per (control, variant) pair; gbstats reports the baseline's stddev from the last pair.
    zero, one = _arm(RA_CONTROL), _arm(RA_TREATMENT)
    two = ArmStats(n=4000, sum=450, sum_squares=900, covariate_sum=300, covariate_sum_squares=600,
                   sum_products_covariate=-30)
    theta_01, theta_02 = cuped_theta(zero, one, False), cuped_theta(zero, two, False)
    assert_published(math.sqrt(cuped_arm(one, False).adjusted(theta_01).variance), 0.423529598, 9)
    assert_published(math.sqrt(cuped_arm(two, False).adjusted(theta_02).variance), 0.458953951, 9)
    assert_published(math.sqrt(cuped_arm(zero, False).adjusted(theta_02).variance), 0.434288923, 9)


def test_cuped_theta_matches_gbstats_test_returns_0_no_variance():
    # gbstats tests/test_shared_models.py::TestComputeTheta::test_returns_0_no_variance (pre = METRIC_1,
    # post = METRIC_3, the same in both variants)
    pre, post = np.array([0.3, 0.5, 0.9, 22]), np.array([2, 1, 5, 3])
    arm = ArmStats(n=4, sum=post.sum(), sum_squares=(post**2).sum(), covariate_sum=pre.sum(),
                   covariate_sum_squares=(pre**2).sum(), sum_products_covariate=(pre * post).sum())
    assert_published(cuped_theta(arm, arm, False), 0.01864, 5)
    no_pre = ArmStats(n=4, sum=post.sum(), sum_squares=(post**2).sum(), covariate_sum=0.0,
                      covariate_sum_squares=0.0, sum_products_covariate=0.0)
    assert cuped_theta(no_pre, no_pre, False) == 0


def test_cuped_absolute_test_is_welch_on_the_adjusted_values():
    # With theta from the pooled data, CUPED's absolute test is Welch's test on y - theta * x.
    rng = np.random.default_rng(3)
    x_a, x_b = rng.poisson(4, size=500).astype(float), rng.poisson(4, size=450).astype(float)
    y_a = 0.8 * x_a + rng.normal(0, 1, size=500)
    y_b = 0.8 * x_b + 0.3 + rng.normal(0, 1, size=450)
    x, y = np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b])
    theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)

    def cuped_stats(ys: np.ndarray, xs: np.ndarray) -> dict:
        return {**mean_stats(ys), "covariate_sum": float(xs.sum()), "covariate_sum_squares": float((xs**2).sum()),
                "sum_products_covariate": float((xs * ys).sum())}

    row = one_metric("mean", cuped_stats(y_a, x_a), cuped_stats(y_b, x_b))
    expected = scipy_stats.ttest_ind(y_b - theta * x_b, y_a - theta * x_a, equal_var=False)
    ci = expected.confidence_interval(0.95)
    assert_close(row["absolute"]["estimate"], float((y_b - theta * x_b).mean() - (y_a - theta * x_a).mean()))
    assert_close(row["absolute"]["p_value"], float(expected.pvalue))
    assert_close(row["absolute"]["ci"][0], float(ci.low))
    assert_close(row["absolute"]["ci"][1], float(ci.high))
    assert_close(row["control_mean"], float(y_a.mean()))
    # CUPED narrows the CI compared with the same data without the covariate
    plain = one_metric("mean", mean_stats(y_a), mean_stats(y_b))
    assert row["absolute"]["ci"][1] - row["absolute"]["ci"][0] < plain["absolute"]["ci"][1] - plain["absolute"]["ci"][0]


# ----------------------------------------------------------------------------------------------------------
# CUPED on ratio metrics (gbstats RegressionAdjustedRatioStatistic)


# gbstats tests/frequentist/test_tests.py::TestTwoSidedTTest::test_two_sided_ttest_test_runs_ratio_ra (gbstats
# argument -> our field: m_statistic_post -> sum, sum_squares; d_statistic_post -> denominator_sum(_squares);
# m_statistic_pre -> covariate_sum(_squares); d_statistic_pre -> denominator_pre_sum(_squares);
# m_post_d_post -> sum_products; m_post_m_pre -> sum_products_covariate; the other products keep gbstats' column
# names: m_pre_d_pre -> main_pre_denominator_pre_sum_product, m_post_d_pre -> main_post_denominator_pre_sum_product,
# m_pre_d_post -> main_pre_denominator_post_sum_product, d_post_d_pre -> denominator_post_denominator_pre_sum_product)
RATIO_RA_CONTROL = {
    "n": 100, "sum": 485.112236689623, "sum_squares": 2715.484666118136, "denominator_sum": 679.9093275844917,
    "denominator_sum_squares": 4939.424001640236, "sum_products": 3602.146836776702,
    "covariate_sum": 192.59138069991536, "covariate_sum_squares": 460.076026390857,
    "sum_products_covariate": 1113.6215759318352, "denominator_pre_sum": 290.1398399750233,
    "denominator_pre_sum_squares": 920.9461385038898, "main_pre_denominator_pre_sum_product": 634.239482353647,
    "main_post_denominator_pre_sum_product": 1559.2878434944676,
    "main_pre_denominator_post_sum_product": 1460.3181079276983,
    "denominator_post_denominator_pre_sum_product": 2130.9404074446747,
}
RATIO_RA_TREATMENT = {
    "n": 100, "sum": 514.7757826608777, "sum_squares": 2994.897482705013, "denominator_sum": 705.4090874383759,
    "denominator_sum_squares": 5291.36604146392, "sum_products": 3918.1561431600717,
    "covariate_sum": 206.94157227402536, "covariate_sum_squares": 514.2903702246757,
    "sum_products_covariate": 1237.0953021125997, "denominator_pre_sum": 302.54389139107326,
    "denominator_pre_sum_squares": 994.4506208125663, "main_pre_denominator_pre_sum_product": 698.4173425817908,
    "main_post_denominator_pre_sum_product": 1701.0287270040265,
    "main_pre_denominator_post_sum_product": 1604.0759503266522,
    "denominator_post_denominator_pre_sum_product": 2292.081739775257,
}


def test_ratio_cuped_matches_gbstats_test_two_sided_ttest_test_runs_ratio_ra():
    # gbstats tests/frequentist/test_tests.py::TestTwoSidedTTest::test_two_sided_ttest_test_runs_ratio_ra
    row = one_metric("ratio", RATIO_RA_CONTROL, RATIO_RA_TREATMENT)
    assert_published(row["relative"]["estimate"], -0.0007, 5)
    assert_published(row["relative"]["ci"][0], -0.00841, 5)
    assert_published(row["relative"]["ci"][1], 0.00700, 5)
    assert_published(row["relative"]["p_value"], 0.85771, 5)
    # uplift.stddev 0.00391: the standard error is the CI half-width over t_{0.975, df}; df is not published, but
    # with 200 units it is between 100 and 400, so the standard errors that half-width allows must meet 0.00391
    half_width = (row["relative"]["ci"][1] - row["relative"]["ci"][0]) / 2
    widest, narrowest = half_width / scipy_stats.t.ppf(0.975, 400), half_width / scipy_stats.t.ppf(0.975, 100)
    assert narrowest <= 0.00391 + 0.000005 and widest >= 0.00391 - 0.000005


def test_ratio_cuped_matches_gbstats_test_analyze_metric_df_ratio_ra():
    # gbstats tests/test_gbstats.py::TestAnalyzeMetricDfRegressionAdjustment::test_analyze_metric_df_ratio_ra
    # (its RATIO_RA_STATISTICS_DF repeats these sums, two products of variation "one" differing in the 15th digit)
    treatment = {**RATIO_RA_TREATMENT, "main_pre_denominator_post_sum_product": 1604.075950326651,
                 "main_pre_denominator_pre_sum_product": 698.4173425817913}
    row = one_metric("ratio", RATIO_RA_CONTROL, treatment)
    assert_published(row["control_mean"], 0.713495487, 9)
    assert_published(row["variant_mean"], 0.729754963, 9)
    assert_published(row["relative"]["estimate"], -0.000701483, 9)
    assert_published(row["relative"]["p_value"], 0.857710405, 9)


def ratio_cuped_stats(m_post: np.ndarray, d_post: np.ndarray, m_pre: np.ndarray, d_pre: np.ndarray) -> dict:
    return {"n": len(m_post), "sum": float(m_post.sum()), "sum_squares": float((m_post**2).sum()),
            "denominator_sum": float(d_post.sum()), "denominator_sum_squares": float((d_post**2).sum()),
            "sum_products": float((m_post * d_post).sum()),
            "covariate_sum": float(m_pre.sum()), "covariate_sum_squares": float((m_pre**2).sum()),
            "sum_products_covariate": float((m_post * m_pre).sum()),
            "denominator_pre_sum": float(d_pre.sum()), "denominator_pre_sum_squares": float((d_pre**2).sum()),
            "main_pre_denominator_pre_sum_product": float((m_pre * d_pre).sum()),
            "main_post_denominator_pre_sum_product": float((m_post * d_pre).sum()),
            "main_pre_denominator_post_sum_product": float((m_pre * d_post).sum()),
            "denominator_post_denominator_pre_sum_product": float((d_post * d_pre).sum())}


def test_ratio_cuped_absolute_test_is_welch_on_the_linearized_adjusted_units():
    # Written out from raw units, independently of the engine: each unit's post-period ratio linearized around
    # its arm's means, Q_i = M_i / D - R D_i / D, likewise P_i for the pre-period; theta regresses Q on P within
    # the arms (covariances and variances summed over the two arms), and the absolute test is Welch's on
    # Q_i - theta P_i with the estimate R_b - R_a - theta (R'_b - R'_a).
    rng = np.random.default_rng(5)

    def arm(n: int, lift: float) -> tuple[np.ndarray, ...]:
        d_pre = rng.poisson(6, size=n) + 1.0
        d_post = rng.poisson(6, size=n) + 1.0
        skill = rng.beta(2, 6, size=n)
        m_pre = rng.binomial(d_pre.astype(int), skill).astype(float)
        m_post = rng.binomial(d_post.astype(int), np.clip(skill * (1 + lift), 0, 1)).astype(float)
        return m_post, d_post, m_pre, d_pre

    a, b = arm(400, 0.0), arm(380, 0.15)

    def linearized(m: np.ndarray, d: np.ndarray) -> np.ndarray:
        return m / d.mean() - (m.sum() / d.sum()) * d / d.mean()

    q_a, p_a, q_b, p_b = linearized(a[0], a[1]), linearized(a[2], a[3]), linearized(b[0], b[1]), linearized(b[2], b[3])
    theta = (np.cov(q_a, p_a)[0, 1] + np.cov(q_b, p_b)[0, 1]) / (np.var(p_a, ddof=1) + np.var(p_b, ddof=1))
    adjusted_a, adjusted_b = q_a - theta * p_a, q_b - theta * p_b
    ratio = {name: s[0].sum() / s[1].sum() - theta * s[2].sum() / s[3].sum() for name, s in (("a", a), ("b", b))}
    estimate = ratio["b"] - ratio["a"]
    welch = scipy_stats.ttest_ind(adjusted_b, adjusted_a, equal_var=False)
    se = math.sqrt(np.var(adjusted_a, ddof=1) / len(adjusted_a) + np.var(adjusted_b, ddof=1) / len(adjusted_b))
    row = one_metric("ratio", ratio_cuped_stats(*a), ratio_cuped_stats(*b))
    assert_close(row["absolute"]["estimate"], estimate, 1e-9)
    half_width = float(scipy_stats.t.ppf(0.975, welch.df)) * se
    assert_close(row["absolute"]["ci"][0], estimate - half_width, 1e-9)
    assert_close(row["absolute"]["ci"][1], estimate + half_width, 1e-9)
    assert_close(row["absolute"]["p_value"], 2 * float(scipy_stats.t.sf(abs(estimate) / se, welch.df)))
    assert_close(row["control_mean"], a[0].sum() / a[1].sum(), 1e-12)
    # the adjustment narrows the CI compared with the same units without their pre-period
    plain = one_metric("ratio", *({k: v for k, v in ratio_cuped_stats(*s).items() if k in RATIO_FIELDS_PLAIN}
                                  for s in (a, b)))
    assert row["absolute"]["ci"][1] - row["absolute"]["ci"][0] < plain["absolute"]["ci"][1] - plain["absolute"]["ci"][0]


RATIO_FIELDS_PLAIN = ("n", "sum", "sum_squares", "denominator_sum", "denominator_sum_squares", "sum_products")


def test_ratio_cuped_without_a_pre_period_is_the_unadjusted_ratio_test():
    # gbstats: every pre-period sum 0 -> the gradient is 0, compute_theta_regression_adjusted_ratio returns 0 and
    # create_theta_adjusted_statistics falls back to RatioStatistic, so the published values of
    # tests/test_gbstats.py::TestAnalyzeMetricDfFrequentist::test_get_metric_dfs_frequentist_ratio hold
    no_pre = {"covariate_sum": 0, "covariate_sum_squares": 0, "sum_products_covariate": 0, "denominator_pre_sum": 0,
              "denominator_pre_sum_squares": 0, "main_pre_denominator_pre_sum_product": 0,
              "main_post_denominator_pre_sum_product": 0, "main_pre_denominator_post_sum_product": 0,
              "denominator_post_denominator_pre_sum_product": 0}
    row = one_metric("ratio", {**RATIO_CONTROL, **no_pre}, {**RATIO_TREATMENT, **no_pre})
    assert_published(row["control_mean"], 0.529411765, 9)
    assert_published(row["relative"]["estimate"], 0.133333333, 9)
    assert_published(row["relative"]["p_value"], 0.610663339, 9)


def test_cuped_with_a_covariate_that_does_not_vary_is_the_unadjusted_test():
    # gbstats models/statistics.py compute_theta: a pooled pre-period variance of 0 gives theta 0, and
    # create_theta_adjusted_statistics then tests the post-period statistics alone: the published values of
    # tests/test_gbstats.py::TestAnalyzeMetricDfFrequentist::test_get_metric_dfs_frequentist hold with a
    # covariate of 1 for every unit (tests/test_shared_models.py::TestComputeTheta::test_returns_0_no_variance
    # publishes theta 0 for an all-zero one)
    control = {"n": 100, "sum": 270, "sum_squares": 848.79, "covariate_sum": 100, "covariate_sum_squares": 100,
               "sum_products_covariate": 270}
    treatment = {"n": 120, "sum": 300, "sum_squares": 869, "covariate_sum": 120, "covariate_sum_squares": 120,
                 "sum_products_covariate": 300}
    row = one_metric("mean", control, treatment)
    assert_published(row["relative"]["estimate"], -0.074074074, 9)
    assert_published(row["relative"]["p_value"], 0.145219005, 9)


# ----------------------------------------------------------------------------------------------------------
# Degenerate cases: gbstats' default ("uninformative") result
#
# gbstats frequentist/tests.py TTest._default_output returns expected=0, ci=(0, 0), pValue=1 whenever
# models/tests.py EffectMoments.compute_result reports an error: a variant's variance <= 0, the difference's
# variance <= 0, or the control's mean (adjusted or unadjusted) equal to 0. The check does not depend on the
# difference type, so the absolute result is the default as well as the relative one.


DEFAULT = {"estimate": 0.0, "ci": [0.0, 0.0], "p_value": 1.0}


@pytest.mark.parametrize(("kind", "control", "treatment", "means"), [
    # tests/frequentist/test_tests.py::TestTwoSidedTTest::test_two_sided_ttest_missing_variance: sums over n = 2
    # that give a negative variance
    pytest.param("mean", {"n": 2, "sum": 1396.87, "sum_squares": 52377.9767}, GB_TREATMENT, (698.435, 0.7),
                 id="negative-variance"),
    # tests/test_gbstats.py::TestAnalyzeMetricDfFrequentist::test_get_metric_dfs_zero_val (ONE_USER_DF): one unit
    # in the variant, whose variance is 0 for n <= 1; published cr 6.666666667 and 1, expected 0, pValue 1
    pytest.param("mean", {"n": 3, "sum": 20, "sum_squares": 443}, {"n": 1, "sum": 1, "sum_squares": 1},
                 (20 / 3, 1.0), id="one-unit"),
    # no unit at all: SampleMeanStatistic.mean is 0 when n == 0, its variance 0
    pytest.param("mean", {"n": 0, "sum": 0, "sum_squares": 0}, GB_TREATMENT, (0.0, 0.7), id="no-unit"),
    # tests/frequentist/test_post_strat.py::TestPostStratification::test_zero_negative_variance, strata summed:
    # every value 0 in both arms
    pytest.param("mean", {"n": 86, "sum": 0, "sum_squares": 0}, {"n": 117, "sum": 0, "sum_squares": 0}, (0.0, 0.0),
                 id="zero-variance-both-arms"),
    # ...::test_baseline_variation_zero, strata summed: a control mean of 0 with a positive variance
    pytest.param("mean", {"n": 86, "sum": 0, "sum_squares": 20}, {"n": 117, "sum": 0, "sum_squares": 20},
                 (0.0, 0.0), id="control-mean-zero"),
    # ProportionStatistic.variance = p (1 - p) is 0 for a control that never converts (and then its mean is 0)
    pytest.param("proportion", {"n": 50, "sum": 0}, {"n": 50, "sum": 5}, (0.0, 0.1), id="proportion-none"),
    # ... and for a control where everyone converts (mean 1, variance 0)
    pytest.param("proportion", {"n": 50, "sum": 50}, {"n": 50, "sum": 45}, (1.0, 0.9), id="proportion-all"),
    # tests/test_gbstats.py::TestAnalyzeMetricDfFrequentist::test_get_metric_dfs_ratio_zero_denom: the control's
    # denominator sums to 0 (RatioStatistic.mean 0, variance 0); published cr 0 and 0.6, expected 0, pValue 1
    pytest.param("ratio", {**RATIO_CONTROL, "denominator_sum": 0, "denominator_sum_squares": 0, "sum_products": 0},
                 {**RATIO_TREATMENT, "sum": 300, "denominator_sum": 500}, (0.0, 0.6), id="ratio-zero-denominator"),
    # a ratio over one unit: RatioStatistic.variance is 0 for n <= 1
    pytest.param("ratio", {"n": 1, "sum": 2, "sum_squares": 4, "denominator_sum": 4, "denominator_sum_squares": 16,
                           "sum_products": 8}, RATIO_TREATMENT, (0.5, 0.6), id="ratio-one-unit"),
    # ...::test_baseline_variation_adjusted_zero, strata summed: CUPED with an unadjusted control mean of 0
    pytest.param("mean", {"n": 86, "sum": 0, "sum_squares": 5377.811252605509 + 30546.63404187155,
                          "covariate_sum": 104.90748970535698 + 315.83926510817054,
                          "covariate_sum_squares": 544.8528083123211 + 1578.8689285910423,
                          "sum_products_covariate": 1709.8485612477339 + 6938.770455871619},
                 {"n": 117, "sum": 0, "sum_squares": 12249.255519049513 + 45000.287664918586,
                  "covariate_sum": 205.17072061676208 + 377.29540367369503,
                  "covariate_sum_squares": 1040.6742753852225 + 1981.0803020754106,
                  "sum_products_covariate": 3561.161673449451 + 9428.146405105292}, (0.0, 0.0),
                 id="cuped-control-mean-zero"),
    # ratio CUPED whose control denominator is 0 in the pre-period: RegressionAdjustedRatioStatistic.nabla is 0,
    # so its variance is 0
    pytest.param("ratio", {**RATIO_RA_CONTROL, "denominator_pre_sum": 0, "denominator_pre_sum_squares": 0,
                           "main_pre_denominator_pre_sum_product": 0, "main_post_denominator_pre_sum_product": 0,
                           "denominator_post_denominator_pre_sum_product": 0},
                 RATIO_RA_TREATMENT, (0.713495487, 0.729754963), id="ratio-cuped-zero-pre-denominator"),
])
def test_degenerate_cases_return_gbstats_default_result(kind, control, treatment, means):
    row = one_metric(kind, control, treatment)
    assert row["absolute"] == DEFAULT
    assert row["relative"] == DEFAULT
    assert row["p_value_adjusted"] == 1.0  # a family of one, correction "none"
    assert_close(row["control_mean"], means[0], 1e-9)
    assert_close(row["variant_mean"], means[1], 1e-9)
    json.dumps(row, allow_nan=False)


def test_a_control_mean_of_zero_gives_the_default_result_for_a_negative_baseline_too():
    # the check is `stat_a.mean == 0`, nothing about the sign: a control of -1 and +1 has mean 0
    row = one_metric("mean", {"n": 2, "sum": 0, "sum_squares": 2}, {"n": 3, "sum": 3, "sum_squares": 5})
    assert row["absolute"] == DEFAULT and row["relative"] == DEFAULT


def test_a_negative_control_mean_divides_the_relative_lift_by_its_magnitude():
    # gbstats utils.frequentist_diff: (mean_b - mean_a) / abs(mean_a) (tests/test_utils.py::
    # test_relative_negative_baseline_keeps_direction); -10 -> -5 is a +50 % lift
    n = 1000
    control = {"n": n, "sum": -10.0 * n, "sum_squares": (100 + 4) * n}
    treatment = {"n": n, "sum": -5.0 * n, "sum_squares": (25 + 4) * n}
    row = one_metric("mean", control, treatment)
    assert_close(row["relative"]["estimate"], 0.5, 1e-12)
    assert row["absolute"]["estimate"] > 0


# ----------------------------------------------------------------------------------------------------------
# SRM


@pytest.mark.parametrize(("units", "weights", "published"), [
    # GrowthBook packages/back-end/test/stats.test.ts "calculates SRM correctly" (published to 9 decimals)
    ([1000, 1200], [0.5, 0.5], 0.000020079),
    ([135, 115], [0.5, 0.5], 0.205903211),
    ([310, 98], [0.75, 0.25], 0.647434186),
    ([1000, 1200, 900], [0.5, 0.5, 0], 0.000020079),
    ([0, 10, 10], [0.34, 0.33, 0.33], 0.005790624),
    ([500, 500, 600], [0.34, 0.33, 0.33], 0.000592638),
    ([500, 500], [0.5, 0.5], 1),
    ([1000, 900, 800], [1, 0, 0], 1),
    ([0, 0, 0], [0.34, 0.33, 0.33], 1),
])
def test_srm_matches_growthbook_check_srm(units, weights, published):
    assert_published(srm_p_value(units, weights), published, 9)


@pytest.mark.parametrize(("units", "weights"), [
    ([1000, 1200], [0.5, 0.5]), ([310, 98], [0.75, 0.25]), ([500, 500, 600], [0.34, 0.33, 0.33]),
])
def test_srm_matches_scipy_chisquare(units, weights):
    total = sum(units)
    expected = scipy_stats.chisquare(units, [w * total for w in weights])
    assert_close(srm_p_value(units, weights), float(expected.pvalue))


def test_srm_verdict_uses_the_threshold():
    spec = {"srm_threshold": 0.001, "variants": two_variants((1000, 1200)), "metrics": []}
    assert analyze(spec)["srm"] == {"p_value": pytest.approx(0.000020079, abs=5e-10), "passed": False}
    spec = {"srm_threshold": 0.00001, "variants": two_variants((1000, 1200)), "metrics": []}
    assert analyze(spec)["srm"]["passed"] is True


# ----------------------------------------------------------------------------------------------------------
# Multiple testing


def test_holm_matches_growthbook_adjust_p_values_holm_bonferroni():
    # GrowthBook packages/shared/test/experiments.test.ts "does HB procedure correctly"
    adjusted = holm_bonferroni([0.01, 0.04, 0.03, 0.005, 0.55, 0.6])
    for actual, expected in zip(adjusted, [0.05, 0.12, 0.12, 0.03, 1, 1], strict=True):
        assert_close(actual, expected, 1e-12)


def test_bh_matches_growthbook_adjust_p_values_benjamini_hochberg():
    # GrowthBook packages/shared/test/experiments.test.ts "does BH procedure correctly" (published to 8 decimals)
    adjusted = benjamini_hochberg([0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138])
    for actual, expected in zip(adjusted, [0.964, 0.2415, 0.0245, 0.964, 0.7532, 0.0245, 0.2415], strict=True):
        assert_published(actual, expected, 8)


def test_corrections_match_growthbook_set_adjusted_p_values_on_results():
    # GrowthBook packages/shared/test/experiments.test.ts "pvals and CIs adjusted in place"
    assert holm_bonferroni([0.025, 0.03]) == pytest.approx([0.05, 0.05], abs=1e-12)
    assert benjamini_hochberg([0.025, 0.03]) == pytest.approx([0.03, 0.03], abs=1e-12)


def test_bh_matches_scipy_false_discovery_control():
    p_values = [0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138, 0.041, 0.0001]
    expected = scipy_stats.false_discovery_control(p_values, method="bh")
    for actual, wanted in zip(benjamini_hochberg(p_values), expected, strict=True):
        assert_close(actual, float(wanted))


def three_variant_spec(correction: str) -> dict:
    """Two goal metrics and one guardrail over three variants: a family of 2 x 2 relative p-values."""
    variants = [{"name": "control", "weight": 0.4, "units": 400}, {"name": "a", "weight": 0.3, "units": 300},
                {"name": "b", "weight": 0.3, "units": 300}]
    rates = {"control": (400, 40), "a": (300, 45), "b": (300, 33)}
    means = {"control": (400, 420.0, 1500.0), "a": (300, 330.0, 1200.0), "b": (300, 360.0, 1400.0)}
    return {"correction": correction, "variants": variants, "metrics": [
        {"name": "clicked", "kind": "proportion", "goal": True,
         "stats": {v: {"n": n, "sum": s} for v, (n, s) in rates.items()}},
        {"name": "invites", "kind": "mean", "goal": True,
         "stats": {v: {"n": n, "sum": s, "sum_squares": q} for v, (n, s, q) in means.items()}},
        {"name": "dismissals", "kind": "mean", "goal": False,
         "stats": {v: {"n": n, "sum": s, "sum_squares": q} for v, (n, s, q) in means.items()}},
    ]}


def test_correction_family_is_goal_metrics_times_non_control_variants():
    raw = analyze(three_variant_spec("none"))["results"]
    assert [(r["metric"], r["variant"]) for r in raw] == [("clicked", "a"), ("clicked", "b"), ("invites", "a"),
                                                           ("invites", "b"), ("dismissals", "a"), ("dismissals", "b")]
    goal_p = [r["relative"]["p_value"] for r in raw[:4]]
    assert [r["p_value_adjusted"] for r in raw[:4]] == goal_p
    assert [r["p_value_adjusted"] for r in raw[4:]] == [None, None]

    holm = analyze(three_variant_spec("holm"))["results"]
    ordered = sorted(goal_p)
    smallest = goal_p.index(ordered[0])
    assert_close(holm[smallest]["p_value_adjusted"], min(1.0, 4 * ordered[0]), 1e-12)
    assert [r["p_value_adjusted"] for r in holm[4:]] == [None, None]

    bh = analyze(three_variant_spec("bh"))["results"]
    expected = scipy_stats.false_discovery_control(goal_p, method="bh")
    for row, wanted in zip(bh[:4], expected, strict=True):
        assert_close(row["p_value_adjusted"], float(wanted))
    assert [r["p_value_adjusted"] for r in bh[4:]] == [None, None]


def test_default_p_values_of_one_are_in_the_family():
    # GrowthBook's setAdjustedPValuesOnResults adjusts every p-value gbstats returned, its default 1 included.
    spec = three_variant_spec("holm")
    spec["metrics"][0]["stats"]["b"] = {"n": 1, "sum": 1}
    results = analyze(spec)["results"]
    assert results[1]["relative"]["p_value"] == 1 and results[1]["p_value_adjusted"] == 1
    defined = [results[i]["relative"]["p_value"] for i in (0, 2, 3)]
    assert_close(results[(0, 2, 3)[defined.index(min(defined))]]["p_value_adjusted"], min(1.0, 4 * min(defined)))


# ----------------------------------------------------------------------------------------------------------
# Output shape and malformed input


def test_output_is_strict_json_and_has_the_contract_keys():
    result = analyze(three_variant_spec("holm"))
    text = json.dumps(result, allow_nan=False)
    assert set(json.loads(text)) == {"srm", "results"}
    assert set(result["results"][0]) == {"metric", "variant", "control_mean", "variant_mean", "absolute", "relative",
                                         "p_value_adjusted"}
    assert set(result["results"][0]["absolute"]) == {"estimate", "ci", "p_value"}


def valid_spec() -> dict:
    return {"alpha": 0.05, "correction": "holm", "srm_threshold": 0.001, "variants": two_variants(),
            "metrics": [{"name": "invites", "kind": "mean", "goal": True,
                         "stats": {"control": dict(GB_CONTROL), "treatment": dict(GB_TREATMENT)}},
                        {"name": "ctr", "kind": "ratio", "goal": False,
                         "stats": {"control": dict(RATIO_CONTROL), "treatment": dict(RATIO_TREATMENT)}}]}


def _drop(spec: dict) -> dict:
    del spec["metrics"][0]["stats"]["treatment"]["sum_squares"]
    return spec


def _set(path: tuple, value) -> callable:
    def edit(spec: dict) -> dict:
        target = spec
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return spec
    return edit


@pytest.mark.parametrize(("edit", "field"), [
    (_drop, "metrics[0].stats.treatment.sum_squares: missing"),
    (_set(("metrics", 0, "stats", "control", "n"), "3407"), "metrics[0].stats.control.n: expected a number"),
    (_set(("metrics", 0, "stats", "control", "n"), 3.5), "metrics[0].stats.control.n: expected a non-negative integer"),
    (_set(("metrics", 0, "kind"), "median"), "metrics[0].kind: unknown kind 'median'"),
    (_set(("metrics", 0, "goal"), "yes"), "metrics[0].goal: expected true or false"),
    (_set(("correction", ), "bonferroni"), "correction: unknown correction 'bonferroni'"),
    (_set(("alpha", ), 5), "alpha: expected a number strictly between 0 and 1"),
    (_set(("variants", 1, "weight"), 0.6), "variants[*].weight: weights must sum to 1"),
    (_set(("variants", 1, "units"), -1), "variants[1].units: expected a non-negative integer"),
    (_set(("variants", ), [{"name": "control", "weight": 1, "units": 5}]), "variants: expected at least 2"),
    (_set(("metrics", 0, "stats", "other"), {}), "metrics[0].stats.other: unknown field"),
    (_set(("metrics", 1, "stats", "control", "covariate_sum"), 3),
     "metrics[1].stats.control.covariate_sum_squares: missing"),
    (_set(("metrics", 1, "stats", "control", "denominator_pre_sum"), 3),
     "metrics[1].stats.control.covariate_sum: missing"),
    (_set(("metrics", 0, "stats", "control", "covariate_sum"), 3),
     "metrics[0].stats.control.covariate_sum_squares: missing"),
    (_set(("metrics", 0, "stats", "control", "sum"), float("nan")), "metrics[0].stats.control.sum: expected a finite"),
    (_set(("metrics", 1, "stats", "treatment", "sum_products"), None),
     "metrics[1].stats.treatment.sum_products: expected a number, got null"),
])
def test_malformed_spec_names_the_field(edit, field):
    with pytest.raises(StatsInputInvalid) as caught:
        analyze(edit(valid_spec()))
    assert str(caught.value).startswith(field), str(caught.value)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2


def test_cuped_fields_must_be_given_for_every_variant():
    spec = valid_spec()
    spec["metrics"][0]["stats"]["treatment"].update(covariate_sum=1.0, covariate_sum_squares=1.0,
                                                    sum_products_covariate=1.0)
    with pytest.raises(StatsInputInvalid, match=r"^metrics\[0\]\.stats\.control\.covariate_sum: missing"):
        analyze(spec)


def test_a_missing_variant_in_stats_is_named():
    spec = valid_spec()
    del spec["metrics"][1]["stats"]["treatment"]
    with pytest.raises(StatsInputInvalid, match=r"^metrics\[1\]\.stats\.treatment: missing"):
        analyze(spec)
