"""What the forecaster's modules share: its configuration, its result and their codes.

:class:`ForecastConfig` configures the whole routing (:mod:`shikong.timeseries.forecast`),
the SARIMA search (:mod:`shikong.timeseries.order_search`) and the fallbacks
(:mod:`shikong.timeseries.baselines`); each of them returns a :class:`SeriesForecast`
carrying a model name and a routing reason code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from shikong.timeseries.sarima import DEFAULT_CANDIDATES, SarimaSpec, WarmStarts

Z80 = float(norm.ppf(0.90))
Z95 = float(norm.ppf(0.975))

# reason codes
OK = "ok"
EMPTY = "empty"
ALL_ZERO = "all_zero"
CONSTANT = "constant"
NAN_HEAVY = "nan_heavy"
INTERMITTENT = "intermittent"
SINGLE_SALE = "single_sale"
TOO_SHORT = "too_short"
SARIMA_FAILED = "sarima_failed"
ETS_FAILED = "ets_failed"

#: Forecasting engines (``ForecastConfig.engine``).
ENGINES: tuple[str, ...] = ("statsmodels", "statsforecast")

# model names that are not SARIMA/ETS specs
MODEL_ZERO = "zero"
MODEL_SNAIVE = "seasonal_naive"
MODEL_NAIVE = "naive"
MODEL_MEAN = "mean"


@dataclass(frozen=True)
class ForecastConfig:
    """Configuration of :func:`~shikong.timeseries.forecast.forecast_series` and the rest.

    Attributes:
        horizon: Days ahead.
        season: Seasonal period in days (weekly = 7).
        candidates: SARIMA search space.
        target_col: Input column with the values to model (e.g. ``y_clean`` of the cleaned
            output). Days with ``available == False`` are treated as missing when that
            column exists.
        seasonality_test: Gate seasonal/non-seasonal candidates with the lag-``season`` ACF.
        acf_z: z of the one-sided Bartlett bound of that test.
        seasonal_only_when_strong: Drop non-seasonal candidates when seasonality is strong.
        differencing_by_tests: Pick ``(d, D)`` by KPSS / seasonal strength first.
        drift_by_aic: Decide constant/drift on the cheapest order that has both variants,
            then fit only that variant of the others.
        kpss_alpha: KPSS level; p below it -> ``d = 1``.
        seasonal_strength_threshold: STL seasonal strength at which ``D = 1``.
        simple_differencing: Fit with differenced data when the AICs stay comparable.
        maxiter: L-BFGS iterations of a cold fit.
        warm_maxiter: L-BFGS iterations of a warm-started fit (cold retry on failure).
        require_convergence: Reject candidates whose optimiser did not converge.
        patience: Stop after this many consecutive candidates without AIC gain; None = all.
        min_aic_gain: AIC decrease that counts as a gain.
        min_obs: Observed days needed for SARIMA.
        min_obs_ets: Observed days needed for the ETS fallback.
        max_nan_frac: Missing-day share above which a series is ``nan_heavy``.
        intermittent_method: ``sba``, ``croston`` or ``None`` (intermittent -> SARIMA path).
        adi_threshold: Average demand interval above which a series is intermittent.
        croston_alpha: Smoothing constant of Croston/SBA.
        preclean: Replace gross outliers by the Hampel median before modelling.
        preclean_window: Hampel window of ``preclean``.
        preclean_sigmas: Hampel threshold of ``preclean`` (only gross outliers).
        max_forecast_ratio: Reject model forecasts beyond this multiple of max |y|.
        max_history: Model only the last N days (speed on long series); None = all.
        nonnegative: Clip point forecasts and bounds at 0.
        engine: ``statsmodels`` (the SARIMA search, ETS fallback) or ``statsforecast``
            (AutoARIMA, AutoETS fallback; needs the optional ``statsforecast`` package).
        fast_likelihood: Fit simple-differenced candidates on complete data with the
            innovations-algorithm likelihood (:mod:`~shikong.timeseries.arma_mle`);
            False = statsmodels' Kalman filter for every fit.
        sf_approximation: statsforecast AutoARIMA searches orders on the conditional
            sum of squares and refits the winner by maximum likelihood (R's
            ``auto.arima`` default for series longer than 150 points).
    """

    horizon: int = 28
    season: int = 7
    candidates: tuple[SarimaSpec, ...] = DEFAULT_CANDIDATES
    target_col: str = "y"
    seasonality_test: bool = True
    acf_z: float = 1.96
    seasonal_only_when_strong: bool = True
    differencing_by_tests: bool = True
    drift_by_aic: bool = True
    kpss_alpha: float = 0.05
    seasonal_strength_threshold: float = 0.64
    simple_differencing: bool = True
    maxiter: int = 50
    warm_maxiter: int = 25
    require_convergence: bool = True
    patience: int | None = 2
    min_aic_gain: float = 0.0
    min_obs: int = 42
    min_obs_ets: int = 14
    max_nan_frac: float = 0.4
    intermittent_method: str | None = "sba"
    adi_threshold: float = 1.32
    croston_alpha: float = 0.1
    preclean: bool = True
    preclean_window: int = 15
    preclean_sigmas: float = 5.0
    max_forecast_ratio: float = 10.0
    max_history: int | None = None
    nonnegative: bool = True
    engine: str = "statsmodels"
    fast_likelihood: bool = True
    sf_approximation: bool = True

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.season < 2:
            raise ValueError(f"season must be >= 2, got {self.season}")
        if not self.candidates:
            raise ValueError("candidates must not be empty")
        if not all(isinstance(c, SarimaSpec) for c in self.candidates):
            raise ValueError("candidates must be SarimaSpec instances")
        if self.maxiter < 1 or self.warm_maxiter < 1:
            raise ValueError("maxiter and warm_maxiter must be >= 1")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if not 0.0 <= self.max_nan_frac <= 1.0:
            raise ValueError(f"max_nan_frac must be in [0, 1], got {self.max_nan_frac}")
        if self.intermittent_method not in (None, "sba", "croston"):
            raise ValueError(
                f"intermittent_method must be 'sba', 'croston' or None, "
                f"got {self.intermittent_method!r}"
            )
        if not 0.0 < self.croston_alpha <= 1.0:
            raise ValueError(f"croston_alpha must be in (0, 1], got {self.croston_alpha}")
        if self.min_obs < 2 * self.season or self.min_obs_ets < 2:
            raise ValueError(
                f"min_obs must be >= 2 * season and min_obs_ets >= 2, "
                f"got {self.min_obs}, {self.min_obs_ets}"
            )
        if self.preclean_window < 3 or self.preclean_window % 2 == 0:
            raise ValueError(f"preclean_window must be odd and >= 3, got {self.preclean_window}")
        if not self.max_forecast_ratio > 1:
            raise ValueError(f"max_forecast_ratio must be > 1, got {self.max_forecast_ratio}")
        if self.max_history is not None and self.max_history < self.min_obs:
            raise ValueError(f"max_history must be >= min_obs, got {self.max_history}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")


@dataclass
class SeriesForecast:
    """A forecast of one series as arrays (before dates are attached).

    Attributes:
        yhat: Point forecasts, one per step.
        lo80: Lower 80% bounds.
        hi80: Upper 80% bounds.
        lo95: Lower 95% bounds.
        hi95: Upper 95% bounds.
        model: Model name.
        reason: Routing reason code.
        warm: Updated warm-start cache (SARIMA parameters by candidate).
    """

    yhat: np.ndarray
    lo80: np.ndarray
    hi80: np.ndarray
    lo95: np.ndarray
    hi95: np.ndarray
    model: str
    reason: str
    warm: WarmStarts = field(default_factory=dict)


def from_sigma(yhat: np.ndarray, sigma: np.ndarray, model: str, reason: str) -> SeriesForecast:
    """A forecast with normal 80% and 95% intervals ``yhat -+ z * sigma``."""
    return SeriesForecast(
        yhat,
        yhat - Z80 * sigma,
        yhat + Z80 * sigma,
        yhat - Z95 * sigma,
        yhat + Z95 * sigma,
        model,
        reason,
    )


def is_sane(mean: np.ndarray, se: np.ndarray, ref: float, cfg: ForecastConfig) -> bool:
    """Whether a model's forecast is finite and within ``cfg.max_forecast_ratio`` x ``ref``."""
    if not (np.isfinite(mean).all() and np.isfinite(se).all()):
        return False
    return bool(np.max(np.abs(mean)) <= cfg.max_forecast_ratio * max(ref, 1e-9))
