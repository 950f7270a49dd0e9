"""Dashboard responsiveness with many strategies streaming, in a real browser.

Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--strategies 50] [--speed 60]
[--seconds 30]``. Serves apps/dashboard.py with `panel serve` (the engine started with the
server, as `workbench demo` does) on a scratch copy of the shipped candles, opens it in
Debian's chromium, and measures:

- first load: from navigation to the market chart drawn (engine already running; the target
  is under 3 s with 50 strategies), split into the page's HTML (the server builds the
  session), scripts parsed, the document received and drawn, and the chart found; and
  whether the chart is in the first screen beside the strategies table (its top edge inside
  the 1500 x 1100 viewport) with every strategy a row;
- streaming: closed candles the chart took per second against the candles the engine
  closed (a ratio: 1.0 means the page keeps up);
- main-thread blocking in the browser: share of wall time spent in long tasks (> 50 ms);
- a click's round trip: a row's Pause pressed until the note beside the table says the
  engine set (and stored) it.

``--screenshot docs/live-page.png`` also saves the first screen after streaming (the README's
picture: ``--seconds 10 --screenshot docs/live-page.png``).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.cli.demo import SETUP  # noqa: E402
from workbench.data.shipped import ensure_shipped  # noqa: E402
from workbench.store import Store  # noqa: E402
from workbench.store.sharing import query  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
STRATEGY_ROWS = ".strategy-table .tabulator-row"
#: Rows the table holds (Tabulator draws only those scrolled into view).
COUNT_ROWS = """(() => { for (const doc of Bokeh.documents) for (const m of doc.all_models)
  if (m.css_classes?.includes("strategy-table")) return m.source.get_length(); return -1; })()"""
#: Bokeh has every view of the document built (received over the websocket, then drawn).
DOCUMENT_DRAWN = "window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle"
BARS = re.compile(r"bars streamed: (\d+)")
LONG_TASKS = """
window.__blocked = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__blocked += e.duration;
}).observe({type: 'longtask', buffered: true});
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


def closed_bars(db: Path) -> int:
    """Give the equity marks stored so far (one per strategy per closed candle)."""
    return int(query("SELECT count(*) AS n FROM equity", db=db)["n"].iloc[0])


def streamed(page: object) -> int:
    text = page.locator("text=/bars streamed/").first.inner_text()  # type: ignore[attr-defined]
    found = BARS.search(text)
    return int(found.group(1)) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=int, default=50)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--screenshot", type=Path, help="save the first screen here (PNG)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "workbench.duckdb"
        with Store.open(db) as store:
            ensure_shipped(store)
        port = free_port()
        env = {
            **os.environ,
            "WORKBENCH_DB": str(db),
            "WORKBENCH_LOCAL_SPEED": str(args.speed),
            "WORKBENCH_DEMO_STRATEGIES": str(args.strategies),
        }
        log = (Path(tmp) / "serve.log").open("wb")
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "panel", "serve", str(ROOT / "apps" / "dashboard.py")),
                *("--setup", str(SETUP), "--liveness", "--address", "127.0.0.1"),
                *("--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/liveness")
            began = time.monotonic()
            while closed_bars(db) == 0:
                time.sleep(0.3)
            print(
                f"engine: {args.strategies} strategies trading {time.monotonic() - began:.1f} s "
                "after the server answered (before any page)"
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                page.add_init_script(LONG_TASKS)
                began = time.monotonic()
                page.goto(f"http://127.0.0.1:{port}/dashboard")
                loaded = time.monotonic() - began
                timing = page.evaluate(
                    "(() => { const n = performance.getEntriesByType('navigation')[0];"
                    " const r = performance.getEntriesByType('resource');"
                    " return {html: n.responseEnd, dom: n.domContentLoadedEventEnd,"
                    " kb: r.reduce((a, e) => a + e.transferSize, n.transferSize) / 1024}; })()"
                )
                page.wait_for_function(DOCUMENT_DRAWN, timeout=120_000, polling=50)
                drawn = time.monotonic() - began
                page.wait_for_selector("text=/bars streamed/", timeout=120_000)
                page.wait_for_selector("canvas", timeout=60_000)
                first_chart = time.monotonic() - began
                print(
                    f"first load: {first_chart:.2f} s to the drawn market chart "
                    f"(page HTML {timing['html'] / 1000:.2f} s, scripts parsed "
                    f"{timing['dom'] / 1000:.2f} s, load event {loaded:.2f} s, "
                    f"document received and drawn {drawn:.2f} s, "
                    f"{timing['kb']:.0f} KiB transferred)"
                )
                rows = page.locator(STRATEGY_ROWS)
                rows.first.wait_for(timeout=60_000)
                chart_top = page.locator("canvas").first.bounding_box()["y"]
                print(
                    f"first chart under 3 s with {args.strategies} strategies: "
                    f"{'yes' if first_chart < 3.0 else 'NO'}; chart's top edge at "
                    f"{chart_top:.0f} px of a 1100 px viewport "
                    f"({'in' if chart_top < 1100 else 'OUT OF'} the first screen); "
                    f"{page.evaluate(COUNT_ROWS)} rows in the strategies table"
                )

                page.wait_for_timeout(3000)  # settle
                page_0, engine_0 = streamed(page), closed_bars(db)
                blocked_0, t0 = page.evaluate("window.__blocked"), time.monotonic()
                page.wait_for_timeout(args.seconds * 1000)
                page_1, engine_1 = streamed(page), closed_bars(db)
                blocked_1, wall = page.evaluate("window.__blocked"), time.monotonic() - t0
                # The chart shows one market; the engine marks every strategy on every market.
                market_closed = (engine_1 - engine_0) / args.strategies
                rate = (page_1 - page_0) / wall
                print(
                    f"streaming: chart {rate:.1f} bars/s, engine {market_closed / wall:.1f} "
                    f"bars/s per strategy; ratio {rate / max(market_closed / wall, 1e-9):.2f}"
                )
                print(
                    f"browser main thread blocked {100 * (blocked_1 - blocked_0) / 1000 / wall:.1f}"
                    " % of the time (long tasks)"
                )
                if args.screenshot:
                    page.screenshot(path=str(args.screenshot))
                    print(f"screenshot: {args.screenshot}")
                row = rows.last  # the last one drawn: scrolled into view by the click
                began = time.monotonic()
                row.get_by_role("button", name="Pause").click()
                done = page.locator(".strategy-note").locator("text=/: set paused/")
                done.wait_for(timeout=60_000)
                print(f"pause round trip: {time.monotonic() - began:.2f} s (click to stored state)")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
            slow = [
                line
                for line in (Path(tmp) / "serve.log").read_text().splitlines()
                if "page update took" in line
            ]
            print(f"server ticks slower than the tick period: {len(slow)}")
            for line in (Path(tmp) / "serve.log").read_text().splitlines():
                if "page built" in line:
                    print("server:", line.split(" ", 2)[-1])


if __name__ == "__main__":
    main()
