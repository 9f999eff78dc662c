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
"""

from shikong.decisions._frames import column_names, schema_fields
from shikong.decisions.inventory import (
    POLICY_INPUT_SCHEMA,
    POLICY_SCHEMA,
    SIMULATION_SCHEMA,
    PolicyConfig,
    SimulationConfig,
    compute_policy,
    compute_simulation,
    make_policy_fn,
    make_simulation_fn,
    stack_policy_inputs,
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
    "POLICY_INPUT_SCHEMA",
    "POLICY_SCHEMA",
    "ROUTES_SCHEMA",
    "ROUTE_SUMMARY_SCHEMA",
    "ROUTING_INPUT_SCHEMA",
    "ROUTING_OUTPUT_SCHEMA",
    "SIMULATION_SCHEMA",
    "UNROUTED_SCHEMA",
    "PolicyConfig",
    "RoutingConfig",
    "SimulationConfig",
    "column_names",
    "compute_policy",
    "compute_simulation",
    "make_policy_fn",
    "make_routing_fn",
    "make_simulation_fn",
    "schema_fields",
    "solve_routing_group",
    "split_routing_output",
    "stack_policy_inputs",
]
