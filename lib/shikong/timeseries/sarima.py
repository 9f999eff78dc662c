"""One SARIMA candidate: its spec, the default search space, and one fit of it.

A candidate is fitted either by statsmodels' Kalman filter (:func:`fit_sarimax`) or, on
complete simple-differenced data, by the innovations-algorithm likelihood of
:mod:`shikong.timeseries.arma_mle` (:func:`fit_candidate_once` picks); forecasts in levels
come from the Kalman filter of the undifferenced model at fixed parameters
(:func:`sarimax_forecast_arrays`). Which candidates are fitted, and in what order, is
:mod:`shikong.timeseries.order_search`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from statsmodels.tsa.statespace.sarimax import SARIMAX

from shikong.timeseries._common import quiet
from shikong.timeseries.arma_mle import Layout, fit_differenced


@dataclass(frozen=True)
class SarimaSpec:
    """One SARIMA candidate.

    Attributes:
        order: ``(p, d, q)``.
        seasonal_order: ``(P, D, Q, s)``; ``(0, 0, 0, s)`` means non-seasonal.
        trend: ``None`` or ``"c"``: a constant in the ARMA equation of the differenced
            series, so a mean when ``d == D == 0`` and a drift when ``d + D == 1``
            (SARIMAX puts it in the state intercept of the ARMA part, so the same parameter
            holds in the differenced and the undifferenced form); not allowed with two
            differences (a quadratic trend).
    """

    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int, int] = (0, 0, 0, 0)
    trend: str | None = None

    def __post_init__(self) -> None:
        if len(self.order) != 3 or any(int(v) < 0 for v in self.order):
            raise ValueError(f"order must be 3 non-negative ints, got {self.order}")
        if len(self.seasonal_order) != 4 or any(int(v) < 0 for v in self.seasonal_order):
            raise ValueError(
                f"seasonal_order must be 4 non-negative ints, got {self.seasonal_order}"
            )
        if self.order[1] > 2 or self.seasonal_order[1] > 1:
            raise ValueError(f"d must be <= 2 and D <= 1, got {self.order}, {self.seasonal_order}")
        if self.is_seasonal and self.seasonal_order[3] < 2:
            raise ValueError(f"seasonal period must be >= 2, got {self.seasonal_order}")
        if self.trend not in (None, "c"):
            raise ValueError(f"trend must be None or 'c', got {self.trend!r}")
        if self.trend == "c" and sum(self.differencing) > 1:
            raise ValueError(f"trend 'c' needs d + D <= 1, got {self.name}")

    @property
    def is_seasonal(self) -> bool:
        """Whether any of P, D, Q is non-zero."""
        return any(self.seasonal_order[:3])

    @property
    def differencing(self) -> tuple[int, int]:
        """``(d, D)``."""
        return self.order[1], self.seasonal_order[1] if self.is_seasonal else 0

    @property
    def n_params(self) -> int:
        """Estimated ARMA(+constant) parameters, the complexity used for ordering."""
        p, _, q = self.order
        big_p, _, big_q, _ = self.seasonal_order
        return p + q + big_p + big_q + (1 if self.trend else 0)

    @property
    def statsmodels_seasonal_order(self) -> tuple[int, int, int, int]:
        """Seasonal order as passed to SARIMAX (all zeros when non-seasonal)."""
        return tuple(self.seasonal_order) if self.is_seasonal else (0, 0, 0, 0)  # type: ignore[return-value]

    @property
    def name(self) -> str:
        """E.g. ``SARIMA(1,0,1)(0,1,1,7)`` or ``SARIMA(1,0,1)(0,0,0,0)+c``."""
        o = ",".join(str(v) for v in self.order)
        s = ",".join(str(v) for v in self.statsmodels_seasonal_order)
        return f"SARIMA({o})({s})" + ("+c" if self.trend else "")


def _candidates(season: int) -> tuple[SarimaSpec, ...]:
    s = season
    return (
        SarimaSpec((1, 0, 0), trend="c"),
        SarimaSpec((1, 0, 1), trend="c"),
        SarimaSpec((0, 1, 1)),
        SarimaSpec((1, 1, 1)),
        SarimaSpec((0, 1, 1), trend="c"),
        SarimaSpec((1, 1, 1), trend="c"),
        SarimaSpec((1, 0, 0), (1, 0, 0, s), trend="c"),
        SarimaSpec((1, 0, 1), (1, 0, 1, s), trend="c"),
        SarimaSpec((0, 1, 1), (1, 0, 1, s)),
        SarimaSpec((1, 1, 1), (1, 0, 1, s)),
        SarimaSpec((0, 1, 1), (1, 0, 1, s), trend="c"),
        SarimaSpec((1, 1, 1), (1, 0, 1, s), trend="c"),
        SarimaSpec((1, 0, 0), (0, 1, 1, s)),
        SarimaSpec((1, 0, 1), (0, 1, 1, s)),
        SarimaSpec((1, 0, 0), (0, 1, 1, s), trend="c"),
        SarimaSpec((1, 0, 1), (0, 1, 1, s), trend="c"),
        SarimaSpec((0, 1, 1), (0, 1, 1, s)),
        SarimaSpec((1, 1, 1), (0, 1, 1, s)),
    )


#: Default search space for weekly data: two orders per ``(d, D)`` and seasonality, each
#: with and without drift where ``d + D == 1``.
DEFAULT_CANDIDATES: tuple[SarimaSpec, ...] = _candidates(7)


#: Warm-start cache: candidate -> last fitted parameter vector.
WarmStarts = dict[SarimaSpec, np.ndarray]


def fit_sarimax(
    y: np.ndarray,
    spec: SarimaSpec,
    *,
    simple_differencing: bool = False,
    maxiter: int = 50,
    start_params: np.ndarray | None = None,
):  # noqa: ANN201 - statsmodels results type
    """Fit one SARIMAX candidate with statsmodels the way the search does.

    L-BFGS, concentrated scale, and no parameter covariance (``cov_type='none'``: the
    outer-product Hessian costs ~6% of a fit and nothing here reads standard errors).

    Args:
        y: Values by day, NaN = missing.
        spec: The candidate.
        simple_differencing: Difference before building the state space.
        maxiter: Optimiser iterations.
        start_params: Warm start (e.g. the previous fold's parameters).

    Returns:
        The statsmodels ``SARIMAXResults``.
    """
    model = _sarimax_model(y, spec, simple_differencing=simple_differencing)
    with quiet():
        return model.fit(
            start_params=start_params,
            method="lbfgs",
            maxiter=maxiter,
            disp=False,
            cov_type="none",
        )


def sarimax_forecast_arrays(
    y: np.ndarray, spec: SarimaSpec, params: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the level forecast for fixed parameters (no fitting).

    Args:
        y: Values by day (levels).
        spec: The candidate.
        params: Parameters (from a simple-differenced or full fit; same layout).
        horizon: Steps ahead.

    Returns:
        ``(mean, se)`` arrays of length ``horizon``.
    """
    model = SARIMAX(
        np.asarray(y, dtype=float),
        order=spec.order,
        seasonal_order=spec.statsmodels_seasonal_order,
        trend=spec.trend,
        simple_differencing=False,
        concentrate_scale=True,
    )
    with quiet():
        # no parameter covariance: the outer-product Hessian would cost more than the filter
        res = model.filter(params, cov_type="none")
        fc = res.get_forecast(horizon)
        return np.asarray(fc.predicted_mean, dtype=float), np.asarray(fc.se_mean, dtype=float)


@dataclass(frozen=True)
class CandidateFit:
    """What one optimiser run of a candidate returns, whichever likelihood was used.

    Attributes:
        params: Constrained parameters in SARIMAX layout (concentrated scale).
        aic: Akaike information criterion.
        converged: Whether the optimiser reported convergence.
        result: The statsmodels results (Kalman path) or None (innovations path).
    """

    params: np.ndarray
    aic: float
    converged: bool
    result: object | None


def sarimax_start_params(y: np.ndarray, spec: SarimaSpec) -> np.ndarray:
    """statsmodels' default start of the simple-differenced model (what ``fit`` would use)."""
    model = _sarimax_model(y, spec, simple_differencing=True)
    with quiet():
        return np.asarray(model.start_params, dtype=float)


def _sarimax_model(y: np.ndarray, spec: SarimaSpec, *, simple_differencing: bool) -> SARIMAX:
    """The statsmodels state-space model of ``spec`` (scale concentrated out)."""
    return SARIMAX(
        np.asarray(y, dtype=float),
        order=spec.order,
        seasonal_order=spec.statsmodels_seasonal_order,
        trend=spec.trend,
        simple_differencing=simple_differencing,
        concentrate_scale=True,
    )


def fit_candidate_once(
    y: np.ndarray,
    spec: SarimaSpec,
    *,
    simple: bool,
    maxiter: int,
    start_params: np.ndarray | None,
    fast: bool,
) -> CandidateFit | None:
    """One optimiser run of one candidate (may raise; the caller skips failures).

    Args:
        y: Values by day, NaN = missing.
        spec: The candidate.
        simple: Fit the simple-differenced model.
        maxiter: L-BFGS iterations.
        start_params: Warm start, or None for statsmodels' default start.
        fast: Allow the innovations-algorithm likelihood (used only when ``simple`` and
            no value is missing; otherwise statsmodels' Kalman filter).

    Returns:
        The fit, or None when the innovations path could not evaluate the likelihood.
    """
    if fast and simple and np.isfinite(y).all():
        start = sarimax_start_params(y, spec) if start_params is None else start_params
        fit = fit_differenced(
            y,
            Layout.of(spec.order, spec.statsmodels_seasonal_order, spec.trend),
            start,
            maxiter=maxiter,
        )
        if fit is None:
            return None
        return CandidateFit(fit.params, fit.aic, fit.converged, None)
    res = fit_sarimax(
        y, spec, simple_differencing=simple, maxiter=maxiter, start_params=start_params
    )
    converged = bool(res.mle_retvals.get("converged", True)) if res.mle_retvals else True
    return CandidateFit(np.asarray(res.params, dtype=float), float(res.aic), converged, res)
