"""The A/B stats engine: frequentist tests on sufficient statistics, JSON-shaped dict in, dict out.

`analyze(spec)` takes the input of `mutuals experiment-stats` (a dict) and returns its output. It is pure
Python over numpy/scipy so that the Spark experiment report, the CLI and the tests run the very same code;
Spark only computes the sums.

The formulas reproduce GrowthBook's gbstats frequentist engine (`gbstats.frequentist.tests.TwoSidedTTest`,
`gbstats.models.statistics`, `gbstats.utils.check_srm`) and GrowthBook's p-value corrections
(`packages/shared/src/experiments/experiments.ts`), so the numbers agree with theirs; tests/test_stats.py
checks that against their published test values and against scipy.

Input (checked before anything is computed; a bad field raises StatsInputInvalid naming its path)
---------------------------------------------------------------------------------------------
* `alpha` (default 0.05) and `srm_threshold` (default 0.001): numbers strictly between 0 and 1;
  `correction`: "holm" (default), "bh" or "none".
* `variants`: at least two objects {name, weight, units}; names unique, weights >= 0 summing to 1 (within
  1e-4), units a non-negative integer.
* `metrics`: objects {name, kind, goal, stats}; kind "mean" | "proportion" | "ratio", goal a boolean, stats
  one object per variant name. Per variant: `n` (a non-negative integer) and `sum`; a mean also
  `sum_squares`; a proportion's `sum` counts units with the event (0..n; `sum_squares`, if given, must
  equal `sum`); a ratio also `sum_squares`, `denominator_sum`, `denominator_sum_squares`, `sum_products`.
  CUPED: `covariate_sum`, `covariate_sum_squares` (optional for a proportion, whose covariate is 0/1) and
  `sum_products_covariate`, given for every variant of the metric or for none. CUPED on a ratio takes the
  numerator's pre-period in those three fields plus the denominator's pre-period and the cross products,
  named as gbstats names its columns: `denominator_pre_sum`, `denominator_pre_sum_squares`,
  `main_pre_denominator_pre_sum_product` (M_pre D_pre), `main_post_denominator_pre_sum_product`
  (M_post D_pre), `main_pre_denominator_post_sum_product` (M_pre D_post) and
  `denominator_post_denominator_pre_sum_product` (D_post D_pre); all nine or none.
* Numbers must be finite; unknown fields are refused, so a misspelt field cannot be silently ignored.

Conventions
-----------
* The first variant is the control; every other variant is compared with it, one pair at a time.
* Per variant and metric the input gives sufficient statistics over the units (members) in it: `n`, `sum`,
  and as the kind needs `sum_squares`, the ratio's denominator sums, and the CUPED covariate sums.
* Relative lift = (variant_mean - control_mean) / |control_mean|, which is variant_mean / control_mean - 1
  for the positive control means of counts, proportions and rates. Its CI comes from the delta method.
* `control_mean` and `variant_mean` in the output are the unadjusted means, also under CUPED.
* p-values and CIs are two-sided at `alpha` and use Student's t with the Welch-Satterthwaite degrees of
  freedom, for the relative lift as well as for the absolute one.
* `p_value_adjusted` is computed over the goal metrics x non-control variants only, from the relative
  test's p-values: Holm-Bonferroni ("holm"), Benjamini-Hochberg ("bh"), or none ("none": the adjusted
  value is the raw relative p-value). Non-goal (guardrail) metrics get null.
* Degenerate cases give gbstats' default ("uninformative") result, estimate 0, CI [0, 0], p-value 1, for the
  absolute and the relative difference alike, exactly when gbstats' EffectMoments reports an error: a variant
  whose variance is <= 0 (fewer than 2 units, every value equal, a proportion of 0 or 1, a ratio whose
  denominator sums to 0), a difference whose variance is <= 0, or a control mean (adjusted or unadjusted)
  of 0. Means follow gbstats too: a mean over no units and a ratio over a zero denominator are 0. Those
  p-values of 1 belong to the correction's family, as GrowthBook adjusts every p-value gbstats returns.
* The output is strict JSON: a number that is not finite (reachable only by floating-point overflow on
  astronomically large sums; gbstats' two-sided test has no infinite bound otherwise) is written as null.

Formulas (n units, S = sum, Q = sum of squares, per variant)
------------------------------------------------------------
* mean:        m = S / n,  v = (Q - S^2 / n) / (n - 1)                    (sample variance, n - 1)
* proportion:  p = S / n,  v = p (1 - p)
* ratio (numerator M, denominator D per unit, P = sum of M*D products):
               m = S_M / S_D,
               v = v_M / d^2 + v_D m_M^2 / d^4 - 2 c m_M / d^3            (delta method)
               with m_M = S_M / n, d = S_D / n, v_M, v_D sample variances and
               c = (P - S_M S_D / n) / (n - 1) the numerator-denominator covariance.
* absolute lift:  delta = m_b - m_a,  se^2 = v_b / n_b + v_a / n_a
* relative lift:  r = (m_b - m_a) / |m_a|,
                  se^2 = v_b / (n_b m_a^2) + v_a m_b^2 / (n_a m_a^4)       (delta method, independent arms)
* Welch-Satterthwaite:  df = (v_b/n_b + v_a/n_a)^2 / (v_b^2/(n_b^2 (n_b-1)) + v_a^2/(n_a^2 (n_a-1)))
* test:  t = estimate / se,  p = 2 P(T_df > |t|),  CI = estimate -/+ t_{1-alpha/2, df} se
* CUPED (regression adjustment with each unit's own pre-period value X of the same metric):
  theta = Cov(Y, X) / Var(X) over the control and the variant pooled (a pair-specific theta), from the
  pooled sums; theta = 0 (no adjustment) when the pooled Var(X) or Var(Y) is 0. Per variant:
      m_adj = m_Y - theta m_X,  v_adj = v_Y + theta^2 v_X - 2 theta c_YX,
  where c_YX = (P_YX - S_Y S_X / n) / (n - 1) for means and P_YX / n - S_Y S_X / n^2 for proportions (and
  Var(X) is p_X (1 - p_X) for a proportion's 0/1 covariate). The absolute test uses m_adj and v_adj; the
  relative test divides by the unadjusted control mean m_a and uses gbstats' CUPED delta method:
      se^2 = v_adj_b / (n_b m_a^2)
             + (v_Y_a m_b^2 / m_a^2 - 2 theta c_YX_a m_b / m_a + theta^2 v_X_a) / (n_a m_a^2)
  with m_b the unadjusted variant mean. df uses v_adj. theta is exactly 0 when the pooled Var(X) or Var(Y)
  is 0, and then the metric is tested unadjusted (gbstats' fallback).
* CUPED on a ratio (gbstats' RegressionAdjustedRatioStatistic): per variant the four per-unit means
  b = (M_post, D_post, M_pre, D_pre) and their 4 x 4 sample covariance matrix L; the adjusted ratio
  R_post - theta R_pre has the gradient g = (1/d_post, -m_post/d_post^2, -theta/d_pre, theta m_pre/d_pre^2)
  (zero when a denominator mean is 0) and the per-unit variance g' L g. theta = -(c_a + c_b) / (v_a + v_b)
  with, at theta = 1, v the pre-period block g[2:4]' L[2:4,2:4] g[2:4] and c the cross block
  g[2:4]' L[2:4,0:2] g[0:2]; |theta| < 1e-8 falls back to the unadjusted ratio. The relative lift's variance
  is gbstats' frequentist_variance_relative_cuped_ratio (the delta method in all eight means).
* SRM: Pearson chi-squared of the variants' units against the configured weights, skipping variants of
  weight 0: x = sum (o_i - e_i)^2 / e_i with e_i = w_i / sum(w) * sum(o); p = P(chi2_{k-1} > x); p = 1 when
  fewer than two variants have weight or no units were seen. The check passes when p >= srm_threshold.
* Holm-Bonferroni: sort the m p-values ascending, p_(i) * (m - i + 1) capped at 1, then a running maximum.
* Benjamini-Hochberg: sort descending, p_(i) * m / i (i the ascending rank) capped at 1, then a running
  minimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from mutuals.errors import UsageError

KINDS = ("mean", "proportion", "ratio")
CORRECTIONS = ("holm", "bh", "none")
DEFAULT_ALPHA = 0.05
DEFAULT_CORRECTION = "holm"
DEFAULT_SRM_THRESHOLD = 0.001
WEIGHT_SUM_TOLERANCE = 1e-4

CUPED_FIELDS = ("covariate_sum", "covariate_sum_squares", "sum_products_covariate")
RATIO_FIELDS = ("denominator_sum", "denominator_sum_squares", "sum_products")
# A ratio's CUPED inputs: the numerator's pre-period in CUPED_FIELDS, then the denominator's pre-period and the
# cross products, named as gbstats names its columns.
RATIO_CUPED_FIELDS = (
    *CUPED_FIELDS,
    "denominator_pre_sum",
    "denominator_pre_sum_squares",
    "main_pre_denominator_pre_sum_product",
    "main_post_denominator_pre_sum_product",
    "main_pre_denominator_post_sum_product",
    "denominator_post_denominator_pre_sum_product",
)
TOP_FIELDS = ("alpha", "correction", "srm_threshold", "variants", "metrics")
VARIANT_FIELDS = ("name", "weight", "units")
METRIC_FIELDS = ("name", "kind", "goal", "stats")


class StatsInputInvalid(UsageError):
    """The stats spec cannot be used; the message names the field (a path such as metrics[1].stats.treatment.n)."""


# ---------------------------------------------------------------------------------------------------------
# Statistics of one variant


@dataclass(frozen=True)
class ArmStats:
    """One variant's sufficient statistics for one metric, already checked.

    A ratio's pre-period fields (`covariate_*` for the numerator, `denominator_pre_*` and the four gbstats-named
    products) are None unless the metric is CUPED-adjusted."""

    n: int
    sum: float
    sum_squares: float
    denominator_sum: float = 0.0
    denominator_sum_squares: float = 0.0
    sum_products: float = 0.0
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    sum_products_covariate: float | None = None
    denominator_pre_sum: float | None = None
    denominator_pre_sum_squares: float | None = None
    main_pre_denominator_pre_sum_product: float | None = None
    main_post_denominator_pre_sum_product: float | None = None
    main_pre_denominator_post_sum_product: float | None = None
    denominator_post_denominator_pre_sum_product: float | None = None


@dataclass(frozen=True)
class Moments:
    """What the t-test needs from one variant: units, the (adjusted) mean, the per-unit variance and the
    unadjusted mean the relative lift divides by. gbstats' conventions: a mean over no units is 0, and a
    variance that is not defined (fewer than two units, a zero denominator) is 0."""

    n: int
    mean: float
    variance: float
    unadjusted_mean: float


def sample_variance(n: int, total: float, sum_squares: float) -> float:
    """Unbiased variance (n - 1) from sums; 0 with fewer than two units, where it is not defined."""
    if n <= 1:
        return 0.0
    return (sum_squares - total * total / n) / (n - 1)


def proportion_variance(n: int, total: float) -> float:
    """p (1 - p) of a 0/1 variable, the Bernoulli variance gbstats uses for proportions (0 without units)."""
    p = _mean(n, total)
    return p * (1.0 - p)


def sample_covariance(n: int, sum_a: float, sum_b: float, sum_products: float) -> float:
    """Unbiased covariance (n - 1) from sums."""
    if n <= 1:
        return 0.0
    return (sum_products - sum_a * sum_b / n) / (n - 1)


def proportion_covariance(n: int, sum_a: float, sum_b: float, sum_products: float) -> float:
    """Covariance of two 0/1 variables with the Bernoulli (divide by n) convention of their variances."""
    if n <= 1:
        return 0.0
    return sum_products / n - sum_a * sum_b / (n * n)


def _mean(n: int, total: float) -> float:
    """total / n, and 0 over no units (gbstats' SampleMeanStatistic.mean)."""
    return total / n if n > 0 else 0.0


def mean_moments(arm: ArmStats) -> Moments:
    mean = _mean(arm.n, arm.sum)
    return Moments(arm.n, mean, sample_variance(arm.n, arm.sum, arm.sum_squares), mean)


def proportion_moments(arm: ArmStats) -> Moments:
    mean = _mean(arm.n, arm.sum)
    return Moments(arm.n, mean, proportion_variance(arm.n, arm.sum), mean)


def variance_of_ratio(mean_m: float, var_m: float, mean_d: float, var_d: float, cov_md: float) -> float:
    """Delta-method variance of M / D around (mean_m, mean_d), with the covariance of M and D; 0 when
    mean_d is 0 (gbstats' variance_of_ratios)."""
    if mean_d == 0:
        return 0.0
    return var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2.0 * cov_md * mean_m / mean_d**3


def ratio_moments(arm: ArmStats) -> Moments:
    """Per-unit moments of a ratio metric sum(M) / sum(D): mean 0 when sum(D) is 0, variance 0 when the
    denominator's mean is 0 or there are fewer than two units (gbstats' RatioStatistic)."""
    mean = arm.sum / arm.denominator_sum if arm.denominator_sum != 0 else 0.0
    mean_d = _mean(arm.n, arm.denominator_sum)
    if mean_d == 0 or arm.n <= 1:
        return Moments(arm.n, mean, 0.0, mean)
    variance = variance_of_ratio(
        arm.sum / arm.n,
        sample_variance(arm.n, arm.sum, arm.sum_squares),
        mean_d,
        sample_variance(arm.n, arm.denominator_sum, arm.denominator_sum_squares),
        sample_covariance(arm.n, arm.sum, arm.denominator_sum, arm.sum_products),
    )
    return Moments(arm.n, mean, variance, mean)


# ---------------------------------------------------------------------------------------------------------
# A pair of variants ready for the t-test


@dataclass(frozen=True)
class Pair:
    """Control and variant moments of one metric, and the relative lift's variance where the statistic has
    its own delta method (CUPED); None: the independent-arms formula over the unadjusted means."""

    control: Moments
    variant: Moments
    relative_variance: float | None = None


def plain_pair(kind: str, control: ArmStats, variant: ArmStats) -> Pair:
    return Pair(MOMENTS[kind](control), MOMENTS[kind](variant))


# ---------------------------------------------------------------------------------------------------------
# CUPED on means and proportions (gbstats RegressionAdjustedStatistic)


@dataclass(frozen=True)
class CupedArm:
    """One variant's post-period (Y) and pre-period covariate (X) moments, in the metric's own convention."""

    n: int
    mean_y: float
    mean_x: float
    var_y: float
    var_x: float
    cov_yx: float

    def adjusted(self, theta: float) -> Moments:
        variance = self.var_y + theta**2 * self.var_x - 2.0 * theta * self.cov_yx
        return Moments(self.n, self.mean_y - theta * self.mean_x, variance if self.n > 1 else 0.0, self.mean_y)


def cuped_arm(arm: ArmStats, proportion: bool) -> CupedArm:
    x_sum = arm.covariate_sum or 0.0
    products = arm.sum_products_covariate or 0.0
    if proportion:
        var_y, var_x = proportion_variance(arm.n, arm.sum), proportion_variance(arm.n, x_sum)
        cov = proportion_covariance(arm.n, arm.sum, x_sum, products)
    else:
        var_y = sample_variance(arm.n, arm.sum, arm.sum_squares)
        var_x = sample_variance(arm.n, x_sum, arm.covariate_sum_squares or 0.0)
        cov = sample_covariance(arm.n, arm.sum, x_sum, products)
    return CupedArm(arm.n, _mean(arm.n, arm.sum), _mean(arm.n, x_sum), var_y, var_x, cov)


def pooled(a: ArmStats, b: ArmStats) -> ArmStats:
    """The two variants' sums added up: the sample theta is estimated on."""

    def add(x: float | None, y: float | None) -> float:
        return (x or 0.0) + (y or 0.0)

    return ArmStats(
        n=a.n + b.n, sum=a.sum + b.sum, sum_squares=a.sum_squares + b.sum_squares,
        covariate_sum=add(a.covariate_sum, b.covariate_sum),
        covariate_sum_squares=add(a.covariate_sum_squares, b.covariate_sum_squares),
        sum_products_covariate=add(a.sum_products_covariate, b.sum_products_covariate),
    )


def cuped_theta(control: ArmStats, variant: ArmStats, proportion: bool) -> float:
    """theta = Cov(Y, X) / Var(X) over both variants pooled; 0 (no adjustment) when either pooled variance
    is exactly 0 (gbstats' compute_theta)."""
    joint = cuped_arm(pooled(control, variant), proportion)
    if joint.var_x == 0 or joint.var_y == 0:
        return 0.0
    return joint.cov_yx / joint.var_x


def cuped_relative_variance(control: CupedArm, variant: CupedArm, theta: float) -> float:
    """Delta-method variance of (m_adj_b - m_adj_a) / |m_a| as gbstats computes it for CUPED (0 when the
    unadjusted control mean is 0, which the caller turns into the default result)."""
    m_a, m_b = control.mean_y, variant.mean_y
    if variant.n * m_a**2 == 0 or control.n * m_a**2 == 0:
        return 0.0
    treated = variant.adjusted(theta).variance / (variant.n * m_a**2)
    ctrl = (
        control.var_y * m_b**2 / m_a**2
        - 2.0 * theta * control.cov_yx * m_b / m_a
        + theta**2 * control.var_x
    ) / (control.n * m_a**2)
    return treated + ctrl


def cuped_pair(kind: str, control: ArmStats, variant: ArmStats) -> Pair:
    """CUPED with the pooled theta; with theta 0 gbstats falls back to the unadjusted statistics."""
    proportion = kind == "proportion"
    theta = cuped_theta(control, variant, proportion)
    if theta == 0:
        return plain_pair(kind, control, variant)
    cuped_a, cuped_b = cuped_arm(control, proportion), cuped_arm(variant, proportion)
    return Pair(cuped_a.adjusted(theta), cuped_b.adjusted(theta),
                # evaluated lazily by gbstats; computing it here is harmless (it guards its own zeros)
                cuped_relative_variance(cuped_a, cuped_b, theta))


# ---------------------------------------------------------------------------------------------------------
# CUPED on ratio metrics (gbstats RegressionAdjustedRatioStatistic)

RATIO_CUPED_SMALLEST_THETA = 1e-8  # gbstats: |theta| below this falls back to the unadjusted ratio


@dataclass(frozen=True)
class RatioCupedArm:
    """One variant's post- and pre-period numerator (M) and denominator (D) per-unit means, in the order
    (M_post, D_post, M_pre, D_pre), and their 4 x 4 sample covariance matrix (lambda in gbstats)."""

    n: int
    sums: tuple[float, float, float, float]
    means: np.ndarray
    lam: np.ndarray

    @property
    def mean_post(self) -> float:
        """sum(M_post) / sum(D_post), 0 when sum(D_post) is 0: the unadjusted mean."""
        return self.sums[0] / self.sums[1] if self.sums[1] != 0 else 0.0

    @property
    def mean_pre(self) -> float:
        return self.sums[2] / self.sums[3] if self.sums[3] != 0 else 0.0

    def mean(self, theta: float) -> float:
        if self.sums[1] == 0 or self.sums[3] == 0:
            return 0.0
        return self.mean_post - theta * self.mean_pre

    def nabla(self, theta: float) -> np.ndarray:
        """Gradient of M_post/D_post - theta M_pre/D_pre in the four means (zeros when a denominator mean is 0)."""
        m_post, d_post, m_pre, d_pre = self.means
        if d_post == 0 or d_pre == 0:
            return np.zeros(4)
        return np.array([1.0 / d_post, -m_post / d_post**2, -theta / d_pre, theta * m_pre / d_pre**2])

    def variance(self, theta: float) -> float:
        nabla = self.nabla(theta)
        return float(nabla @ self.lam @ nabla)

    def pre_variance_and_covariance(self) -> tuple[float, float]:
        """At theta = 1: the variance of the pre-period part and its covariance with the post-period part."""
        nabla = self.nabla(1.0)
        return (float(nabla[2:4] @ self.lam[2:4, 2:4] @ nabla[2:4]),
                float(nabla[2:4] @ self.lam[2:4, 0:2] @ nabla[0:2]))

    def moments(self, theta: float) -> Moments:
        return Moments(self.n, self.mean(theta), self.variance(theta), self.mean_post)


def ratio_cuped_arm(arm: ArmStats) -> RatioCupedArm:
    n = arm.n

    def f(value: float | None) -> float:
        return value or 0.0

    sums = (arm.sum, arm.denominator_sum, f(arm.covariate_sum), f(arm.denominator_pre_sum))
    squares = (arm.sum_squares, arm.denominator_sum_squares, f(arm.covariate_sum_squares),
               f(arm.denominator_pre_sum_squares))
    products = {  # (i, j) -> sum of products, in the order M_post, D_post, M_pre, D_pre
        (0, 1): arm.sum_products,
        (0, 2): f(arm.sum_products_covariate),
        (0, 3): f(arm.main_post_denominator_pre_sum_product),
        (1, 2): f(arm.main_pre_denominator_post_sum_product),
        (1, 3): f(arm.denominator_post_denominator_pre_sum_product),
        (2, 3): f(arm.main_pre_denominator_pre_sum_product),
    }
    lam = np.zeros((4, 4))
    for i in range(4):
        lam[i, i] = sample_variance(n, sums[i], squares[i])
    for (i, j), total in products.items():
        lam[i, j] = lam[j, i] = sample_covariance(n, sums[i], sums[j], total)
    means = np.array([_mean(n, s) for s in sums])
    return RatioCupedArm(n, sums, means, lam)


def ratio_cuped_theta(control: RatioCupedArm, variant: RatioCupedArm) -> float:
    """gbstats' compute_theta_regression_adjusted_ratio: minus the summed post/pre covariances over the
    summed pre-period variances (of both arms, at theta 1); 0 when those variances sum to 0."""
    var_a, cov_a = control.pre_variance_and_covariance()
    var_b, cov_b = variant.pre_variance_and_covariance()
    if var_a + var_b == 0:
        return 0.0
    return -(cov_a + cov_b) / (var_a + var_b)


def ratio_cuped_relative_variance(control: RatioCupedArm, variant: RatioCupedArm, theta: float) -> float:
    """gbstats' frequentist_variance_relative_cuped_ratio: the delta method of
    (mean_b - mean_a) / |unadjusted mean_a| in the eight per-unit means of the two arms."""
    baseline = control.mean_post
    d_post = control.means[1]
    if baseline == 0 or d_post == 0:
        return 0.0
    g_abs = (variant.mean(theta) - control.mean(theta)) * float(np.sign(baseline))
    g_rel_den = abs(baseline)
    m_post = control.means[0]
    nabla_ctrl_0 = -(g_rel_den + g_abs) / d_post / g_rel_den**2
    nabla_ctrl_1 = (m_post * g_rel_den / d_post**2 + m_post * g_abs / d_post**2) / g_rel_den**2
    control_nabla = control.nabla(theta)
    nabla_a = np.array([nabla_ctrl_0, nabla_ctrl_1, -control_nabla[2] / g_rel_den, -control_nabla[3] / g_rel_den])
    nabla_b = variant.nabla(theta) / g_rel_den
    return float(nabla_a @ control.lam @ nabla_a / control.n + nabla_b @ variant.lam @ nabla_b / variant.n)


def ratio_cuped_pair(control: ArmStats, variant: ArmStats) -> Pair:
    """Ratio CUPED; with |theta| < 1e-8 gbstats falls back to the unadjusted ratio statistics."""
    arm_a, arm_b = ratio_cuped_arm(control), ratio_cuped_arm(variant)
    theta = ratio_cuped_theta(arm_a, arm_b)
    if abs(theta) < RATIO_CUPED_SMALLEST_THETA:
        return plain_pair("ratio", control, variant)
    a, b = arm_a.moments(theta), arm_b.moments(theta)
    relative = None
    if a.variance > 0 and b.variance > 0:  # gbstats evaluates it only past the zero-variance check
        relative = ratio_cuped_relative_variance(arm_a, arm_b, theta)
    return Pair(a, b, relative)


# ---------------------------------------------------------------------------------------------------------
# The t-test


@dataclass(frozen=True)
class Effect:
    """A two-sided test of one estimate."""

    estimate: float
    ci: tuple[float, float]
    p_value: float

    def as_dict(self) -> dict:
        return {"estimate": _json_number(self.estimate), "ci": [_json_number(self.ci[0]), _json_number(self.ci[1])],
                "p_value": _json_number(self.p_value)}


# gbstats' "uninformative" result (TTest._default_output): what it returns when the test cannot be run
DEFAULT_EFFECT = Effect(0.0, (0.0, 0.0), 1.0)


def _json_number(x: float) -> float | None:
    """JSON has no NaN or Infinity: a non-finite number (only reachable by floating-point overflow) is null."""
    return x if math.isfinite(x) else None


def welch_dof(a: Moments, b: Moments) -> float:
    """Welch-Satterthwaite degrees of freedom of the difference of two means."""
    va, vb = a.variance / a.n, b.variance / b.n
    return (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))


def t_test(estimate: float, variance: float, dof: float, alpha: float) -> Effect:
    """Two-sided Student t test of estimate = 0 and its 1 - alpha CI."""
    se = math.sqrt(variance)
    half = float(scipy_stats.t.ppf(1.0 - alpha / 2.0, dof)) * se
    p_value = 2.0 * float(scipy_stats.t.sf(abs(estimate / se), dof))
    return Effect(estimate, (estimate - half, estimate + half), min(p_value, 1.0))


def independent_relative_variance(a: Moments, b: Moments) -> float:
    """Delta-method variance of m_b / m_a - 1 for independent variants (gbstats' frequentist_variance)."""
    return variance_of_ratio(b.unadjusted_mean, b.variance / b.n, a.unadjusted_mean, a.variance / a.n, 0.0)


def effect(pair: Pair, relative: bool, alpha: float) -> Effect:
    """gbstats' EffectMoments + TwoSidedTTest for one difference type: the default result when either arm or
    the difference has no positive variance, or the control's (adjusted or unadjusted) mean is 0."""
    a, b = pair.control, pair.variant
    if a.variance <= 0 or b.variance <= 0:
        return DEFAULT_EFFECT
    if not relative:
        variance = b.variance / b.n + a.variance / a.n
    elif pair.relative_variance is not None:
        variance = pair.relative_variance
    else:
        variance = independent_relative_variance(a, b)
    if not variance > 0 or not math.isfinite(variance):
        return DEFAULT_EFFECT
    if a.mean == 0 or a.unadjusted_mean == 0:
        return DEFAULT_EFFECT
    estimate = (b.mean - a.mean) / abs(a.unadjusted_mean) if relative else b.mean - a.mean
    return t_test(estimate, variance, welch_dof(a, b), alpha)


# ---------------------------------------------------------------------------------------------------------
# SRM and multiple testing


def srm_p_value(units: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-squared p-value of the observed units against the weights (variants of weight 0 are skipped)."""
    cells = [(float(o), float(w)) for o, w in zip(units, weights, strict=True) if w > 0]
    total_units = sum(o for o, _ in cells)
    if len(cells) < 2 or total_units == 0:
        return 1.0
    total_weight = sum(w for _, w in cells)
    statistic = 0.0
    for observed, weight in cells:
        expected = weight / total_weight * total_units
        statistic += (observed - expected) ** 2 / expected
    return float(scipy_stats.chi2.sf(statistic, len(cells) - 1))


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(p_values[i] * (m - rank), 1.0))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (FDR), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for rank_from_top, i in enumerate(order):
        running = min(running, min(p_values[i] * m / (m - rank_from_top), 1.0))
        adjusted[i] = running
    return adjusted


ADJUSTERS: dict[str, Callable[[Sequence[float]], list[float]]] = {
    "holm": holm_bonferroni,
    "bh": benjamini_hochberg,
    "none": lambda p_values: list(p_values),
}


# ---------------------------------------------------------------------------------------------------------
# Checking the spec


def _fail(path: str, problem: str) -> StatsInputInvalid:
    return StatsInputInvalid(f"{path}: {problem}")


def _object(value: Any, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path or "input", f"expected an object, got {_json_type(value)}")
    for key in value:
        if key not in allowed:
            raise _fail(f"{path}.{key}" if path else str(key), f"unknown field (allowed: {', '.join(allowed)})")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _fail(path, "missing")
    return obj[key]


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, f"expected a number, got {_json_type(value)}")
    if not math.isfinite(value):
        raise _fail(path, f"expected a finite number, got {value}")
    return float(value)


def _count(value: Any, path: str) -> int:
    number = _number(value, path)
    if number < 0 or number != int(number):
        raise _fail(path, f"expected a non-negative integer, got {value}")
    return int(number)


def _probability(value: Any, path: str) -> float:
    number = _number(value, path)
    if not 0.0 < number < 1.0:
        raise _fail(path, f"expected a number strictly between 0 and 1, got {value}")
    return number


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, f"expected a non-empty string, got {_json_type(value)}")
    return value


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise _fail(path, f"expected an array, got {_json_type(value)}")
    return value


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    units: int


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    goal: bool
    arms: dict[str, ArmStats]
    cuped: bool


@dataclass(frozen=True)
class Spec:
    alpha: float
    correction: str
    srm_threshold: float
    variants: list[Variant]
    metrics: list[Metric]


def parse_variants(value: Any) -> list[Variant]:
    variants = []
    for i, raw in enumerate(_list(value, "variants")):
        path = f"variants[{i}]"
        obj = _object(raw, path, VARIANT_FIELDS)
        name = _name(_required(obj, "name", f"{path}.name"), f"{path}.name")
        if any(v.name == name for v in variants):
            raise _fail(f"{path}.name", f"duplicate variant name {name!r}")
        weight = _number(_required(obj, "weight", f"{path}.weight"), f"{path}.weight")
        if weight < 0:
            raise _fail(f"{path}.weight", f"expected a non-negative number, got {weight}")
        units = _count(_required(obj, "units", f"{path}.units"), f"{path}.units")
        variants.append(Variant(name, weight, units))
    if len(variants) < 2:
        raise _fail("variants", f"expected at least 2 variants (the first is the control), got {len(variants)}")
    total = sum(v.weight for v in variants)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise _fail("variants[*].weight", f"weights must sum to 1, they sum to {total:g}")
    return variants


def _arm_fields(kind: str) -> tuple[str, ...]:
    if kind == "ratio":
        return ("n", "sum", "sum_squares", *RATIO_FIELDS, *RATIO_CUPED_FIELDS)
    return ("n", "sum", "sum_squares", *CUPED_FIELDS)


def parse_arm(raw: Any, kind: str, path: str) -> ArmStats:
    obj = _object(raw, path, _arm_fields(kind))

    def number(key: str) -> float:
        return _number(_required(obj, key, f"{path}.{key}"), f"{path}.{key}")

    n = _count(_required(obj, "n", f"{path}.n"), f"{path}.n")
    total = number("sum")
    if kind == "proportion":
        if not 0 <= total <= n:
            raise _fail(f"{path}.sum", f"a proportion counts units with the event: expected 0..{n}, got {total:g}")
        if "sum_squares" in obj and number("sum_squares") != total:
            raise _fail(f"{path}.sum_squares", "a proportion's values are 0/1, so sum_squares must equal sum")
        arm = ArmStats(n=n, sum=total, sum_squares=total)
    else:
        sum_squares = number("sum_squares")
        if sum_squares < 0:
            raise _fail(f"{path}.sum_squares", f"expected a non-negative number, got {sum_squares:g}")
        arm = ArmStats(n=n, sum=total, sum_squares=sum_squares)
    if kind == "ratio":
        arm = ArmStats(n=n, sum=total, sum_squares=arm.sum_squares, denominator_sum=number("denominator_sum"),
                       denominator_sum_squares=number("denominator_sum_squares"),
                       sum_products=number("sum_products"))
        if not any(key in obj for key in RATIO_CUPED_FIELDS):
            return arm
        return replace(arm, **{key: number(key) for key in RATIO_CUPED_FIELDS})
    if not any(key in obj for key in CUPED_FIELDS):
        return arm
    return _with_covariate(arm, obj, kind, path)


def _with_covariate(arm: ArmStats, obj: Mapping[str, Any], kind: str, path: str) -> ArmStats:
    """The arm with its CUPED covariate sums; a proportion's covariate is 0/1, so its squares are its sum."""

    def number(key: str) -> float:
        return _number(_required(obj, key, f"{path}.{key}"), f"{path}.{key}")

    x_sum = number("covariate_sum")
    if kind == "proportion":
        if not 0 <= x_sum <= arm.n:
            raise _fail(f"{path}.covariate_sum", f"a proportion's covariate is 0/1: expected 0..{arm.n}, got {x_sum:g}")
        if "covariate_sum_squares" in obj and number("covariate_sum_squares") != x_sum:
            raise _fail(f"{path}.covariate_sum_squares",
                        "a proportion's covariate is 0/1, so covariate_sum_squares must equal covariate_sum")
        x_squares = x_sum
    else:
        x_squares = number("covariate_sum_squares")
    products = number("sum_products_covariate")
    return ArmStats(n=arm.n, sum=arm.sum, sum_squares=arm.sum_squares, covariate_sum=x_sum,
                    covariate_sum_squares=x_squares, sum_products_covariate=products)


def parse_metric(raw: Any, index: int, variants: list[Variant], seen: set[str]) -> Metric:
    path = f"metrics[{index}]"
    obj = _object(raw, path, METRIC_FIELDS)
    name = _name(_required(obj, "name", f"{path}.name"), f"{path}.name")
    if name in seen:
        raise _fail(f"{path}.name", f"duplicate metric name {name!r}")
    kind = _required(obj, "kind", f"{path}.kind")
    if kind not in KINDS:
        shown = repr(kind) if isinstance(kind, str) else _json_type(kind)
        raise _fail(f"{path}.kind", f"unknown kind {shown} (expected one of: {', '.join(KINDS)})")
    goal = _required(obj, "goal", f"{path}.goal")
    if not isinstance(goal, bool):
        raise _fail(f"{path}.goal", f"expected true or false, got {_json_type(goal)}")
    stats_path = f"{path}.stats"
    stats = _object(_required(obj, "stats", stats_path), stats_path, [v.name for v in variants])
    arms = {v.name: parse_arm(_required(stats, v.name, f"{stats_path}.{v.name}"), kind, f"{stats_path}.{v.name}")
            for v in variants}
    with_covariate = [name for name, arm in arms.items() if arm.covariate_sum is not None]
    if with_covariate and len(with_covariate) != len(arms):
        missing = next(v.name for v in variants if arms[v.name].covariate_sum is None)
        raise _fail(f"{stats_path}.{missing}.covariate_sum",
                    "missing (the CUPED fields must be given for every variant or for none)")
    return Metric(name, kind, goal, arms, bool(with_covariate))


def parse_spec(spec: Any) -> Spec:
    """Check the whole spec and return it typed; raise StatsInputInvalid naming the first bad field."""
    obj = _object(spec, "", TOP_FIELDS)
    alpha = _probability(obj.get("alpha", DEFAULT_ALPHA), "alpha")
    correction = obj.get("correction", DEFAULT_CORRECTION)
    if correction not in CORRECTIONS:
        shown = repr(correction) if isinstance(correction, str) else _json_type(correction)
        raise _fail("correction", f"unknown correction {shown} (expected one of: {', '.join(CORRECTIONS)})")
    srm_threshold = _probability(obj.get("srm_threshold", DEFAULT_SRM_THRESHOLD), "srm_threshold")
    variants = parse_variants(_required(obj, "variants", "variants"))
    metrics: list[Metric] = []
    for i, raw in enumerate(_list(_required(obj, "metrics", "metrics"), "metrics")):
        metrics.append(parse_metric(raw, i, variants, {m.name for m in metrics}))
    return Spec(alpha, correction, srm_threshold, variants, metrics)


# ---------------------------------------------------------------------------------------------------------
# The analysis


MOMENTS: dict[str, Callable[[ArmStats], Moments]] = {
    "mean": mean_moments,
    "proportion": proportion_moments,
    "ratio": ratio_moments,
}


def pair_of(metric: Metric, control: ArmStats, variant: ArmStats) -> Pair:
    """The moments the t-test compares: CUPED-adjusted when the metric has its pre-period inputs."""
    if not metric.cuped:
        return plain_pair(metric.kind, control, variant)
    if metric.kind == "ratio":
        return ratio_cuped_pair(control, variant)
    return cuped_pair(metric.kind, control, variant)


def compare(metric: Metric, control: str, variant: str, alpha: float) -> dict:
    """One result row: the variant against the control on one metric (CUPED when its covariate is given)."""
    arm_a, arm_b = metric.arms[control], metric.arms[variant]
    pair = pair_of(metric, arm_a, arm_b)
    plain_a, plain_b = MOMENTS[metric.kind](arm_a), MOMENTS[metric.kind](arm_b)
    return {
        "metric": metric.name,
        "variant": variant,
        "control_mean": _json_number(plain_a.mean),
        "variant_mean": _json_number(plain_b.mean),
        "absolute": effect(pair, False, alpha).as_dict(),
        "relative": effect(pair, True, alpha).as_dict(),
        "p_value_adjusted": None,
    }


def adjust(results: list[dict], goals: list[bool], correction: str) -> None:
    """Fill p_value_adjusted over the goal metrics' rows that have a relative p-value."""
    family = [i for i, row in enumerate(results) if goals[i] and row["relative"]["p_value"] is not None]
    adjusted = ADJUSTERS[correction]([results[i]["relative"]["p_value"] for i in family])
    for i, p_value in zip(family, adjusted, strict=True):
        results[i]["p_value_adjusted"] = p_value


def analyze(spec: Mapping[str, Any]) -> dict:
    """The engine: the CLI's input dict in, its output dict out (see the module docstring)."""
    checked = parse_spec(spec)
    control, others = checked.variants[0].name, [v.name for v in checked.variants[1:]]
    srm_p = srm_p_value([v.units for v in checked.variants], [v.weight for v in checked.variants])
    results: list[dict] = []
    goals: list[bool] = []
    for metric in checked.metrics:
        for variant in others:
            results.append(compare(metric, control, variant, checked.alpha))
            goals.append(metric.goal)
    adjust(results, goals, checked.correction)
    return {"srm": {"p_value": srm_p, "passed": srm_p >= checked.srm_threshold}, "results": results}
