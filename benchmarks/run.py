"""Run every benchmark in this folder, one after the other: `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
failed = []
for bench in sorted(here.glob("bench_*.py")):
    print(f"\n=== {bench.name} ===", flush=True)
    if subprocess.run([sys.executable, str(bench)], check=False).returncode:
        failed.append(bench.name)
if failed:
    sys.exit(f"failed: {', '.join(failed)}")
