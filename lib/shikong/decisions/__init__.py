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
``ROUTING_INPUT_SCHEMA``. Nothing here imports Spark.

Modules: ``inventory_common`` (input contract, ``PolicyConfig``, one group's inputs),
``inventory_policy`` (safety stock, reorder point, EOQ, today's order),
``inventory_simulation`` (replay of recent demand, policy vs naive), ``routing``.
"""

from shikong.decisions._frames import column_names, schema_fields
from shikong.decisions.inventory_common import (
    KIND_FORECAST,
    KIND_HISTORY,
    KIND_INVENTORY,
    POLICY_INPUT_SCHEMA,
    PolicyConfig,
    daily_sigma_from_bands,
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
    summarize_ledger,
)
from shikong.decisions.routing import (
    GROUP_SUMMARY_SCHEMA,
    ROUTE_SUMMARY_SCHEMA,
    ROUTES_SCHEMA,
    ROUTING_INPUT_SCHEMA,
    ROUTING_OUTPUT_SCHEMA,
    UNROUTED_SCHEMA,
    RoutingConfig,
    make_routing_fn,
    solve_routing_group,
    split_routing_output,
)

__all__ = [
    "GROUP_SUMMARY_SCHEMA",
    "KIND_FORECAST",
    "KIND_HISTORY",
    "KIND_INVENTORY",
    "LEDGER_COLUMNS",
    "POLICY_INPUT_SCHEMA",
    "POLICY_SCHEMA",
    "ROUTES_SCHEMA",
    "ROUTE_SUMMARY_SCHEMA",
    "ROUTING_INPUT_SCHEMA",
    "ROUTING_OUTPUT_SCHEMA",
    "SIMULATION_SCHEMA",
    "UNROUTED_SCHEMA",
    "PolicyConfig",
    "PolicyParams",
    "RoutingConfig",
    "SimulationConfig",
    "column_names",
    "compute_policy",
    "compute_simulation",
    "daily_sigma_from_bands",
    "economic_order_quantity",
    "lead_time_demand_samples",
    "ledger_balances",
    "make_policy_fn",
    "make_routing_fn",
    "make_simulation_fn",
    "policy_params",
    "recommended_order",
    "schema_fields",
    "simulate_ledger",
    "solve_routing_group",
    "split_policy_input",
    "split_routing_output",
    "stack_policy_inputs",
    "summarize_ledger",
]
