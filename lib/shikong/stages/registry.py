"""The one registry of pipeline stages: their order, what each reads and writes, and so
what each depends on. The CLI's ``run`` walks it, and a Databricks job's task graph is
generated from it.

A stage's dependencies are not spelled out: a stage depends on every earlier stage that
writes something it reads. Reads and writes name catalogue tables (``layer.name``) or the
non-table artefacts in :data:`ARTIFACTS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

#: What stages exchange besides catalogue tables.
ARTIFACTS = {
    "landing": "raw files under paths.landing (generated or dropped by upstream systems)",
    "ml.training_data": "time-split Parquet shards + meta.json per model kind",
    "ml.models": "trained model files (best epoch) per kind and run",
    "report": "report/index.html: the HTML report, drawn from published tables only",
    "exports": "exports/<name>: GeoParquet of the published geometry tables",
}

#: Tables that two stages write, each its own rows: the scope column that keeps them apart
#: (each writer replaces only its own value of it). The policy tables hold the SARIMA-driven
#: rows (``policy``) and the fusion-driven ones (``policy_fusion``, after the models).
SHARED_TABLES = {
    "gold.inventory_policy": "forecast_source",
    "gold.policy_simulation": "forecast_source",
}

#: Tables written outside the pipeline's stages, and by what.
MAINTENANCE_WRITERS = {"ops.erasure_log": "shikong forget (stages/forget.py)"}

#: The published tables the report draws (``ops.run_log`` and ``bronze.quarantine`` only
#: reach it through the summaries the report stage writes first).
REPORT_READS = (
    "gold.hotspots",
    "gold.service_zones",
    "gold.customer_clusters",
    "gold.route_groups",
    "gold.route_sketches",
    "gold.forecasts",
    "gold.forecast_metrics",
    "silver.sku_daily",
    "gold.policy_simulation",
    "gold.model_evaluation",
)

_BRONZE = ("products", "warehouses", "customers", "orders", "order_lines", "events", "inventory")


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes:
        name: CLI subcommand, ``--only`` name and Databricks task key (``spatial``).
        job: Module under ``shikong.jobs`` and ``shikong.stages``; also the console script
            ``shikong-<job with dashes>`` and the spark-submit file ``jobs/<job>.py``.
        summary: One line for ``--help``.
        reads: Tables and artefacts the stage reads.
        writes: Tables and artefacts the stage writes.
        models: A deep-model stage (skipped when ``models.enabled`` is false).
    """

    name: str
    job: str
    summary: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    models: bool = False

    @property
    def console_script(self) -> str:
        """The entry point that runs this stage alone."""
        return "shikong-" + self.job.replace("_", "-")

    def module(self) -> ModuleType:
        """The stage module (``shikong.stages.<job>``), imported on first use."""
        return importlib.import_module(f"shikong.stages.{self.job}")


STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        "ingest",
        "validate landing files into bronze Delta tables, quarantine and run log",
        reads=("landing",),
        writes=(*(f"bronze.{t}" for t in _BRONZE), "bronze.quarantine", "ops.run_log"),
    ),
    Stage(
        "spatial",
        "spatial_features",
        "spatial features: regions, grids, hot spots and clusters (Sedona) into silver/gold",
        reads=tuple(
            f"bronze.{t}" for t in ("orders", "order_lines", "customers", "warehouses", "products")
        ),
        writes=(
            "silver.customers_geo",
            "silver.orders_geo",
            "gold.service_zones",
            "gold.grid_daily",
            "gold.grid_daily_category",
            "gold.hotspots",
            "gold.spatial_autocorrelation",
            "gold.customer_clusters",
            "gold.region_profiles",
            "ops.privacy_budget",
        ),
    ),
    Stage(
        "series",
        "demand_series",
        "daily demand series per SKU (x region / warehouse): cleaned, filled, smoothed",
        reads=(
            "bronze.order_lines",
            "bronze.orders",
            "bronze.inventory",
            "bronze.products",
            "bronze.warehouses",
            "silver.orders_geo",
        ),
        writes=("silver.sku_daily",),
    ),
    Stage(
        "forecast",
        "forecast_arima",
        "SARIMA forecasts with intervals, fallbacks and rolling-origin backtests",
        reads=("silver.sku_daily",),
        writes=("gold.forecasts", "gold.forecast_metrics"),
    ),
    Stage(
        "policy",
        "inventory_policy",
        "safety stock, reorder points, order quantities and a policy-vs-naive replay",
        reads=(
            "silver.sku_daily",
            "gold.forecasts",
            "bronze.inventory",
            "bronze.products",
            "bronze.order_lines",
        ),
        writes=("gold.inventory_policy", "gold.policy_simulation"),
    ),
    Stage(
        "routes",
        "delivery_routes",
        "capacitated vehicle routes per warehouse and day (OR-Tools vs nearest neighbour)",
        reads=("bronze.orders", "bronze.order_lines", "bronze.warehouses"),
        writes=(
            "gold.routes",
            "gold.route_stops",
            "gold.route_groups",
            "gold.route_sketches",
            "gold.unrouted_orders",
        ),
    ),
    Stage(
        "training_data",
        "prepare_training_data",
        "build the time-split training shards of the deep models",
        reads=(
            "bronze.order_lines",
            "bronze.products",
            "bronze.events",
            "bronze.warehouses",
            "silver.orders_geo",
            "silver.customers_geo",
            "gold.hotspots",
        ),
        writes=("silver.sku_warehouse_daily", "ml.training_data"),
        models=True,
    ),
    Stage(
        "train",
        "train_models",
        "train the deep models data-parallel with the configured backend",
        reads=("ml.training_data",),
        writes=("ml.models", "gold.training_metrics", "gold.model_registry"),
        models=True,
    ),
    Stage(
        "infer",
        "batch_inference",
        "score the chosen models and write predictions and recommendations",
        reads=("ml.training_data", "ml.models", "gold.model_registry"),
        writes=("gold.demand_predictions", "gold.recommendations", "gold.buyer_probability"),
        models=True,
    ),
    Stage(
        "policy_fusion",
        "policy_fusion",
        "the policy and replay from the fusion model's quantiles, beside the SARIMA-driven one",
        reads=(
            "silver.sku_daily",
            "silver.sku_warehouse_daily",
            "gold.demand_predictions",
            "ml.training_data",
            "ml.models",
            "gold.model_registry",
            "bronze.inventory",
            "bronze.products",
            "bronze.order_lines",
            "gold.policy_simulation",
        ),
        writes=("gold.inventory_policy", "gold.policy_simulation"),
        models=True,
    ),
    Stage(
        "evaluate",
        "evaluate_models",
        "evaluate the chosen models against baselines on the test split",
        reads=(
            "ml.training_data",
            "ml.models",
            "gold.model_registry",
            "silver.sku_warehouse_daily",
        ),
        writes=("gold.model_evaluation",),
        models=True,
    ),
    Stage(
        "report",
        "report",
        "the HTML report (maps and charts), operations summaries and GeoParquet exports",
        reads=(*REPORT_READS, "ops.run_log", "bronze.quarantine"),
        writes=(
            "gold.stage_runs",
            "gold.ingest_files",
            "gold.quarantine_reasons",
            "report",
            "exports",
        ),
    ),
)


#: Incremental ingest (``shikong stream``): not a pipeline stage (``shikong run`` ingests
#: with ``ingest``), run on its own, with its status rows in the run log like a stage.
STREAM = Stage(
    "stream",
    "stream",
    "ingest new landing files incrementally (Structured Streaming, exactly once)",
    reads=("landing",),
    writes=(*(f"bronze.{t}" for t in _BRONZE), "bronze.quarantine", "ops.run_log"),
)


class UnknownStageError(KeyError):
    """A stage name that is not in the registry (the message lists the known ones)."""

    def __str__(self) -> str:
        return str(self.args[0])


def get(name: str) -> Stage:
    """A stage by name or job name (``spatial`` or ``spatial_features``).

    Raises:
        UnknownStageError: Naming the known stages.
    """
    for s in STAGES:
        if name in (s.name, s.job):
            return s
    known = ", ".join(s.name for s in STAGES)
    raise UnknownStageError(f"unknown stage {name!r} (stages: {known})")


def job_stage(name: str) -> Stage:
    """A stage a job face runs: a pipeline stage (:func:`get`) or :data:`STREAM`.

    Raises:
        UnknownStageError: Naming the known pipeline stages.
    """
    if name in (STREAM.name, STREAM.job):
        return STREAM
    return get(name)


def depends_on(stage: Stage | str) -> tuple[str, ...]:
    """Names of the earlier stages that write something ``stage`` reads, in order."""
    s = get(stage) if isinstance(stage, str) else stage
    reads = set(s.reads)
    return tuple(
        earlier.name for earlier in STAGES[: STAGES.index(s)] if reads.intersection(earlier.writes)
    )


def select(names: list[str] | None, *, models_enabled: bool = True) -> list[Stage]:
    """The stages to run, in pipeline order: ``names`` (all when ``None``), minus the
    deep-model stages when ``models_enabled`` is false.

    Raises:
        UnknownStageError: For a name that is not a stage.
    """
    wanted = {get(n).name for n in names} if names is not None else None
    return [
        s
        for s in STAGES
        if (wanted is None or s.name in wanted) and (models_enabled or not s.models)
    ]
