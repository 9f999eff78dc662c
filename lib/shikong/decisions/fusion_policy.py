"""The fusion model's quantiles as the policy's forecast distribution, and the three-policy
comparison (fusion-driven vs SARIMA-driven vs naive).

The fusion-driven policy runs the same code as the SARIMA-driven one
(:func:`~shikong.decisions.inventory_policy.compute_policy`,
:func:`~shikong.decisions.inventory_simulation.compute_simulation`) on the same stock
points; only the forecast rows differ. The model gives, per stock point and day, the
median ``m_d`` and the service-level quantile ``u_d`` (``decisions.service_level`` is one
of its quantile levels). The policy's ``normal`` method reads a day's distribution from its
forecast bands, so each day is written as the normal distribution with mean ``m_d`` whose
service-level quantile is ``u_d``: ``sigma_d = (u_d - m_d) / z`` with ``z = Phi^-1(SL)``,
and bands ``m_d +- z_band * sigma_d``. Lead-time demand is the sum of the days.

Assumption (stated, not learnt): the days' demands are independent given the forecast, so
the lead-time quantile is ``sum m_d + z * sqrt(sum sigma_d^2)``, i.e. reorder point =
``sum m_d + sqrt(sum (u_d - m_d)^2)``: cycle stock from the medians, safety stock the
root-sum-square of the daily service-level excesses. Perfectly correlated days would give
``sum u_d`` instead (more stock); the median stands in for the mean (demand is
right-skewed, so cycle stock is a little lower than with the mean).

Plain pandas/numpy; the Spark side is
:func:`shikong.decisions.spark_frames.fusion_policy_forecasts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from shikong.decisions.inventory_simulation import simulation_summary

#: ``forecast_source`` of the policy rows: which forecast drove them.
SOURCE_SARIMA = "sarima"
SOURCE_FUSION = "fusion"
FORECAST_SOURCES = (SOURCE_SARIMA, SOURCE_FUSION)

#: Rows of :func:`policy_comparison`, in this order.
COMPARED = ("naive", SOURCE_SARIMA, SOURCE_FUSION)

# Half-widths of the central bands in sigmas (as inventory_common reads them back).
Z80 = float(norm.ppf(0.90))
Z95 = float(norm.ppf(0.975))


def daily_sigma_from_quantiles(
    median: Sequence[float] | np.ndarray,
    upper: Sequence[float] | np.ndarray,
    service_level: float,
) -> np.ndarray:
    """Per-day sigma of the normal with mean ``median`` whose ``service_level`` quantile is
    ``upper`` (quantiles that cross give 0).

    Raises:
        ValueError: For a service level not above 0.5 (no upper quantile to match).
    """
    if not 0.5 < service_level < 1.0:
        raise ValueError(f"service_level must be in (0.5, 1), got {service_level}")
    z = float(norm.ppf(service_level))
    gap = np.asarray(upper, dtype=float) - np.asarray(median, dtype=float)
    return np.maximum(gap, 0.0) / z


#: Fewest validation windows :func:`lead_time_spread` calibrates from (fewer: factor 1).
MIN_CALIBRATION_WINDOWS = 30


def lead_time_spread(
    actual: np.ndarray,
    median: np.ndarray,
    upper: np.ndarray,
    *,
    days: int,
    service_level: float,
) -> tuple[float, int]:
    """Split-conformal factor on the daily sigmas so that the policy's lead-time quantile
    covers ``service_level`` of held-out windows.

    The policy's lead-time bound of a window is ``M + c * S`` with ``M`` the sum of the
    first ``days`` daily medians and ``S = sqrt(sum (u_d - m_d)^2)`` (sigmas scaled so that
    ``c = 1`` is the model's own quantiles under the independence assumption). A window
    of actual demand ``Y`` is covered for ``c >= r = (Y - M) / S`` (``r = 0`` if
    ``Y <= M``; no ``c`` covers it if ``S = 0 < Y - M``). ``c`` is the
    ``ceil((n + 1) * service_level)``-th smallest ``r`` of the ``n`` windows (split
    conformal: coverage at least ``service_level`` on exchangeable new windows).

    Args:
        actual, median, upper: ``(windows, horizon)`` arrays of one split: demand, the 0.5
            and the ``service_level`` quantile forecasts (NaN actuals: the window is left out).
        days: Days of the lead time (at most the horizon).
        service_level: Coverage wanted, in (0.5, 1).

    Returns:
        ``(c, n)``: the factor and the windows it came from; ``(1.0, n)`` when ``n`` is below
        :data:`MIN_CALIBRATION_WINDOWS` or no finite factor reaches the level.
    """
    if not 0.5 < service_level < 1.0:
        raise ValueError(f"service_level must be in (0.5, 1), got {service_level}")
    a, m, u = (np.asarray(x, dtype=float)[:, :days] for x in (actual, median, upper))
    keep = np.isfinite(a).all(axis=1) & np.isfinite(m).all(axis=1) & np.isfinite(u).all(axis=1)
    a, m, u = a[keep], np.maximum(m[keep], 0.0), u[keep]
    n = len(a)
    if n < MIN_CALIBRATION_WINDOWS:
        return 1.0, n
    excess = a.sum(axis=1) - m.sum(axis=1)
    spread = np.sqrt((np.maximum(u - m, 0.0) ** 2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(excess <= 0, 0.0, np.where(spread > 0, excess / spread, np.inf))
    k = int(np.ceil((n + 1) * service_level))
    if k > n:
        return 1.0, n
    c = float(np.sort(r)[k - 1])
    return (c, n) if np.isfinite(c) else (1.0, n)


def policy_label(sim: pd.DataFrame) -> pd.Series:
    """The compared policy of each replay row: ``naive`` or its ``forecast_source``."""
    source = sim["forecast_source"] if "forecast_source" in sim.columns else SOURCE_SARIMA
    return pd.Series(np.where(sim["policy"] == "naive", "naive", source), index=sim.index)


def policy_comparison(sim: pd.DataFrame) -> pd.DataFrame:
    """Naive vs SARIMA-driven vs fusion-driven over the stock points every one replayed.

    The naive rule is the SARIMA replay's (it opens at the SARIMA policy's order-up-to
    level; each forecast-driven policy opens at its own). Stock points missing one of the
    policies are left out of every row, so the rows compare like with like.

    Args:
        sim: ``gold.policy_simulation`` rows of one run date (``policy`` and
            ``forecast_source`` columns; rows without a source count as SARIMA's).

    Returns:
        One row per policy present, in :data:`COMPARED` order: ``policy``, ``pairs``,
        ``fill_rate`` (mean over stock points), ``stockout_days``, ``avg_inventory`` and
        ``total_cost`` (summed over stock points).
    """
    cols = ["policy", "pairs", "fill_rate", "stockout_days", "avg_inventory", "total_cost"]
    if sim.empty:
        return pd.DataFrame(columns=cols)
    frame = sim.assign(_label=policy_label(sim))
    frame["forecast_source"] = (
        frame["forecast_source"].fillna(SOURCE_SARIMA)
        if "forecast_source" in frame.columns
        else SOURCE_SARIMA
    )
    # The naive row of the fusion replay (if one was written) is not the compared one.
    frame = frame.loc[(frame["_label"] != "naive") | (frame["forecast_source"] == SOURCE_SARIMA)]
    labels = [p for p in COMPARED if p in set(frame["_label"])]
    points = frame.groupby(["sku", "warehouse_id"])["_label"].agg(lambda s: set(s))
    common = points[points.apply(lambda s: set(labels) <= s)].index
    keyed = frame.set_index(["sku", "warehouse_id"])
    keyed = keyed.loc[keyed.index.isin(common)].reset_index()
    out = (
        simulation_summary(keyed, by="_label")
        .set_index("_label")
        .reindex(labels)
        .rename_axis("policy")
        .reset_index()
    )
    return out[cols]


__all__ = [
    "COMPARED",
    "FORECAST_SOURCES",
    "SOURCE_FUSION",
    "SOURCE_SARIMA",
    "Z80",
    "Z95",
    "daily_sigma_from_quantiles",
    "lead_time_spread",
    "policy_comparison",
    "policy_label",
]
