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
  `sum_products_covariate`, given for every variant of the metric or for none; not accepted on ratios.
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
* A quantity that is not defined (a variant with fewer than 2 units, a zero variance, a zero control mean
  for the relative lift, a zero denominator) is null in the output, never a made-up 0 or 1; a null p-value
  is left out of the correction's family.

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
  with m_b the unadjusted variant mean. df uses v_adj. CUPED is for means and proportions only.
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
from dataclasses import dataclass
from typing import Any

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
TOP_FIELDS = ("alpha", "correction", "srm_threshold", "variants", "metrics")
VARIANT_FIELDS = ("name", "weight", "units")
METRIC_FIELDS = ("name", "kind", "goal", "stats")


class StatsInputInvalid(UsageError):
    """The stats spec cannot be used; the message names the field (a path such as metrics[1].stats.treatment.n)."""


# ---------------------------------------------------------------------------------------------------------
# Statistics of one variant


@dataclass(frozen=True)
class ArmStats:
    """One variant's sufficient statistics for one metric, already checked."""

    n: int
    sum: float
    sum_squares: float
    denominator_sum: float = 0.0
    denominator_sum_squares: float = 0.0
    sum_products: float = 0.0
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    sum_products_covariate: float | None = None


@dataclass(frozen=True)
class Moments:
    """What the t-test needs from one variant: units, the (adjusted) mean, the per-unit variance."""

    n: int
    mean: float | None
    variance: float
    unadjusted_mean: float | None


def sample_variance(n: int, total: float, sum_squares: float) -> float:
    """Unbiased variance (n - 1) from sums; 0 with fewer than two units, where it is not defined."""
    if n <= 1:
        return 0.0
    return (sum_squares - total * total / n) / (n - 1)


def proportion_variance(n: int, total: float) -> float:
    """p (1 - p) of a 0/1 variable, the Bernoulli variance gbstats uses for proportions."""
    if n <= 0:
        return 0.0
    p = total / n
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


def _mean(n: int, total: float) -> float | None:
    return total / n if n > 0 else None


def mean_moments(arm: ArmStats) -> Moments:
    mean = _mean(arm.n, arm.sum)
    return Moments(arm.n, mean, sample_variance(arm.n, arm.sum, arm.sum_squares), mean)


def proportion_moments(arm: ArmStats) -> Moments:
    mean = _mean(arm.n, arm.sum)
    return Moments(arm.n, mean, proportion_variance(arm.n, arm.sum), mean)


def variance_of_ratio(mean_m: float, var_m: float, mean_d: float, var_d: float, cov_md: float) -> float:
    """Delta-method variance of M / D around (mean_m, mean_d), with the covariance of M and D."""
    return var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2.0 * cov_md * mean_m / mean_d**3


def ratio_moments(arm: ArmStats) -> Moments:
    """Per-unit moments of a ratio metric sum(M) / sum(D); undefined (None, 0) when sum(D) is 0."""
    if arm.n <= 0 or arm.denominator_sum == 0:
        return Moments(arm.n, None, 0.0, None)
    mean = arm.sum / arm.denominator_sum
    if arm.n <= 1:
        return Moments(arm.n, mean, 0.0, mean)
    variance = variance_of_ratio(
        arm.sum / arm.n,
        sample_variance(arm.n, arm.sum, arm.sum_squares),
        arm.denominator_sum / arm.n,
        sample_variance(arm.n, arm.denominator_sum, arm.denominator_sum_squares),
        sample_covariance(arm.n, arm.sum, arm.denominator_sum, arm.sum_products),
    )
    return Moments(arm.n, mean, variance, mean)


# ---------------------------------------------------------------------------------------------------------
# CUPED


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
    return CupedArm(arm.n, arm.sum / arm.n, x_sum / arm.n, var_y, var_x, cov)


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
    """theta = Cov(Y, X) / Var(X) over both variants pooled; 0 (no adjustment) when either variance is 0."""
    joint = cuped_arm(pooled(control, variant), proportion)
    if joint.var_x <= 0 or joint.var_y <= 0:
        return 0.0
    return joint.cov_yx / joint.var_x


def cuped_relative_variance(control: CupedArm, variant: CupedArm, theta: float) -> float:
    """Delta-method variance of (m_adj_b - m_adj_a) / |m_a| as gbstats computes it for CUPED."""
    m_a, m_b = control.mean_y, variant.mean_y
    treated = variant.adjusted(theta).variance / (variant.n * m_a**2)
    ctrl = (
        control.var_y * m_b**2 / m_a**2
        - 2.0 * theta * control.cov_yx * m_b / m_a
        + theta**2 * control.var_x
    ) / (control.n * m_a**2)
    return treated + ctrl


# ---------------------------------------------------------------------------------------------------------
# The t-test


@dataclass(frozen=True)
class Effect:
    """A two-sided test of one estimate: None fields where the test is not defined."""

    estimate: float | None
    ci: tuple[float | None, float | None]
    p_value: float | None
    standard_error: float | None = None

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "ci": [self.ci[0], self.ci[1]], "p_value": self.p_value}


UNDEFINED = Effect(None, (None, None), None)


def welch_dof(a: Moments, b: Moments) -> float:
    """Welch-Satterthwaite degrees of freedom of the difference of two means."""
    va, vb = a.variance / a.n, b.variance / b.n
    return (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))


def t_test(estimate: float, variance: float, dof: float, alpha: float) -> Effect:
    """Two-sided Student t test of estimate = 0 and its 1 - alpha CI."""
    if not (variance > 0 and math.isfinite(variance) and math.isfinite(estimate)):
        return Effect(_finite(estimate), (None, None), None)
    se = math.sqrt(variance)
    half = float(scipy_stats.t.ppf(1.0 - alpha / 2.0, dof)) * se
    p_value = 2.0 * float(scipy_stats.t.sf(abs(estimate / se), dof))
    return Effect(estimate, (estimate - half, estimate + half), min(p_value, 1.0), se)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _testable(a: Moments, b: Moments) -> bool:
    return a.n > 1 and b.n > 1 and a.mean is not None and b.mean is not None and a.variance > 0 and b.variance > 0


def absolute_effect(a: Moments, b: Moments, alpha: float) -> Effect:
    """Difference of the (adjusted) means; its test needs two units and a positive variance in each variant."""
    if a.mean is None or b.mean is None:
        return UNDEFINED
    estimate = b.mean - a.mean
    if not _testable(a, b):
        return Effect(estimate, (None, None), None)
    return t_test(estimate, b.variance / b.n + a.variance / a.n, welch_dof(a, b), alpha)


def relative_variance(a: Moments, b: Moments) -> float:
    """Delta-method variance of m_b / m_a - 1 for independent variants."""
    return variance_of_ratio(b.unadjusted_mean, b.variance / b.n, a.unadjusted_mean, a.variance / a.n, 0.0)


def relative_effect(a: Moments, b: Moments, alpha: float, variance: float | None = None) -> Effect:
    """Relative lift (m_b - m_a) / |m_a| over the unadjusted control mean; `variance` overrides the delta method."""
    if a.mean is None or b.mean is None or not a.unadjusted_mean:
        return UNDEFINED
    estimate = (b.mean - a.mean) / abs(a.unadjusted_mean)
    if not _testable(a, b):
        return Effect(estimate, (None, None), None)
    rel_variance = relative_variance(a, b) if variance is None else variance
    return t_test(estimate, rel_variance, welch_dof(a, b), alpha)


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
        return ("n", "sum", "sum_squares", *RATIO_FIELDS)
    return ("n", "sum", "sum_squares", *CUPED_FIELDS)


def parse_arm(raw: Any, kind: str, path: str) -> ArmStats:
    if kind == "ratio" and isinstance(raw, Mapping):
        for key in CUPED_FIELDS:
            if key in raw:
                raise _fail(f"{path}.{key}", "CUPED is supported for mean and proportion metrics, not ratios")
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
        return ArmStats(n=n, sum=total, sum_squares=arm.sum_squares, denominator_sum=number("denominator_sum"),
                        denominator_sum_squares=number("denominator_sum_squares"),
                        sum_products=number("sum_products"))
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


def compare(metric: Metric, control: str, variant: str, alpha: float) -> dict:
    """One result row: the variant against the control on one metric (CUPED when its covariate is given)."""
    arm_a, arm_b = metric.arms[control], metric.arms[variant]
    plain_a, plain_b = MOMENTS[metric.kind](arm_a), MOMENTS[metric.kind](arm_b)
    theta = 0.0
    if metric.cuped and arm_a.n > 1 and arm_b.n > 1:
        theta = cuped_theta(arm_a, arm_b, metric.kind == "proportion")
    if theta:
        proportion = metric.kind == "proportion"
        cuped_a, cuped_b = cuped_arm(arm_a, proportion), cuped_arm(arm_b, proportion)
        a, b = cuped_a.adjusted(theta), cuped_b.adjusted(theta)
        variance = cuped_relative_variance(cuped_a, cuped_b, theta) if cuped_a.mean_y else None
        relative = relative_effect(a, b, alpha, variance)
    else:
        a, b = plain_a, plain_b
        relative = relative_effect(a, b, alpha)
    return {
        "metric": metric.name,
        "variant": variant,
        "control_mean": plain_a.mean,
        "variant_mean": plain_b.mean,
        "absolute": absolute_effect(a, b, alpha).as_dict(),
        "relative": relative.as_dict(),
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
