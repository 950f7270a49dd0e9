"""Capital allocation: the shares add up to the capital and follow the chosen rule."""

from __future__ import annotations

import pytest
from shipped import CANDLE_FILES, shipped

from workbench.portfolio.allocation import AllocationError, allocate, recent_volatility


def test_equal_split_adds_up() -> None:
    shares = allocate(3.0, ["a", "b", "c"])
    assert shares == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})


def test_weights_are_normalized() -> None:
    shares = allocate(10.0, ["a", "b"], "weights", weights={"a": 3, "b": 1})
    assert shares == pytest.approx({"a": 7.5, "b": 2.5})
    with pytest.raises(AllocationError, match="no weights for b"):
        allocate(10.0, ["a", "b"], "weights", weights={"a": 1})


def test_inverse_volatility_gives_calmer_markets_more_and_equal_risk() -> None:
    vols = {
        sid: recent_volatility(shipped(path)[1])
        for sid, path in (
            ("eth", CANDLE_FILES[3]),
            ("ada", CANDLE_FILES[0]),
            ("xrp", CANDLE_FILES[9]),
        )
    }
    shares = allocate(1.0, list(vols), "volatility", volatility=vols)
    assert sum(shares.values()) == pytest.approx(1.0)
    risk = {sid: shares[sid] * vols[sid] for sid in vols}
    assert max(risk.values()) == pytest.approx(min(risk.values()))
    calmest = min(vols, key=vols.__getitem__)
    assert shares[calmest] == max(shares.values())


def test_nonsense_is_refused() -> None:
    with pytest.raises(AllocationError, match="unknown method"):
        allocate(1.0, ["a"], "kelly")
    with pytest.raises(AllocationError, match="positive"):
        allocate(0.0, ["a"])
