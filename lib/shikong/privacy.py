"""Privacy transforms of the published tables (pure ``DataFrame -> DataFrame``).

* :func:`pseudonymise`: customer ids -> keyed HMAC-SHA256 pseudonyms (64 hex digits). The
  same key gives the same pseudonym in every table and run, so published tables still join;
  without the key a pseudonym cannot be recomputed from an id.
* :func:`coarsen_points`: WGS84 coordinates -> the centroid of their H3 cell at a configured
  resolution (Sedona's ``ST_H3CellIDs`` / ``ST_H3ToGeom``). Features that need the exact
  point (distances, clusters) are computed before this, inside the job.
* :func:`suppress_small_cells`: drop aggregate cells with fewer than ``k`` distinct
  customers.

The key comes from :mod:`shikong.secrets` through the stage; nothing here reads it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

Transform = Callable[[DataFrame], DataFrame]


def pseudonym(value: str, key: bytes) -> str:
    """The HMAC-SHA256 pseudonym (lowercase hex) of one id under ``key``."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_sha256_column(key: bytes) -> Callable[[Column], Column]:
    """A column function: string -> lowercase hex HMAC-SHA256 under ``key`` (null stays null).

    A pandas UDF (Spark has no HMAC): the key travels to the executors inside the UDF's
    pickled closure, never in a query plan, a Spark setting or a log line.
    """
    if not key:
        raise ValueError("an HMAC key must not be empty")
    k = bytes(key)

    def digest(v: object) -> str | None:
        return pseudonym(v, k) if isinstance(v, str) else None

    @F.pandas_udf("string")  # type: ignore[call-overload]
    def _hmac(s: pd.Series) -> pd.Series:
        return s.map(digest)

    return lambda c: _hmac(c.cast("string"))


def pseudonymise(*, cols: Sequence[str], key: bytes) -> Transform:
    """Replace each of ``cols`` (customer ids) with its HMAC-SHA256 pseudonym under ``key``."""
    fn = hmac_sha256_column(key)

    def apply(df: DataFrame) -> DataFrame:
        return df.withColumns({c: fn(F.col(c)) for c in cols})

    return apply


def h3_centroid(lat: Column, lon: Column, resolution: int) -> tuple[Column, Column]:
    """(lat, lon) of the centroid of the H3 cell holding the point at ``resolution``."""
    cell = stf.ST_H3CellIDs(stc.ST_Point(lon, lat), F.lit(resolution), F.lit(True))[0]
    centre = stf.ST_Centroid(stf.ST_H3ToGeom(F.array(cell))[0])
    known = lat.isNotNull() & lon.isNotNull()
    return (
        F.when(known, stf.ST_Y(centre)).cast("double"),
        F.when(known, stf.ST_X(centre)).cast("double"),
    )


def coarsen_points(*, lat_col: str, lon_col: str, resolution: int) -> Transform:
    """Replace the WGS84 point (``lat_col``, ``lon_col``) by its H3 cell's centroid."""

    def apply(df: DataFrame) -> DataFrame:
        lat, lon = h3_centroid(F.col(lat_col), F.col(lon_col), resolution)
        return df.withColumns({lat_col: lat, lon_col: lon})

    return apply


def distinct_customers(
    rows: DataFrame, *, keys: Sequence[str], customer_col: str = "customer_id"
) -> DataFrame:
    """Distinct customers per cell (``keys``) as ``customers``: the count suppression uses."""
    return rows.groupBy(*keys).agg(F.countDistinct(customer_col).alias("customers"))


def suppress_small_cells(*, k: int, customers_col: str = "customers") -> Transform:
    """Keep only the cells with at least ``k`` distinct customers (``customers_col``)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")

    def apply(df: DataFrame) -> DataFrame:
        return df.where(F.col(customers_col) >= F.lit(k))

    return apply


# --- differential privacy of published counts (privacy.dp_*) -------------------------------


@dataclass(frozen=True)
class NoisyRelease:
    """One count column released with calibrated noise (a row of ``ops.privacy_budget``).

    Attributes:
        mechanism: ``laplace`` (discrete Laplace, pure epsilon-DP) or ``gaussian``
            (discrete Gaussian; zCDP converted to (epsilon, delta)-DP).
        epsilon: The epsilon this column spends, as OpenDP's privacy map states it.
        delta: Its delta (0 for Laplace).
        sensitivity: How far one customer moves the column in total (L1; the contribution
            bound makes it so).
        scale: The noise scale OpenDP calibrated for that epsilon (and delta).
    """

    mechanism: str
    epsilon: float
    delta: float
    sensitivity: int
    scale: float


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")  # the Laplace / Gaussian constructors are contrib
    return dp


def _measurement(dp: Any, mechanism: str, scale: float) -> Any:
    if mechanism == "laplace":
        space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
        return space >> dp.m.then_laplace(scale=scale)
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=float)
    return dp.c.make_zCDP_to_approxDP(space >> dp.m.then_gaussian(scale=scale))


def calibrate(*, mechanism: str, epsilon: float, delta: float, sensitivity: int) -> NoisyRelease:
    """The noise scale spending ``epsilon`` (and ``delta``) on a column of ``sensitivity``.

    OpenDP searches the scale and states the privacy actually spent (its ``map``); the L2
    sensitivity of the Gaussian is bounded by the L1 one.
    """
    if mechanism not in ("laplace", "gaussian"):
        raise ValueError(f"mechanism must be laplace or gaussian, got {mechanism!r}")
    if epsilon <= 0 or sensitivity < 1:
        raise ValueError(f"need epsilon > 0 and sensitivity >= 1, got {epsilon}, {sensitivity}")
    dp = _opendp()
    if mechanism == "laplace":
        scale = dp.binary_search_param(
            lambda s: _measurement(dp, "laplace", s), d_in=sensitivity, d_out=epsilon
        )
        spent = float(_measurement(dp, "laplace", scale).map(sensitivity))
        return NoisyRelease("laplace", spent, 0.0, sensitivity, float(scale))

    def fixed(s: float) -> Any:
        return dp.c.make_fix_delta(_measurement(dp, "gaussian", s), delta)

    scale = dp.binary_search_param(fixed, d_in=float(sensitivity), d_out=(epsilon, delta))
    eps, dlt = fixed(scale).map(float(sensitivity))
    return NoisyRelease("gaussian", float(eps), float(dlt), sensitivity, float(scale))


def bound_contributions(*, max_rows: int, key: bytes, by: str = "customer_id") -> Transform:
    """Keep at most ``max_rows`` rows per ``by`` (customer): the contribution bound of a DP
    release. Which rows stay is a keyed hash of the row, stable across runs and unknown to
    anyone without ``key`` (so not steerable by the customer's own choices)."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    salt = hmac_sha256_column(key)(F.lit("shikong-dp-contribution-bound"))

    def apply(df: DataFrame) -> DataFrame:
        from pyspark.sql import Window

        order = F.xxhash64(salt, *[F.col(c) for c in df.columns])
        w = Window.partitionBy(by).orderBy(order)
        return (
            df.withColumn("_dp_rank", F.row_number().over(w))
            .where(F.col("_dp_rank") <= max_rows)
            .drop("_dp_rank")
        )

    return apply


@dataclass(frozen=True)
class ThresholdRelease:
    """Noisy counts of the keys whose noisy count reaches ``threshold`` (OpenDP's
    ``make_laplace_threshold``): which keys exist is itself released with DP, at ``delta``.

    Attributes:
        epsilon: The epsilon spent (OpenDP's privacy map).
        delta: The delta spent: the chance a key held by few customers gets through.
        scale: The Laplace scale of the counts.
        threshold: The least noisy count released (never below the suppression's k).
        bound: How many keys one customer touches at most (and their L1 total).
        per_key: How much one customer moves one key's count at most.
    """

    epsilon: float
    delta: float
    scale: float
    threshold: int
    bound: int
    per_key: int


def _threshold_measurement(dp: Any, scale: float, threshold: int) -> Any:
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    return dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)


def calibrate_threshold(
    *, epsilon: float, delta: float, bound: int, per_key: int = 1, floor: int = 1
) -> ThresholdRelease:
    """The scale spending ``epsilon`` and the least threshold (>= ``floor``) spending at most
    ``delta``, for customers touching at most ``bound`` keys by at most ``per_key`` each."""
    if epsilon <= 0 or not 0 < delta < 1 or bound < 1 or per_key < 1:
        raise ValueError(f"bad threshold release: {epsilon=}, {delta=}, {bound=}, {per_key=}")
    dp = _opendp()
    d_in = (bound, bound * per_key, per_key)
    # The epsilon depends on the scale only; the delta on the threshold too.
    scale = dp.binary_search(
        lambda s: _threshold_measurement(dp, s, 2**30).map(d_in)[0] <= epsilon,
        bounds=(1e-6, 1e9),
        T=float,
    )
    threshold = dp.binary_search(
        lambda t: _threshold_measurement(dp, scale, t).map(d_in)[1] <= delta,
        bounds=(1, 2**30),
        T=int,
    )
    threshold = max(int(threshold), floor)
    eps, dlt = _threshold_measurement(dp, scale, threshold).map(d_in)
    return ThresholdRelease(float(eps), float(dlt), float(scale), threshold, bound, per_key)


def threshold_counts(counts: dict[str, int], release: ThresholdRelease) -> dict[str, int]:
    """The released keys and their noisy counts (a driver-side draw, OpenDP's sampler)."""
    dp = _opendp()
    return dict(_threshold_measurement(dp, release.scale, release.threshold)(counts))


def noisy_counts(values: Sequence[int], release: NoisyRelease) -> list[int]:
    """``values`` with the noise of ``release`` (driver-side), clamped to 0."""
    dp = _opendp()
    meas = _measurement(dp, release.mechanism, release.scale)
    if release.mechanism == "gaussian":
        meas = dp.c.make_fix_delta(meas, release.delta)
    return [max(0, int(v)) for v in meas([int(v) for v in values])] if len(values) else []
