"""Every indicator, vectorized and incremental, equals an independent textbook recomputation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from strategy import oracles as oracle

from workbench.strategy.indicators.registry import KINDS, SOURCE

BARS = 1200


@pytest.fixture(scope="module")
def candles(eth_candles: pd.DataFrame) -> pd.DataFrame:
    return eth_candles.iloc[:BARS]


def vector(kind: str, candles: pd.DataFrame, **args: float) -> dict[str, np.ndarray]:
    spec = KINDS[kind]
    inputs = {
        name: candles["close" if name == SOURCE else name].to_numpy(float)[None, :]
        for name in spec.inputs
    }
    arrays = {
        a.name: np.array([args.get(a.name, a.default)], dtype=np.int64 if a.type is int else float)
        for a in spec.args
    }
    outs = spec.vector(inputs, arrays, 1)
    return {name: out[0] for name, out in zip(spec.outputs, outs, strict=True)}


def incremental(kind: str, candles: pd.DataFrame, **args: float) -> dict[str, np.ndarray]:
    spec = KINDS[kind]
    obj = spec.incremental({a.name: args.get(a.name, a.default) for a in spec.args})
    cols = [candles["close" if n == SOURCE else n].tolist() for n in spec.inputs]
    rows = [obj.update(*vals) for vals in zip(*cols, strict=True)]
    return {name: np.array([r[i] for r in rows]) for i, name in enumerate(spec.outputs)}


def assert_close(actual: np.ndarray, expected: list[float], what: str) -> None:
    expected_arr = np.asarray(expected, dtype=float)
    assert np.array_equal(np.isnan(actual), np.isnan(expected_arr)), f"{what}: NaN positions"
    scale = np.nanmax(np.abs(expected_arr)) if np.isfinite(expected_arr).any() else 1.0
    np.testing.assert_allclose(actual, expected_arr, rtol=1e-9, atol=1e-12 * scale, err_msg=what)


def _cols(candles: pd.DataFrame) -> tuple[list[float], ...]:
    return tuple(candles[c].tolist() for c in ("open", "high", "low", "close", "volume"))


def expected(kind: str, candles: pd.DataFrame, args: dict[str, float]) -> dict[str, list[float]]:
    _, h, lo, c, v = _cols(candles)
    n = int(args.get("period", 0))
    match kind:
        case "sma":
            return {"value": oracle.sma(c, n)}
        case "ema":
            return {"value": oracle.ema(c, n)}
        case "wma":
            return {"value": oracle.wma(c, n)}
        case "rsi":
            return {"value": oracle.rsi(c, n)}
        case "macd":
            line, sig, hist = oracle.macd(c, args["fast"], args["slow"], args["signal"])
            return {"macd": line, "signal": sig, "hist": hist}
        case "bbands":
            up, mid, low = oracle.bbands(c, n, args["mult"])
            return {"upper": up, "middle": mid, "lower": low}
        case "atr":
            return {"value": oracle.atr(h, lo, c, n)}
        case "stoch":
            k, d = oracle.stoch(h, lo, c, n, args["smooth_k"], args["d_period"])
            return {"k": k, "d": d}
        case "adx":
            a, p, m = oracle.adx(h, lo, c, n)
            return {"adx": a, "plus_di": p, "minus_di": m}
        case "obv":
            return {"value": oracle.obv(c, v)}
        case "vwap":
            return {"value": oracle.vwap(h, lo, c, v, n)}
        case "donchian":
            up, low = oracle.rolling(h, n, max), oracle.rolling(lo, n, min)
            return {
                "upper": up,
                "lower": low,
                "middle": [(a + b) / 2 for a, b in zip(up, low, strict=False)],
            }
        case "highest":
            return {"value": oracle.rolling(c, n, max)}
        case "lowest":
            return {"value": oracle.rolling(c, n, min)}
        case "roc":
            return {"value": oracle.roc(c, n)}
        case "volatility":
            return {"value": oracle.volatility(c, n)}
    raise AssertionError(f"no oracle for {kind}")


CASES = [
    ("sma", {"period": 20}),
    ("sma", {"period": 1}),
    ("ema", {"period": 26}),
    ("wma", {"period": 15}),
    ("rsi", {"period": 14}),
    ("rsi", {"period": 3}),
    ("macd", {"fast": 12, "slow": 26, "signal": 9}),
    ("bbands", {"period": 20, "mult": 2.0}),
    ("atr", {"period": 14}),
    ("stoch", {"period": 14, "smooth_k": 3, "d_period": 3}),
    ("adx", {"period": 14}),
    ("obv", {}),
    ("vwap", {"period": 30}),
    ("donchian", {"period": 20}),
    ("highest", {"period": 10}),
    ("lowest", {"period": 10}),
    ("roc", {"period": 9}),
    ("volatility", {"period": 30}),
]


def test_every_kind_has_an_oracle_case() -> None:
    assert {kind for kind, _ in CASES} == set(KINDS)


@pytest.mark.parametrize(("kind", "args"), CASES, ids=[f"{k}-{a}" for k, a in CASES])
def test_vectorized_matches_textbook(kind: str, args: dict[str, float], candles) -> None:
    got = vector(kind, candles, **args)
    for name, values in expected(kind, candles, args).items():
        assert_close(got[name], values, f"{kind}.{name}")


@pytest.mark.parametrize(("kind", "args"), CASES, ids=[f"{k}-{a}" for k, a in CASES])
def test_incremental_matches_textbook(kind: str, args: dict[str, float], candles) -> None:
    got = incremental(kind, candles, **args)
    for name, values in expected(kind, candles, args).items():
        assert_close(got[name], values, f"{kind}.{name}")


def test_grid_columns_match_single_runs(candles: pd.DataFrame) -> None:
    close = candles["close"].to_numpy(float)[None, :]
    grid = KINDS["ema"].vector({SOURCE: close}, {"period": np.array([5, 26, 50])}, 3)[0]
    for col, n in enumerate((5, 26, 50)):
        assert_close(grid[col], oracle.ema(candles["close"].tolist(), n), f"ema {n}")


def test_flat_prices_give_neutral_values() -> None:
    flat = pd.DataFrame(
        {c: [1.0] * 40 for c in ("open", "high", "low", "close")} | {"volume": [0.0] * 40}
    )
    assert vector("rsi", flat, period=14)["value"][-1] == 50.0
    assert vector("stoch", flat, period=14, smooth_k=1, d_period=3)["k"][-1] == 50.0
    assert vector("adx", flat, period=5)["adx"][-1] == 0.0
    assert vector("vwap", flat, period=5)["value"][-1] == 1.0
    assert vector("bbands", flat, period=5, mult=2.0)["percent_b"][-1] == 0.5
    assert math.isclose(vector("volatility", flat, period=5)["value"][-1], 0.0)
