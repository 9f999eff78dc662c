"""Inventory policy decisions: hand-checked policy maths, EOQ, replay bookkeeping, contracts."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shikong.decisions import (
    LEDGER_COLUMNS,
    POLICY_INPUT_SCHEMA,
    POLICY_SCHEMA,
    SIMULATION_SCHEMA,
    PolicyConfig,
    PolicyParams,
    SimulationConfig,
    column_names,
    compute_policy,
    compute_simulation,
    daily_sigma_from_bands,
    ddl_fields,
    economic_order_quantity,
    make_policy_fn,
    make_simulation_fn,
    simulate_ledger,
    stack_policy_inputs,
)

Z80 = 1.2815515655446004  # Phi^-1(0.90): an 80% central band is +-Z80 sigma
Z95 = 1.959963984540054  # Phi^-1(0.975)
Z_SL95 = 1.6448536269514722  # Phi^-1(0.95)
Z_SL90 = 1.2815515655446004  # Phi^-1(0.90)

SNAPSHOT = dt.date(2024, 3, 31)
_ARROW = {
    "string": pa.string(),
    "date": pa.date32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
}


def _arrow_ok(df: pd.DataFrame, ddl: str) -> None:
    """The frame converts to the DDL's Arrow types, like Spark's applyInPandas does."""
    assert list(df.columns) == column_names(ddl)
    schema = pa.schema([(n, _ARROW[t]) for n, t in ddl_fields(ddl)])
    pa.Table.from_pandas(df, schema=schema, preserve_index=False, safe=True)


def _forecast(yhat: list[float], sigma80: float | None, sigma95: float | None) -> pd.DataFrame:
    n = len(yhat)
    y = np.asarray(yhat, dtype=float)
    return pd.DataFrame(
        {
            "sku": "S1",
            "warehouse_id": "W1",
            "ds": [SNAPSHOT + dt.timedelta(days=i + 1) for i in range(n)],
            "step": np.arange(1, n + 1),
            "yhat": y,
            "lo80": y - Z80 * sigma80 if sigma80 is not None else np.nan,
            "hi80": y + Z80 * sigma80 if sigma80 is not None else np.nan,
            "lo95": y - Z95 * sigma95 if sigma95 is not None else np.nan,
            "hi95": y + Z95 * sigma95 if sigma95 is not None else np.nan,
        }
    )


def _history(y: list[float], fitted: list[float] | None = None) -> pd.DataFrame:
    n = len(y)
    df = pd.DataFrame(
        {
            "sku": "S1",
            "warehouse_id": "W1",
            "ds": [SNAPSHOT - dt.timedelta(days=n - 1 - i) for i in range(n)],
            "y": np.asarray(y, dtype=float),
        }
    )
    if fitted is not None:
        df["yhat"] = np.asarray(fitted, dtype=float)
    return df


def _inventory(on_hand: float, on_order: float, **extra: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": ["S1"],
            "warehouse_id": ["W1"],
            "ds": [SNAPSHOT],
            "on_hand": [on_hand],
            "on_order": [on_order],
            **{k: [v] for k, v in extra.items()},
        }
    )


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"lead_time_days": 0}, "lead_time_days", id="lead-time-zero"),
        pytest.param({"lead_time_days": 2.5}, "lead_time_days", id="lead-time-fraction"),
        pytest.param({"review_days": 0}, "review_days", id="review-zero"),
        pytest.param({"service_level": 1.0}, "service_level", id="service-level-one"),
        pytest.param({"service_level": 0.3}, "service_level", id="service-level-low"),
        pytest.param({"order_cost": -1.0}, "order_cost", id="order-cost-negative"),
        pytest.param(
            {"holding_cost_per_unit_year": 0.0}, "holding_cost_per_unit_year", id="holding-zero"
        ),
        pytest.param({"holding_rate": 0.0}, "holding_rate", id="holding-rate-zero"),
        pytest.param({"unit_price": -2.0}, "unit_price", id="price-negative"),
        pytest.param({"method": "poisson"}, "method", id="unknown-method"),
        pytest.param({"n_bootstrap": 10}, "n_bootstrap", id="few-bootstrap"),
        pytest.param({"bootstrap_block_days": 0}, "bootstrap_block_days", id="block-zero"),
        pytest.param({"min_error_days": 1}, "min_error_days", id="min-errors"),
    ],
)
def test_policy_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PolicyConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"weeks": 0}, "weeks", id="weeks-zero"),
        pytest.param({"naive_window_days": 0}, "naive_window_days", id="window-zero"),
        pytest.param({"naive_cover_days": 0}, "naive_cover_days", id="cover-zero"),
        pytest.param({"lost_sale_penalty": -1}, "lost_sale_penalty", id="penalty-negative"),
        pytest.param({"initial_on_hand": -5}, "initial_on_hand", id="start-negative"),
    ],
)
def test_simulation_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulationConfig(**kwargs)


def test_stacked_input_rejects_unknown_kind() -> None:
    pdf = stack_policy_inputs(_forecast([1.0], 1.0, 1.0), None, None)
    pdf.loc[0, "kind"] = "weather"
    with pytest.raises(ValueError, match="unknown kind"):
        make_policy_fn(PolicyConfig())(pdf)


# ------------------------------------------------------------------------------ building blocks


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        pytest.param((10 - 2 * Z80, 10 + 2 * Z80, 10 - 2 * Z95, 10 + 2 * Z95), 2.0, id="both"),
        pytest.param((10 - 3 * Z80, 10 + 3 * Z80, np.nan, np.nan), 3.0, id="only-80"),
        pytest.param((np.nan, np.nan, 5 - Z95, 5 + Z95), 1.0, id="only-95"),
        # sigma 1 from the 80% band, 3 from the 95% band: the average
        pytest.param((-Z80, Z80, -3 * Z95, 3 * Z95), 2.0, id="disagreeing-bands"),
        pytest.param((np.nan, np.nan, np.nan, np.nan), np.nan, id="none"),
    ],
)
def test_daily_sigma_from_bands(bands: tuple[float, ...], expected: float) -> None:
    got = daily_sigma_from_bands(*([b] for b in bands))[0]
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("demand", "order_cost", "holding", "expected"),
    [
        pytest.param(1000.0, 50.0, 2.5, 200.0, id="sqrt-40000"),  # 2*1000*50/2.5
        pytest.param(3650.0, 50.0, 2.5, math.sqrt(146000.0), id="10-per-day"),
        pytest.param(1800.0, 20.0, 8.0, 94.86832980505137, id="sqrt-9000"),
        pytest.param(0.0, 50.0, 2.5, 0.0, id="no-demand"),
        pytest.param(1000.0, 0.0, 2.5, 0.0, id="free-orders"),
    ],
)
def test_eoq_by_hand(demand: float, order_cost: float, holding: float, expected: float) -> None:
    assert economic_order_quantity(demand, order_cost, holding) == pytest.approx(
        expected, rel=1e-12
    )


def test_eoq_undefined_without_holding_cost() -> None:
    assert np.isnan(economic_order_quantity(100.0, 10.0, 0.0))


# ------------------------------------------------------------------------------ policy: normal


NORMAL_CASES = [
    pytest.param(
        # yhat 10/day, sigma 2/day; L=4, R=3, SL=95%
        dict(yhat=[10.0] * 30, s80=2.0, s95=2.0, L=4, R=3, sl=0.95, on_hand=30.0, on_order=10.0),
        dict(
            lead_time_demand=40.0,
            safety_stock=Z_SL95 * 2.0 * 2.0,  # z * sigma * sqrt(4)
            reorder_point=40.0 + Z_SL95 * 4.0,
            order_up_to=70.0 + Z_SL95 * 2.0 * math.sqrt(7.0),  # over L+R = 7 days
            eoq=math.sqrt(2 * 3650 * 50 / 2.5),  # D=3650, K=50, h=0.25*10
            order_qty=383.0,  # ceil(max(382.1, 78.7-40))
            days_of_cover=3.0,
            stockout_risk=0.5,
            mean_daily_demand=10.0,
        ),
        id="sl95-position-at-mean",
    ),
    pytest.param(
        dict(yhat=[10.0] * 30, s80=2.0, s95=2.0, L=4, R=3, sl=0.95, on_hand=50.0, on_order=0.0),
        dict(
            lead_time_demand=40.0,
            safety_stock=Z_SL95 * 4.0,
            reorder_point=40.0 + Z_SL95 * 4.0,
            order_qty=0.0,
            days_of_cover=5.0,
            stockout_risk=0.006209665325776132,
        ),  # 1 - Phi((50-40)/4)
        id="sl95-above-rop",
    ),
    pytest.param(
        # ramping forecast, only an 80% band of sigma 3; L=2, R=1, SL=90%
        dict(
            yhat=[4.0, 6.0, 8.0, 10.0],
            s80=3.0,
            s95=None,
            L=2,
            R=1,
            sl=0.90,
            on_hand=5.0,
            on_order=0.0,
        ),
        dict(
            lead_time_demand=10.0,
            safety_stock=Z_SL90 * 3.0 * math.sqrt(2.0),
            reorder_point=10.0 + Z_SL90 * 3.0 * math.sqrt(2.0),
            order_up_to=18.0 + Z_SL90 * 3.0 * math.sqrt(3.0),
            mean_daily_demand=7.0,  # mean over the horizon
            eoq=math.sqrt(2 * 7.0 * 365 * 50 / 2.5),
            # S - position = 19.66 < EOQ = 319.7 -> ceil(EOQ) = 320
            order_qty=math.ceil(math.sqrt(2 * 7.0 * 365 * 50 / 2.5)),
            days_of_cover=5.0 / 7.0,
        ),
        id="sl90-ramp-80-band-only",
    ),
]


@pytest.mark.parametrize(("case", "expected"), NORMAL_CASES)
def test_normal_policy_matches_hand_computation(case: dict, expected: dict) -> None:
    cfg = PolicyConfig(
        lead_time_days=case["L"],
        review_days=case["R"],
        service_level=case["sl"],
        order_cost=50.0,
        unit_price=10.0,
        holding_rate=0.25,
        method="normal",
    )
    out = compute_policy(
        _forecast(case["yhat"], case["s80"], case["s95"]),
        None,
        _inventory(case["on_hand"], case["on_order"]),
        cfg,
    )
    assert len(out) == 1
    row = out.iloc[0]
    for col, value in expected.items():
        assert row[col] == pytest.approx(value, rel=1e-9, abs=1e-12), col
    assert row["method"] == "normal"
    assert row["inventory_position"] == case["on_hand"] + case["on_order"]


# ------------------------------------------------------------------------------ policy: empirical


EMPIRICAL_CASES = [
    pytest.param(
        # errors y - mean(y) = {-3,-1,1,3}; forecast 10/day; L=2, R=1, SL=90%.
        # L-sums 20 + e1 + e2 over 16 equally likely pairs: -6:1 -4:2 -2:3 0:4 2:3 4:2 6:1;
        # smallest x with F(x) >= 0.9 is the 15th of 16 -> 20 + 4 = 24.
        # L+R sums 30 + e1+e2+e3 (64 triples, cumulative 1,4,10,20,32,44,54,60,63,64 for
        # e-sum -9..9 step 2); the 58th (ceil(0.9*64)) is e-sum 5 -> 35.
        dict(
            yhat=[10.0] * 10, hist=[7.0, 9.0, 11.0, 13.0], fit=None, L=2, R=1, sl=0.90, on_hand=20.0
        ),
        dict(
            lead_time_demand=20.0,
            reorder_point=24.0,
            safety_stock=4.0,
            order_up_to=35.0,
            stockout_risk=6 / 16,
        ),  # P(e1 + e2 > 0)
        id="centred-errors-sl90",
    ),
    pytest.param(
        # fitted values on history -> errors y - yhat = {0,2,4,6} (biased forecast).
        # L=1: 5 + e = {5,7,9,11}; 3rd of 4 at 75% -> 9.
        # L+R=2: 10 + e1 + e2; e-sum 0:1 2:2 4:3 6:4 8:3 10:2 12:1; 12th of 16 -> 8 -> 18.
        dict(
            yhat=[5.0] * 10,
            hist=[10.0, 12.0, 14.0, 16.0],
            fit=[10.0] * 4,
            L=1,
            R=1,
            sl=0.75,
            on_hand=8.0,
        ),
        dict(
            lead_time_demand=5.0,
            reorder_point=9.0,
            safety_stock=4.0,
            order_up_to=18.0,
            stockout_risk=2 / 4,
        ),  # 9 and 11 exceed 8
        id="fitted-errors-sl75",
    ),
    pytest.param(
        # daily demand is clipped at zero: max(0, 1 + e) = {0,0,2,4}; median = 2nd -> 0,
        # so the safety stock is negative (documented: forecast above the typical day).
        dict(yhat=[1.0] * 10, hist=[7.0, 9.0, 11.0, 13.0], fit=None, L=1, R=1, sl=0.5, on_hand=0.0),
        dict(lead_time_demand=1.0, reorder_point=0.0, safety_stock=-1.0, stockout_risk=2 / 4),
        id="clipped-at-zero",
    ),
]


@pytest.mark.parametrize(("case", "expected"), EMPIRICAL_CASES)
def test_empirical_policy_matches_hand_computation(case: dict, expected: dict) -> None:
    cfg = PolicyConfig(
        lead_time_days=case["L"],
        review_days=case["R"],
        service_level=case["sl"],
        method="empirical",
        min_error_days=4,
    )
    out = compute_policy(
        _forecast(case["yhat"], 1.0, 1.0),
        _history(case["hist"], case["fit"]),
        _inventory(case["on_hand"], 0.0),
        cfg,
    )
    row = out.iloc[0]
    assert row["method"] == "empirical"
    for col, value in expected.items():
        assert row[col] == pytest.approx(value, rel=1e-12, abs=1e-12), col


def test_empirical_bootstrap_is_seeded_and_order_free() -> None:
    rng = np.random.default_rng(11)
    hist = _history(list(rng.poisson(8, 120).astype(float)))
    fc = _forecast([8.0] * 30, 2.0, 2.0)
    cfg = PolicyConfig(lead_time_days=9, review_days=5, method="empirical", bootstrap_block_days=3)
    pdf = stack_policy_inputs(fc, hist, _inventory(40.0, 0.0))
    first = make_policy_fn(cfg)(pdf)
    shuffled = make_policy_fn(cfg)(pdf.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(first, shuffled)
    other_seed = make_policy_fn(
        PolicyConfig(
            lead_time_days=9, review_days=5, method="empirical", bootstrap_block_days=3, seed=1
        )
    )(pdf)
    assert other_seed.iloc[0]["reorder_point"] != first.iloc[0]["reorder_point"]
    row = first.iloc[0]
    assert row["order_up_to"] >= row["reorder_point"] >= row["lead_time_demand"] * 0.5


def test_empirical_falls_back_to_normal_with_short_history() -> None:
    cfg = PolicyConfig(method="empirical", min_error_days=28)
    out = compute_policy(
        _forecast([5.0] * 20, 1.0, 1.0), _history([5.0] * 10), _inventory(10.0, 0.0), cfg
    )
    assert out.iloc[0]["method"] == "normal"
    assert "empirical_fallback_normal" in out.iloc[0]["notes"]


# ------------------------------------------------------------------------------ policy: inputs


def test_row_overrides_and_holding_from_price() -> None:
    cfg = PolicyConfig(lead_time_days=4, review_days=1, order_cost=20.0, holding_rate=0.2)
    inv = _inventory(0.0, 0.0, lead_time_days=1.5, unit_price=20.0)
    row = compute_policy(_forecast([5.0] * 20, 1.0, 1.0), None, inv, cfg).iloc[0]
    assert row["lead_time_days"] == 2  # 1.5 days rounded up
    assert row["holding_cost_unit_year"] == pytest.approx(4.0)  # 20% of 20
    assert row["eoq"] == pytest.approx(math.sqrt(2 * 5 * 365 * 20 / 4.0))
    assert row["lead_time_demand"] == pytest.approx(10.0)


def test_forecast_days_not_after_snapshot_are_ignored() -> None:
    fc = _forecast([100.0, 1.0, 1.0, 1.0], 0.0, 0.0)
    fc["ds"] = [SNAPSHOT + dt.timedelta(days=i) for i in range(4)]  # first day = snapshot day
    cfg = PolicyConfig(lead_time_days=2, review_days=1)
    row = compute_policy(fc, None, _inventory(0.0, 0.0), cfg).iloc[0]
    assert row["lead_time_demand"] == pytest.approx(2.0)
    assert row["safety_stock"] == pytest.approx(0.0)


def test_missing_snapshot_leaves_position_outputs_null() -> None:
    row = compute_policy(_forecast([3.0] * 10, 1.0, 1.0), None, None, PolicyConfig()).iloc[0]
    assert pd.isna(row["order_qty"]) and pd.isna(row["stockout_risk"])
    assert pd.isna(row["days_of_cover"]) and "no_snapshot" in row["notes"]
    assert row["reorder_point"] > 0


def test_history_fallback_without_forecast() -> None:
    row = compute_policy(
        None, _history([4.0, 6.0] * 20), _inventory(10.0, 0.0), PolicyConfig(lead_time_days=3)
    ).iloc[0]
    assert row["mean_daily_demand"] == pytest.approx(5.0)
    assert row["lead_time_demand"] == pytest.approx(15.0)
    assert "history_fallback" in row["notes"]


def test_short_forecast_is_padded() -> None:
    row = compute_policy(
        _forecast([2.0, 4.0], 1.0, 1.0),
        None,
        _inventory(0.0, 0.0),
        PolicyConfig(lead_time_days=3, review_days=2),
    ).iloc[0]
    assert row["lead_time_demand"] == pytest.approx(2.0 + 4.0 + 3.0)
    assert "horizon_padded" in row["notes"]


@pytest.mark.parametrize("method", ["normal", "empirical"])
def test_policy_output_matches_schema(method: str) -> None:
    rng = np.random.default_rng(5)
    pdf = stack_policy_inputs(
        _forecast([6.0] * 28, 1.5, 1.7),
        _history(list(rng.poisson(6, 90).astype(float))),
        _inventory(12.0, 3.0),
    )
    assert set(pdf.columns) <= set(column_names(POLICY_INPUT_SCHEMA))
    before = pdf.copy(deep=True)
    out = make_policy_fn(PolicyConfig(method=method))(pdf)
    _arrow_ok(out, POLICY_SCHEMA)
    pd.testing.assert_frame_equal(pdf, before)  # pure: the input is untouched


# ------------------------------------------------------------------------------ replay


def _params(rop: float, s: float, eoq: float, lead: int, review: int) -> PolicyParams:
    return PolicyParams(
        lead_time_days=lead,
        review_days=review,
        service_level=0.95,
        mean_daily_demand=1.0,
        lead_time_demand=lead,
        safety_stock=0.0,
        reorder_point=rop,
        order_up_to=s,
        eoq=eoq,
        method="normal",
        unit_price=10.0,
        holding_cost_unit_year=3.65,
        order_cost=7.0,
    )


def _assert_balanced(ledger: pd.DataFrame, lead: int) -> None:
    assert list(ledger.columns) == list(LEDGER_COLUMNS)
    prev_end, prev_on_order = None, 0.0
    placed = dict(zip(ledger["day"], ledger["order_placed"], strict=True))
    for r in ledger.itertuples():
        assert r.start_on_hand + r.receipts - r.served == pytest.approx(r.end_on_hand, abs=1e-9)
        assert r.served + r.lost == pytest.approx(r.demand, abs=1e-9)
        assert 0.0 <= r.served <= r.demand + 1e-12
        assert r.end_on_hand >= 0.0
        if prev_end is not None:
            assert r.start_on_hand == pytest.approx(prev_end, abs=1e-9)
        assert r.receipts == pytest.approx(placed.get(r.day - lead, 0.0), abs=1e-9)
        assert r.on_order_end == pytest.approx(
            prev_on_order + r.order_placed - r.receipts, abs=1e-9
        )
        assert r.position_end == pytest.approx(r.end_on_hand + r.on_order_end, abs=1e-9)
        prev_end, prev_on_order = r.end_on_hand, r.on_order_end


REPLAY_CASES = [
    pytest.param(
        dict(seed=1, lam=5.0, lead=3, review=1, start=4.0, rop=20, s=40, eoq=15),
        id="low-start-stockouts",
    ),
    pytest.param(
        dict(seed=2, lam=12.0, lead=7, review=3, start=100.0, rop=90, s=150, eoq=60),
        id="long-lead-weekly-ish-review",
    ),
    pytest.param(
        dict(seed=3, lam=0.4, lead=1, review=1, start=0.0, rop=1, s=3, eoq=2), id="intermittent"
    ),
    pytest.param(
        dict(
            seed=4, lam=3.3, lead=2, review=2, start=10.5, rop=8.2, s=14.7, eoq=0.0, fractional=True
        ),
        id="fractional-units",
    ),
]


@pytest.mark.parametrize("policy", ["policy", "naive"])
@pytest.mark.parametrize("case", REPLAY_CASES)
def test_replay_bookkeeping_balances_every_day(case: dict, policy: str) -> None:
    rng = np.random.default_rng(case["seed"])
    demand = rng.poisson(case["lam"], 56).astype(float)
    if case.get("fractional"):
        demand = demand * 1.37
    ledger = simulate_ledger(
        demand,
        _params(case["rop"], case["s"], case["eoq"], case["lead"], case["review"]),
        policy=policy,
        initial_on_hand=case["start"],
        prior_demand=rng.poisson(case["lam"], 28).astype(float),
        round_orders=not case.get("fractional", False),
    )
    assert len(ledger) == 56
    _assert_balanced(ledger, case["lead"])
    reviews = ledger.loc[ledger["order_placed"] > 0, "day"]
    assert (reviews % case["review"] == 0).all()


def test_naive_rule_by_hand() -> None:
    # m = 2/day (prior 28 days of 2), L=2, R=1 -> trigger when position < 2 * 3 = 6,
    # order 2 * 14 = 28. Start 10: ends 8, 6 (not < 6), 4 -> order on day 2, arrives day 4.
    ledger = simulate_ledger(
        [2.0] * 6,
        _params(0, 0, 0, lead=2, review=1),
        policy="naive",
        initial_on_hand=10.0,
        prior_demand=[2.0] * 28,
    )
    assert ledger["order_placed"].tolist() == [0, 0, 28, 0, 0, 0]
    assert ledger["receipts"].tolist() == [0, 0, 0, 0, 28, 0]
    assert ledger["end_on_hand"].tolist() == [8, 6, 4, 2, 28, 26]


def test_policy_rule_by_hand() -> None:
    # ROP 5, S 12, EOQ 3, L=1: day 1 ends at 2 <= 5 -> order max(3, 12 - 2) = 10 for day 2;
    # day 2 ends at 2 + 10 - 4 = 8 > 5; day 3 ends at 4 <= 5 -> order max(3, 12 - 4) = 8.
    ledger = simulate_ledger(
        [4.0, 4.0, 4.0, 4.0],
        _params(5, 12, 3, lead=1, review=1),
        policy="policy",
        initial_on_hand=10.0,
    )
    assert ledger["order_placed"].tolist() == [0, 10, 0, 8]
    assert ledger["end_on_hand"].tolist() == [6, 2, 8, 4]
    assert ledger["lost"].sum() == 0


def test_simulation_rows_for_both_policies() -> None:
    rng = np.random.default_rng(9)
    hist = _history(list(rng.poisson(7, 120).astype(float)))
    pdf = stack_policy_inputs(_forecast([7.0] * 30, 2.5, 2.6), hist, _inventory(30.0, 0.0))
    pcfg = PolicyConfig(lead_time_days=5, review_days=2, order_cost=40.0)
    scfg = SimulationConfig(weeks=8, lost_sale_penalty=3.0)
    out = make_simulation_fn(pcfg, scfg)(pdf)
    _arrow_ok(out, SIMULATION_SCHEMA)
    assert out["policy"].tolist() == ["policy", "naive"]
    for r in out.itertuples():
        assert r.balance_ok
        assert r.sim_days == 56
        assert r.start_on_hand + r.units_received - r.units_served == pytest.approx(r.end_on_hand)
        assert r.fill_rate == pytest.approx(r.units_served / r.total_demand)
        assert r.total_cost == pytest.approx(r.ordering_cost + r.holding_cost + r.penalty_cost)
        assert r.ordering_cost == pytest.approx(40.0 * r.orders_placed)
        assert r.penalty_cost == pytest.approx(3.0 * r.lost_units)
        assert r.end_date == SNAPSHOT
    assert out["total_demand"].nunique() == 1


def test_simulation_without_history_is_empty() -> None:
    out = compute_simulation(
        _forecast([1.0] * 5, 1.0, 1.0),
        None,
        _inventory(1.0, 0.0),
        PolicyConfig(),
        SimulationConfig(),
    )
    assert out.empty and list(out.columns) == column_names(SIMULATION_SCHEMA)
