"""Decision logic as plain pandas functions for Spark grouped-map UDFs.

Each ``make_*_fn(cfg)`` returns ``fn(pdf) -> pdf`` for ``applyInPandas(fn, SCHEMA)``:

=========================  ==========================  ===============================
factory                    group by                    output schema
=========================  ==========================  ===============================
``make_policy_fn``         sku, warehouse_id           ``POLICY_SCHEMA``
``make_simulation_fn``     sku, warehouse_id           ``SIMULATION_SCHEMA``
``make_routing_fn``        warehouse_id, delivery_date ``ROUTING_OUTPUT_SCHEMA`` (long,
                                                       split by ``record_type``)
=========================  ==========================  ===============================

Input column contracts: ``POLICY_INPUT_SCHEMA`` (one ``kind``-tagged frame per group) and
``ROUTING_INPUT_SCHEMA``; ``policy_config``/``routing_config`` map the job settings.

Modules: ``inventory_common`` (input contract, ``PolicyConfig``, one group's inputs),
``inventory_policy`` (safety stock, reorder point, EOQ, today's order),
``inventory_simulation`` (replay of recent demand, policy vs naive), ``fusion_policy``
(the fusion model's quantiles as the policy's forecast distribution, the three-policy
comparison), ``routing`` (one warehouse-day: validation, both solvers, outputs),
``routing_distances``, ``routing_solvers`` (OR-Tools and the nearest-neighbour baseline).
None of them imports Spark: they run inside the Python workers. Only ``spark_frames``
(the grouped functions' inputs and outputs as Spark DataFrames) does.
"""

from shikong.decisions.fusion_policy import (
    FORECAST_SOURCES,
    SOURCE_FUSION,
    SOURCE_SARIMA,
    daily_sigma_from_quantiles,
    lead_time_spread,
    policy_comparison,
    policy_label,
)
from shikong.decisions.inventory_common import (
    KIND_FORECAST,
    KIND_HISTORY,
    KIND_INVENTORY,
    POLICY_INPUT_SCHEMA,
    PolicyConfig,
    daily_sigma_from_bands,
    policy_config,
    split_policy_input,
    stack_policy_inputs,
)
from shikong.decisions.inventory_policy import (
    POLICY_SCHEMA,
    PolicyParams,
    compute_policy,
    economic_order_quantity,
    lead_time_demand_samples,
    make_policy_fn,
    policy_params,
    recommended_order,
)
from shikong.decisions.inventory_simulation import (
    LEDGER_COLUMNS,
    SIMULATION_SCHEMA,
    SimulationConfig,
    compute_simulation,
    ledger_balances,
    make_simulation_fn,
    simulate_ledger,
    simulation_summary,
    summarize_ledger,
    summary_lines,
)
from shikong.decisions.routing import (
    BAD_COORDINATE,
    BAD_DEMAND,
    BAD_DEPOT,
    BAD_TIME_WINDOW,
    DUPLICATE_ORDER_ID,
    EXCEEDS_VEHICLE_CAPACITY,
    FLEET_CAPACITY_EXCEEDED,
    FLEET_CAPACITY_OR_TIME_WINDOWS,
    GROUP_SUMMARY_SCHEMA,
    MISSING_ORDER_ID,
    RECORD_GROUP,
    RECORD_PATH,
    RECORD_ROUTE,
    RECORD_STOP,
    RECORD_UNROUTED,
    ROUTE_PATH_SCHEMA,
    ROUTE_SUMMARY_SCHEMA,
    ROUTES_SCHEMA,
    ROUTING_INPUT_SCHEMA,
    ROUTING_OUTPUT_SCHEMA,
    SOLVER_BASELINE,
    SOLVER_ORTOOLS,
    TIME_WINDOW_UNREACHABLE,
    UNROUTED_SCHEMA,
    RoutingConfig,
    RoutingResult,
    make_routing_fn,
    routing_config,
    solve_routing_group,
    split_routing_output,
)
from shikong.decisions.routing_distances import (
    distance_matrix_m,
    geodesic_m,
    road_matrix_from_frame,
    route_length_m,
)
from shikong.decisions.routing_solvers import (
    Solution,
    Timing,
    nearest_neighbor_routes,
    solve_ortools,
)
from shikong.decisions.spark_frames import (
    first_delivery_day,
    fusion_policy_forecasts,
    policy_inputs,
    route_sketch_lines,
    routing_input,
    routing_output_part,
    stock_point_prices,
)
from shikong.frames import column_names, ddl_fields

__all__ = [
    "BAD_COORDINATE",
    "BAD_DEMAND",
    "BAD_DEPOT",
    "BAD_TIME_WINDOW",
    "DUPLICATE_ORDER_ID",
    "EXCEEDS_VEHICLE_CAPACITY",
    "FORECAST_SOURCES",
    "FLEET_CAPACITY_EXCEEDED",
    "FLEET_CAPACITY_OR_TIME_WINDOWS",
    "GROUP_SUMMARY_SCHEMA",
    "KIND_FORECAST",
    "KIND_HISTORY",
    "KIND_INVENTORY",
    "LEDGER_COLUMNS",
    "MISSING_ORDER_ID",
    "POLICY_INPUT_SCHEMA",
    "POLICY_SCHEMA",
    "RECORD_GROUP",
    "RECORD_PATH",
    "RECORD_ROUTE",
    "RECORD_STOP",
    "RECORD_UNROUTED",
    "ROUTES_SCHEMA",
    "SOURCE_FUSION",
    "SOURCE_SARIMA",
    "ROUTE_PATH_SCHEMA",
    "ROUTE_SUMMARY_SCHEMA",
    "ROUTING_INPUT_SCHEMA",
    "ROUTING_OUTPUT_SCHEMA",
    "SIMULATION_SCHEMA",
    "SOLVER_BASELINE",
    "SOLVER_ORTOOLS",
    "TIME_WINDOW_UNREACHABLE",
    "UNROUTED_SCHEMA",
    "PolicyConfig",
    "PolicyParams",
    "RoutingConfig",
    "RoutingResult",
    "SimulationConfig",
    "Solution",
    "Timing",
    "column_names",
    "compute_policy",
    "compute_simulation",
    "daily_sigma_from_bands",
    "daily_sigma_from_quantiles",
    "distance_matrix_m",
    "economic_order_quantity",
    "first_delivery_day",
    "fusion_policy_forecasts",
    "geodesic_m",
    "lead_time_demand_samples",
    "lead_time_spread",
    "ledger_balances",
    "make_policy_fn",
    "make_routing_fn",
    "make_simulation_fn",
    "nearest_neighbor_routes",
    "policy_comparison",
    "policy_config",
    "policy_inputs",
    "policy_label",
    "policy_params",
    "recommended_order",
    "road_matrix_from_frame",
    "route_length_m",
    "route_sketch_lines",
    "routing_config",
    "routing_input",
    "routing_output_part",
    "ddl_fields",
    "simulate_ledger",
    "simulation_summary",
    "solve_ortools",
    "solve_routing_group",
    "split_policy_input",
    "split_routing_output",
    "stack_policy_inputs",
    "stock_point_prices",
    "summarize_ledger",
    "summary_lines",
]
