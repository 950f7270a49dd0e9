"""Cold start: a backtest in a fresh process, on the shipped 5m ETH/BTC candles.

Run: ``.venv/bin/python benchmarks/bench_coldstart.py [--runs 3] [--baseline REF]``

Each figure is the median wall time (and CPU time) of fresh Python processes, after one
unmeasured run that fills numba's on-disk cache (a fresh checkout compiles once):

* ``cli``: ``workbench backtest data/strategies/sma_cross.json --json`` (store, import, run,
  store the run);
* ``library``: ``from workbench.backtest import backtest`` and one backtest;
* ``library-vectorbt``: the same run through vectorbt's ``from_signals``
  (`workbench.backtest.reference`, the path every backtest took before);
* with ``--baseline REF``: ``cli`` of the tree at git ref REF, side by side (a temporary
  worktree; its own database, since schemas differ between versions).

Other work on the machine stretches wall times (and CPU times, less so): the ratios printed
last (``cli`` to ``library``, and with ``--baseline`` this tree's ``cli`` to REF's) hold
better than the seconds when the cores are shared. Check ``uptime`` beside the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CANDLES = "data/candles/ETH_BTC-5m.csv.gz"
SPEC = "data/strategies/sma_cross.json"

IMPORT = """
from pathlib import Path
from workbench.data import import_file
from workbench.store import Store
with Store.open(Path({db!r})) as store:
    import_file(store, Path({candles!r}), exchange="local")
"""

LIBRARY = """
from workbench.backtest import backtest
from workbench.data import read_candle_file
from workbench.strategy import load_spec
spec = load_spec({spec!r})
result = backtest(spec, read_candle_file({candles!r}, "5m"))
assert result.stats["trades"] > 0
"""

VECTORBT = """
import pandas as pd
from workbench.backtest.reference import vectorbt_simulate
from workbench.data import read_candle_file
from workbench.fills import FillModel
from workbench.strategy import load_spec
spec = load_spec({spec!r})
candles = {{"ETH/BTC": read_candle_file({candles!r}, "5m")}}
grid = pd.DataFrame([spec.resolve_params({{}})])
stats = vectorbt_simulate(spec, candles, grid, FillModel()).stats()
assert stats["trades"].iloc[0] > 0
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Give (wall, CPU) seconds of one run of ``cmd`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(
    name: str, cmd: list[str], cwd: Path, runs: int, env: dict[str, str]
) -> tuple[float, float]:
    """Print and give the median (wall, CPU) seconds of ``runs`` fresh runs of ``cmd``."""
    timed(cmd, cwd, env)  # fills numba's cache (and the OS file cache)
    samples = [timed(cmd, cwd, env) for _ in range(runs)]
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    print(f"{name:22s} {wall:6.2f} s wall  {cpu:6.2f} s CPU  (median of {runs})")
    return wall, cpu


def ratio(name: str, a: tuple[float, float], b: tuple[float, float]) -> None:
    print(f"{name:40s} x{a[0] / b[0]:.2f} wall  x{a[1] / b[1]:.2f} CPU")


def scenarios(
    tree: Path, folder: Path, runs: int, label: str, library: bool
) -> dict[str, tuple[float, float]]:
    """Time the scenarios of ``tree``; give their (wall, CPU) by name."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # An installed package has its bytecode written: a start that compiles sources is not cold.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    db = folder / f"{label}.duckdb"
    candles = str(tree / CANDLES)
    spec = str(tree / SPEC)
    py = sys.executable
    subprocess.run([py, "-c", IMPORT.format(db=str(db), candles=candles)], cwd=tree, env=env)
    cli = [py, "-m", "workbench", "backtest", spec, "--db", str(db), "--json"]
    got = {"cli": measure(f"{label} cli", cli, tree, runs, env)}
    if library:
        lib = [py, "-c", LIBRARY.format(spec=spec, candles=candles)]
        got["library"] = measure(f"{label} library", lib, tree, runs, env)
        vbt = [py, "-c", VECTORBT.format(spec=spec, candles=candles)]
        got["library-vectorbt"] = measure(f"{label} library-vectorbt", vbt, tree, runs, env)
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="a git ref to time side by side, e.g. main~5")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        here = scenarios(ROOT, folder, args.runs, "this tree", library=True)
        old_cli = None
        if args.baseline:
            old = folder / "baseline"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(old), args.baseline],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            try:
                old_cli = scenarios(old, folder, args.runs, args.baseline, library=False)["cli"]
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)
        ratio("this tree: cli / library", here["cli"], here["library"])
        if old_cli is not None:
            ratio(f"cli: this tree / {args.baseline}", here["cli"], old_cli)


if __name__ == "__main__":
    main()
