"""The outcome model: how likely an impression is clicked, invited or dismissed, and an invite accepted.

Why a written-down model with interactions: the `train` job compares a GBT with a logistic regression and
the `heuristic-v1` formula (common connections first). If outcomes rose with common connections alone,
all three would rank alike and the comparison would say nothing. Here outcomes also depend on region,
industry, co-worker tenure, display position and how often the pair was shown before, and two effects are
non-linear (an industry bonus only for pairs with few common connections, and saturating curves in common
connections, tenure and position), so a tree model has something to find that a linear model and the
heuristic miss. The formula is printed in `synthetic.generate`'s docstring (`mutuals generate --help`);
the constants below carry the same names.

All functions are vectorised over arrays of pairs; probabilities are plain floats in [0, 1].
"""

from __future__ import annotations

import numpy as np

from synthetic.signals import PairSignals

# affinity A (logit units) of a pair
COMMON_WEIGHT, COMMON_SCALE = 2.0, 4.0  # 2.0 * (1 - exp(-c / 4)): the first few common connections matter most
REGION_WEIGHT = 0.9
INDUSTRY_WEIGHT, INDUSTRY_MAX_COMMON = 0.8, 2  # same industry helps only when c <= 2
COWORKER_WEIGHT, COWORKER_FULL_DAYS = 1.2, 365  # 1.2 * min(overlap days / 365, 1)

# position effect P(p) = 1.1 * exp(-(p - 1) / 2.5): position 1 best, flat from about position 6
POSITION_WEIGHT, POSITION_SCALE = 1.1, 2.5

CLICK_BASE, CLICK_FATIGUE, CLICK_DISMISSED = -3.7, 0.6, 2.5
INVITE_CLICKED_BASE, INVITE_CLICKED_AFFINITY = -1.9, 0.8
INVITE_UNCLICKED_BASE, INVITE_UNCLICKED_POSITION = -5.4, 0.5
INVITE_FATIGUE, INVITE_DISMISSED = 0.4, 3.0
DISMISS_BASE, DISMISS_AFFINITY, DISMISS_POSITION, DISMISS_FATIGUE = -2.8, 0.5, 0.6, 0.3
ACCEPT_BASE, ACCEPT_AFFINITY = -0.4, 0.8


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def affinity(signals: PairSignals) -> np.ndarray:
    """A = 2.0(1 - e^(-c/4)) + 0.9 R + 0.8 I [c <= 2] + 1.2 min(w / 365, 1)."""
    common = signals.common.astype(np.float64)
    few_common = signals.common <= INDUSTRY_MAX_COMMON
    return (COMMON_WEIGHT * (1.0 - np.exp(-common / COMMON_SCALE))
            + REGION_WEIGHT * signals.same_region
            + INDUSTRY_WEIGHT * (signals.same_industry & few_common)
            + COWORKER_WEIGHT * np.minimum(signals.coworker_days / COWORKER_FULL_DAYS, 1.0))


def position_effect(position: np.ndarray) -> np.ndarray:
    """P(p) = 1.1 e^(-(p - 1) / 2.5) for display position p = 1, 2, ..."""
    return POSITION_WEIGHT * np.exp(-(position.astype(np.float64) - 1.0) / POSITION_SCALE)


def click_probability(a: np.ndarray, position: np.ndarray, shown_before: np.ndarray,
                      dismissed_before: np.ndarray) -> np.ndarray:
    """sigma(-3.7 + A + P - 0.6 s - 2.5 d)."""
    return sigmoid(CLICK_BASE + a + position_effect(position) - CLICK_FATIGUE * shown_before
                   - CLICK_DISMISSED * dismissed_before)


def invite_probability(a: np.ndarray, clicked: np.ndarray, position: np.ndarray, shown_before: np.ndarray,
                       dismissed_before: np.ndarray, lift: np.ndarray) -> np.ndarray:
    """clicked: sigma(-1.9 + 0.8 A - 0.4 s - 3 d); not clicked: sigma(-5.4 + A + 0.5 P - 0.4 s - 3 d);
    both times the viewer's experiment lift, capped at 1."""
    logit = np.where(clicked, INVITE_CLICKED_BASE + INVITE_CLICKED_AFFINITY * a,
                     INVITE_UNCLICKED_BASE + a + INVITE_UNCLICKED_POSITION * position_effect(position))
    logit = logit - INVITE_FATIGUE * shown_before - INVITE_DISMISSED * dismissed_before
    return np.minimum(sigmoid(logit) * lift, 1.0)


def dismiss_probability(a: np.ndarray, position: np.ndarray, shown_before: np.ndarray) -> np.ndarray:
    """sigma(-2.8 - 0.5 A + 0.6 P + 0.3 s), for an impression that was not invited."""
    return sigmoid(DISMISS_BASE - DISMISS_AFFINITY * a + DISMISS_POSITION * position_effect(position)
                   + DISMISS_FATIGUE * shown_before)


def accept_probability(a: np.ndarray) -> np.ndarray:
    """sigma(-0.4 + 0.8 A) for the invitee, whatever surface the invite came from."""
    return sigmoid(ACCEPT_BASE + ACCEPT_AFFINITY * a)
