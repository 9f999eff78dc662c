"""Typed, validated, frozen configuration loaded from ``conf/*.yaml``.

Every section is a frozen dataclass. Loading walks the YAML against the dataclass type
hints, so an unknown key, a missing required key or a value of the wrong type fails with
a :class:`ConfigError` whose one-line message names the dotted key.

Environment overrides exist for paths only (secrets never live in YAML): ``SHIKONG_LAKEHOUSE``
replaces ``paths.lakehouse`` and ``SHIKONG_LANDING`` ``paths.landing``. A lakehouse given on
the command line (``--lakehouse``, passed here as ``lakehouse=``) replaces both the file's and
the environment's: the most specific wins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Where profile names (``local``, ``cluster``...) are looked up, in order: the working
#: directory's ``conf/``, the checkout's, and the copy an installed wheel carries (its data
#: files, under the environment's prefix), so profiles work from a wheel alone.
CONF_DIRS = (
    Path.cwd() / "conf",
    Path(__file__).resolve().parents[2] / "conf",
    Path(sys.prefix) / "share" / "shikong" / "conf",
)


class ConfigError(ValueError):
    """A configuration problem, with a one-line message naming the offending key."""


@dataclass(frozen=True)
class SparkSettings:
    """How to build the SparkSession.

    Attributes:
        master: Master URL for local runs (``local[*]``); ``None`` on a cluster, where
            spark-submit or the platform provides it.
        app_name: Spark application name.
        jars_dir: Folder of pre-fetched jars put on ``spark.jars`` (local runs); it must
            hold Sedona and Delta.
        extra_jars_dirs: Further folders of pre-fetched jars added to ``spark.jars``, e.g.
            ``.jars/s3a`` (hadoop-aws and the AWS SDK modules it uses) for an ``s3a://``
            lakehouse; opt-in, a run on local files does not need them.
        packages: Maven coordinates for ``spark.jars.packages`` (clusters without
            pre-installed libraries).
        log_level: Spark's log level once the context is up.
        conf: Extra Spark settings, applied last.
    """

    master: str | None = "local[*]"
    app_name: str = "shikong"
    jars_dir: str | None = ".jars/lib"
    extra_jars_dirs: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    log_level: str = "WARN"
    conf: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Paths:
    """Storage locations.

    Attributes:
        lakehouse: Root of the Delta lakehouse (local path, ``s3a://``, ``abfss://``...).
        landing: Folder where raw files land; defaults to ``<lakehouse>/landing``.
    """

    lakehouse: str = "./lakehouse"
    landing: str | None = None

    @property
    def landing_dir(self) -> str:
        """Resolved landing folder."""
        return self.landing or f"{self.lakehouse.rstrip('/')}/landing"


@dataclass(frozen=True)
class GeneratorSettings:
    """Demo world generator settings."""

    seed: int = 42
    scale: str = "default"
    start_date: dt.date = dt.date(2023, 1, 1)

    def __post_init__(self) -> None:
        if self.scale not in ("small", "default"):
            raise ConfigError(f"generator.scale: must be 'small' or 'default', got {self.scale!r}")


@dataclass(frozen=True)
class IngestSettings:
    """Landing -> bronze validation settings.

    Attributes:
        valid_from: Earliest accepted timestamp/date (inclusive).
        valid_to: Latest accepted timestamp/date (inclusive).
        stream_checkpoint: ``shikong stream``'s checkpoints; "" = <lakehouse>/_streaming/ingest.
        stream_interval_seconds: Seconds between the passes of a continuous stream (> 0).
    """

    valid_from: dt.date = dt.date(2000, 1, 1)
    valid_to: dt.date = dt.date(2035, 12, 31)
    stream_checkpoint: str = ""
    stream_interval_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.valid_from >= self.valid_to:
            raise ConfigError("ingest.valid_from: must be before ingest.valid_to")


@dataclass(frozen=True)
class SpatialSettings:
    """Settings of the ``spatial_features`` job.

    Attributes:
        metric_crs: Projected CRS for metric work (default SIRGAS 2000 / Brazil Polyconic).
        h3_resolutions: H3 resolutions added to every order.
        grid_resolution: H3 resolution of the per-cell daily aggregates and hot spots.
        geohash_precision: Geohash length.
        broadcast_max_pieces: Broadcast the region side of a join up to this many
            subdivided pieces; above it Sedona's partitioned spatial join is used.
        subdivide_max_vertices: Vertices per polygon piece before point-in-polygon.
        nearest_k: Warehouses kept per customer by the KNN join.
        study_area_states: State codes of the study area; empty means all of Brazil.
        hotspot_k_ring: H3 rings around a cell that form its Gi* neighbourhood (2 rings
            at resolution 6 reach about 13 km).
        moran_band_km: Distance band of the global Moran's I (latest period).
        hotspot_period: ``week`` (Gi* per cell x ISO week), ``month`` or ``all``.
        hotspot_time_steps: Periods on each side of a cell's own that join its Gi*
            neighbourhood (the same rings): 0 = one cross-section per period, 1 = the
            previous, same and next period (space-time Gi*), which pools a planted event
            of one to three weeks over the weeks it spans. The statistic of a period then
            also depends on the next ``hotspot_time_steps`` periods.
        dbscan_eps_m: DBSCAN radius in metres.
        dbscan_min_pts: DBSCAN minimum points (counting the point itself).
        dbscan_sample: Customers (seeded hash sample) clustered by DBSCAN; 0 = all.
        kmeans_k_min: Smallest k tried for K-means.
        kmeans_k_max: Largest k tried for K-means.
        kmeans_sample: Customers sampled for K-means model selection.
        region_clusters: Clusters of regions by weekly demand profile.
        checkpoint_dir: Spark checkpoint directory (a URI or path) for the clustering step
            (DBSCAN's connected components); empty = ``<lakehouse>/_checkpoints``
            (:attr:`AppConfig.checkpoint_location`). The session is built with it as
            ``spark.checkpoint.dir``, a static setting: under Spark Connect only the
            server's start-up can set it. On a cluster it must be on storage every executor
            reaches, which the lakehouse is.
    """

    metric_crs: str = "EPSG:5880"
    h3_resolutions: tuple[int, ...] = (6, 8)
    grid_resolution: int = 6
    geohash_precision: int = 6
    broadcast_max_pieces: int = 200_000
    subdivide_max_vertices: int = 64
    nearest_k: int = 3
    study_area_states: tuple[str, ...] = ()
    hotspot_k_ring: int = 2
    moran_band_km: float = 15.0
    hotspot_period: str = "week"
    hotspot_time_steps: int = 1
    dbscan_eps_m: float = 3000.0
    dbscan_min_pts: int = 20
    dbscan_sample: int = 20_000
    kmeans_k_min: int = 2
    kmeans_k_max: int = 6
    kmeans_sample: int = 10_000
    region_clusters: int = 4
    checkpoint_dir: str = ""

    def __post_init__(self) -> None:
        for r in (*self.h3_resolutions, self.grid_resolution):
            if not 0 <= r <= 15:
                raise ConfigError(f"spatial.h3_resolutions: H3 resolution must be 0..15, got {r}")
        if self.grid_resolution not in self.h3_resolutions:
            raise ConfigError("spatial.grid_resolution: must be one of spatial.h3_resolutions")
        if self.hotspot_period not in ("week", "month", "all"):
            raise ConfigError(
                f"spatial.hotspot_period: must be week, month or all, got {self.hotspot_period!r}"
            )
        if not 2 <= self.kmeans_k_min <= self.kmeans_k_max:
            raise ConfigError("spatial.kmeans_k_min: need 2 <= kmeans_k_min <= kmeans_k_max")
        if self.hotspot_k_ring < 1:
            raise ConfigError(f"spatial.hotspot_k_ring: must be >= 1, got {self.hotspot_k_ring}")
        if not 0 <= self.hotspot_time_steps <= 4:
            raise ConfigError(
                f"spatial.hotspot_time_steps: must be in 0..4, got {self.hotspot_time_steps}"
            )
        if self.dbscan_eps_m <= 0:
            raise ConfigError("spatial.dbscan_eps_m: must be positive")


#: ``timeseries.level``: a series per SKU, x region, x warehouse, or category x warehouse state.
SERIES_LEVELS = ("sku", "sku_region", "sku_warehouse", "category_state")


@dataclass(frozen=True)
class TimeSeriesSettings:
    """Settings of the ``demand_series`` and ``forecast_arima`` jobs.

    Attributes:
        level: Series key, one of :data:`SERIES_LEVELS`.
        max_series: Keep the top-N series by units sold (0 = all: ``conf/full.yaml``).
        fill_method: Gap filling: ``linear``, ``polynomial``, ``spline`` or ``seasonal``.
        ma_windows: Moving-average windows (days).
        wavelet: PyWavelets wavelet name (empty string = no wavelet features).
        wavelet_level: Decomposition level.
        horizon: Forecast horizon in days.
        season: Seasonal period in days.
        search: ``pruned`` (tests pick differencing and seasonality, early stop) or
            ``full`` (every candidate order is fitted).
        backtest_folds: Rolling-origin folds (horizon days apart).
        max_history: Model only the last N days (0 = all).
        engine: Forecasting engine: ``statsmodels`` (the SARIMA search) or
            ``statsforecast`` (Nixtla AutoARIMA / AutoETS; optional package, install the
            ``statsforecast`` extra).
    """

    level: str = "sku_warehouse"
    max_series: int = 120
    fill_method: str = "linear"
    ma_windows: tuple[int, ...] = (7, 14, 28)
    wavelet: str = "db4"
    wavelet_level: int = 3
    horizon: int = 28
    season: int = 7
    search: str = "pruned"
    backtest_folds: int = 3
    max_history: int = 0
    engine: str = "statsmodels"

    def __post_init__(self) -> None:
        if self.level not in SERIES_LEVELS:
            raise ConfigError(
                f"timeseries.level: must be one of {', '.join(SERIES_LEVELS)}, got {self.level!r}"
            )
        if self.fill_method not in ("linear", "polynomial", "spline", "seasonal"):
            raise ConfigError(f"timeseries.fill_method: unknown method {self.fill_method!r}")
        if self.search not in ("pruned", "full"):
            raise ConfigError(f"timeseries.search: must be 'pruned' or 'full', got {self.search!r}")
        if self.engine not in ("statsmodels", "statsforecast"):
            raise ConfigError(
                f"timeseries.engine: must be 'statsmodels' or 'statsforecast', got {self.engine!r}"
            )
        if self.horizon < 1 or self.backtest_folds < 1 or self.max_series < 0:
            raise ConfigError(
                "timeseries.horizon: horizon and backtest_folds must be >= 1, max_series >= 0"
            )


@dataclass(frozen=True)
class DecisionSettings:
    """Settings of the ``inventory_policy`` and ``delivery_routes`` jobs.

    Attributes:
        lead_time_days: Replenishment lead time.
        review_days: Review period.
        service_level: Target cycle service level.
        order_cost: Fixed cost per replenishment order.
        holding_rate: Yearly holding cost as a share of the unit price.
        method: Lead-time demand quantiles: ``normal`` (from forecast bands) or
            ``empirical`` (bootstrap of recent forecast errors).
        simulation_weeks: Weeks of actual demand replayed under the policy and the naive rule.
        route_days: Most recent delivery days routed (0 = all days).
        vehicles: Vehicles per warehouse and day.
        vehicle_capacity: Units per vehicle.
        route_time_limit_s: OR-Tools search time cap per warehouse-day.
        route_solution_limit: OR-Tools solutions per warehouse-day (repeatable work budget).
        speed_kmh: Travel speed for time windows.
        road_matrix: URI of a CSV or Parquet file of road distances (``from_id``,
            ``to_id``, ``distance_m``) between warehouses and orders; empty = spheroidal
            distances. Pairs it lacks fall back to the spheroid.
    """

    lead_time_days: int = 7
    review_days: int = 1
    service_level: float = 0.95
    order_cost: float = 50.0
    holding_rate: float = 0.25
    method: str = "empirical"
    simulation_weeks: int = 8
    route_days: int = 3
    vehicles: int = 10
    vehicle_capacity: float = 100.0
    route_time_limit_s: float = 10.0
    route_solution_limit: int = 200
    speed_kmh: float = 30.0
    road_matrix: str = ""

    def __post_init__(self) -> None:
        if not 0.5 <= self.service_level < 1.0:
            raise ConfigError(
                f"decisions.service_level: must be in [0.5, 1), got {self.service_level}"
            )
        if self.method not in ("normal", "empirical"):
            raise ConfigError(
                f"decisions.method: must be 'normal' or 'empirical', got {self.method!r}"
            )
        if self.lead_time_days < 1 or self.vehicles < 1 or self.vehicle_capacity <= 0:
            raise ConfigError(
                "decisions.lead_time_days: lead time, vehicles and capacity must be positive"
            )


@dataclass(frozen=True)
class DemandTrainSettings:
    """Data, model and optimisation settings of the demand fusion model.

    Attributes:
        max_series: Busiest SKU x region (state) series modelled.
        window: History days per example.
        horizon: Days forecast per example.
        stride: Days between training origins of one series.
        encoder: Temporal encoder (``cnn``, ``lstm``, ``cnn_lstm``, ``transformer``).
        d_model: Width of the encoders.
        emb_dim: Width of each id embedding.
        n_layers: Temporal encoder layers.
        dropout: Dropout rate.
        epochs: Maximum epochs.
        batch_size: Global batch size.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        patience: Early-stopping patience (epochs).
        eval_origins: Test origins (one per ``horizon`` days) scored against seasonal naive
            and ARIMA.
    """

    max_series: int = 150
    window: int = 28
    horizon: int = 7
    stride: int = 7
    encoder: str = "cnn"
    d_model: int = 32
    emb_dim: int = 8
    n_layers: int = 2
    dropout: float = 0.1
    epochs: int = 6
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 2
    eval_origins: int = 4

    def __post_init__(self) -> None:
        if self.encoder not in ("cnn", "lstm", "cnn_lstm", "transformer"):
            raise ConfigError(
                "models.demand.encoder: one of cnn, lstm, cnn_lstm, transformer, "
                f"got {self.encoder!r}"
            )
        for name in ("max_series", "window", "horizon", "stride", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"models.demand.{name}: must be >= 1, got {getattr(self, name)}")
        if self.eval_origins < 1 or self.patience < 1:
            raise ConfigError("models.demand.eval_origins: eval_origins and patience must be >= 1")
        if not 0.0 <= self.dropout < 1.0 or self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(
                "models.demand.lr: lr > 0, weight_decay >= 0 and 0 <= dropout < 1 are required"
            )


@dataclass(frozen=True)
class RecoTrainSettings:
    """Data, model and optimisation settings of the location-aware recommender.

    Attributes:
        history_days: Most recent days of ``bronze.events`` turned into examples.
        max_len: Events in a user's history.
        encoder: ``gru`` or ``transformer``.
        d_model: Width of item vectors and the encoder.
        dropout: Dropout rate.
        epochs: Maximum epochs.
        batch_size: Global batch size (in-batch negatives).
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        patience: Early-stopping patience (epochs).
        top_k: Recommendations written per user.
    """

    history_days: int = 90
    max_len: int = 20
    encoder: str = "gru"
    d_model: int = 32
    dropout: float = 0.2
    epochs: int = 4
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.01
    patience: int = 2
    top_k: int = 10

    def __post_init__(self) -> None:
        if self.encoder not in ("gru", "transformer"):
            raise ConfigError(
                f"models.recommender.encoder: one of gru, transformer, got {self.encoder!r}"
            )
        for name in ("history_days", "max_len", "epochs", "batch_size", "patience", "top_k"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"models.recommender.{name}: must be >= 1, got {getattr(self, name)}"
                )
        if not 0.0 <= self.dropout < 1.0 or self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(
                "models.recommender.lr: lr > 0, weight_decay >= 0 and 0 <= dropout < 1 required"
            )


@dataclass(frozen=True)
class ModelSettings:
    """Settings of ``prepare_training_data``, ``train_models`` and ``batch_inference``.

    Attributes:
        enabled: Run the deep-model stages in the pipeline.
        backend: ``local``, ``torch_distributor`` or ``horovod``.
        num_processes: Training processes (data-parallel ranks).
        local_mode: TorchDistributor: processes on the driver (``true``) or in barrier tasks.
        use_gpu: Train on CUDA with NCCL where GPUs exist.
        num_threads: Torch threads per training process.
        num_shards: Parquet shards per split (a multiple of ``num_processes``).
        val_days: Days of validation targets before the test period.
        test_days: Days of test targets at the end of the data.
        seed: Seed of model init, dropout and shuffling.
        mlflow_tracking_uri: MLflow tracking URI; empty = ``file:`` store under the lakehouse;
            ``none`` disables MLflow.
        experiment: MLflow experiment name.
        demand: Demand fusion model settings.
        recommender: Recommender settings.
    """

    enabled: bool = True
    backend: str = "torch_distributor"
    num_processes: int = 2
    local_mode: bool = True
    use_gpu: bool = False
    num_threads: int = 1
    num_shards: int = 4
    val_days: int = 28
    test_days: int = 28
    seed: int = 7
    mlflow_tracking_uri: str = ""
    experiment: str = "shikong"
    demand: DemandTrainSettings = field(default_factory=DemandTrainSettings)
    recommender: RecoTrainSettings = field(default_factory=RecoTrainSettings)

    def __post_init__(self) -> None:
        if self.backend not in ("local", "torch_distributor", "horovod"):
            raise ConfigError(
                f"models.backend: one of local, torch_distributor, horovod, got {self.backend!r}"
            )
        if self.num_processes < 1 or self.num_threads < 1:
            raise ConfigError("models.num_processes: num_processes and num_threads must be >= 1")
        if self.num_shards < self.num_processes or self.num_shards % self.num_processes:
            raise ConfigError(
                f"models.num_shards: must be a multiple of num_processes ({self.num_processes}), "
                f"got {self.num_shards}"
            )
        if self.val_days < 1 or self.test_days < 1:
            raise ConfigError("models.val_days: val_days and test_days must be >= 1")


@dataclass(frozen=True)
class PrivacySettings:
    """What protects the published tables (README "Privacy").

    The pseudonym key itself never lives here: only where to find it (an environment
    variable, a Databricks secret scope and key), resolved by :mod:`shikong.secrets`.

    Attributes:
        pseudonym_key_env: Environment variable holding the HMAC-SHA256 key of customer
            pseudonyms.
        databricks_secret_scope: Databricks secret scope holding the key (empty: none);
            read with ``dbutils.secrets.get`` when the variable is not set.
        databricks_secret_key: Key name within that scope.
        allow_development_key: Use the built-in, clearly named development key when no key
            is configured (the local and small profiles only: a warning says so at start).
            Without it a missing key stops the run in one line, before Spark starts.
        location_h3_resolution: Published customer/order coordinates are the centroid of
            their H3 cell at this resolution (8: about 0.7 km2 per cell).
        min_cell_customers: Published aggregates keep only cells with at least this many
            distinct customers (k of k-anonymity); smaller cells are suppressed.
        dp_epsilon: Epsilon per DP release of the grid tables (a spatial run), split
            evenly over its four parts; 0 (default) publishes exact counts.
        dp_mechanism: ``laplace`` (epsilon-DP) or ``gaussian`` ((epsilon, delta)-DP).
        dp_delta: The Gaussian's delta per count column.
        dp_max_lines_per_customer: Contribution bound of a release (order lines per
            customer), hence the L1 sensitivity of each count column.
        quarantine_retention_days: Quarantined rows lose their raw JSON after this.
        vacuum_retention_hours: The VACUUM retention of ``shikong forget``.
    """

    pseudonym_key_env: str = "SHIKONG_PSEUDONYM_KEY"
    databricks_secret_scope: str = ""
    databricks_secret_key: str = "pseudonym-key"
    allow_development_key: bool = False
    location_h3_resolution: int = 8
    min_cell_customers: int = 5
    dp_epsilon: float = 0.0
    dp_mechanism: str = "laplace"
    dp_delta: float = 1e-6
    dp_max_lines_per_customer: int = 8
    quarantine_retention_days: int = 90
    vacuum_retention_hours: int = 168

    def __post_init__(self) -> None:
        # (key, wrong?, what it must be): the first wrong one is reported, naming the key.
        rules = (
            ("pseudonym_key_env", not self.pseudonym_key_env.strip(), "an environment variable"),
            (
                "databricks_secret_key",
                bool(self.databricks_secret_scope) and not self.databricks_secret_key,
                "needed with privacy.databricks_secret_scope",
            ),
            ("location_h3_resolution", not 0 <= self.location_h3_resolution <= 15, "0..15 (H3)"),
            ("min_cell_customers", self.min_cell_customers < 1, "must be >= 1"),
            ("dp_epsilon", not 0 <= self.dp_epsilon < math.inf, "must be >= 0 (0: off)"),
            ("dp_mechanism", self.dp_mechanism not in ("laplace", "gaussian"), "laplace|gaussian"),
            ("dp_delta", not 0 < self.dp_delta < 1, "must be in (0, 1)"),
            ("dp_max_lines_per_customer", self.dp_max_lines_per_customer < 1, "must be >= 1"),
            ("quarantine_retention_days", self.quarantine_retention_days < 1, "must be >= 1"),
            ("vacuum_retention_hours", self.vacuum_retention_hours < 0, "must be >= 0"),
        )
        for key, wrong, rule in rules:
            if wrong:
                raise ConfigError(f"privacy.{key}: {rule}, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class AppConfig:
    """The whole configuration of a shikong run."""

    spark: SparkSettings = field(default_factory=SparkSettings)
    paths: Paths = field(default_factory=Paths)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    spatial: SpatialSettings = field(default_factory=SpatialSettings)
    timeseries: TimeSeriesSettings = field(default_factory=TimeSeriesSettings)
    decisions: DecisionSettings = field(default_factory=DecisionSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    @property
    def checkpoint_location(self) -> str:
        """The Spark checkpoint directory: ``spatial.checkpoint_dir`` or its default."""
        return self.spatial.checkpoint_dir or f"{self.paths.lakehouse.rstrip('/')}/_checkpoints"


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one YAML value against a type hint; raise ConfigError naming key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for arg in non_none:
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or tp is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        # Spark settings are strings on the JVM side; YAML gives ints/bools too.
        return types.MappingProxyType(
            {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        )
    if tp is dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{key}: expected a date YYYY-MM-DD, got {value!r}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {getattr(tp, '__name__', tp)}")  # pragma: no cover


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(names))})")
    kwargs = {
        name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name)
        for name, value in data.items()
    }
    return cls(**kwargs)


def config_from_dict(
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    lakehouse: str | None = None,
) -> AppConfig:
    """Validate a plain mapping into an :class:`AppConfig`.

    Args:
        data: Parsed YAML.
        env: Environment for path overrides (defaults to ``os.environ``).
        lakehouse: ``paths.lakehouse`` from the command line; replaces the file's and
            ``SHIKONG_LAKEHOUSE``. Empty or ``None``: not given (as an empty variable).

    Returns:
        The frozen configuration.

    Raises:
        ConfigError: On an unknown key or bad value; the message names the key.
    """
    cfg = _build(AppConfig, data, "")
    env = os.environ if env is None else env
    overrides = {}
    if env.get("SHIKONG_LAKEHOUSE"):
        overrides["lakehouse"] = env["SHIKONG_LAKEHOUSE"]
    if env.get("SHIKONG_LANDING"):
        overrides["landing"] = env["SHIKONG_LANDING"]
    if lakehouse:
        overrides["lakehouse"] = lakehouse
    if overrides:
        cfg = dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths, **overrides))
    return cfg


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    lakehouse: str | None = None,
) -> AppConfig:
    """Load and validate a YAML config file.

    Args:
        path: A YAML file, or a profile name such as ``local`` (looked up in ``conf/``).
            ``None`` means the embedded default ``conf/local.yaml``.
        env: Environment for path overrides (defaults to ``os.environ``).
        lakehouse: ``paths.lakehouse`` from the command line (``--lakehouse``); wins over
            the file and ``SHIKONG_LAKEHOUSE``.

    Returns:
        The frozen configuration.

    Raises:
        ConfigError: If the file is missing, not YAML, or fails validation.
    """
    if path is None:
        path = "local"
    p = Path(path)
    if not p.suffix and not p.exists():
        candidates = [d / f"{path}.yaml" for d in CONF_DIRS]
        p = next((c for c in candidates if c.is_file()), candidates[0])
    if not p.is_file():
        raise ConfigError(f"config: file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {p} is not valid YAML ({str(exc).splitlines()[0]})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {p} ({type(exc).__name__}: {exc})") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config: {p} must be a mapping of sections, not {type(data).__name__}")
    return config_from_dict(data or {}, env=env, lakehouse=lakehouse)
