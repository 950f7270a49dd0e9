"""`workbench strategy`: check strategy spec files, write the JSON Schema for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.common import JsonOption, console, errors, print_json

app = typer.Typer(
    help="Strategy specs: validate them, generate their JSON Schema.", no_args_is_help=True
)


@app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="strategy spec JSON files")],
    as_json: JsonOption = False,
) -> None:
    """Validate spec files; print every problem with its JSON path; exit 1 if any."""
    # Imported here: the indicators compile with numba, which every other command would pay.
    from workbench.strategy import SpecError, load_spec

    report: dict[str, list[dict[str, str]]] = {}
    for path in files:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            report[str(path)] = [{"path": p.path, "reason": p.reason} for p in exc.problems]
            if not as_json:
                errors.print(f"[bold red]✗[/] {path}: {len(exc.problems)} problem(s)")
                for p in exc.problems:
                    errors.print(f"    [cyan]{p.path or '<root>'}[/]: {p.reason}", highlight=False)
            continue
        report[str(path)] = []
        if not as_json:
            inds = ", ".join(f"{n} ({i.kind})" for n, i in spec.indicators.items())
            console.print(
                f"[green]✓[/] {path}: {spec.name} on {spec.market.symbol} "
                f"{spec.market.timeframe}; indicators: {inds or 'none'}",
                highlight=False,
            )
    if as_json:
        print_json(report)
    if any(report.values()):
        raise typer.Exit(1)


@app.command("schema")
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to this file instead of stdout")
    ] = None,
) -> None:
    """Print (or write) the JSON Schema of strategy specs."""
    from workbench.strategy.schema import strategy_schema

    text = json.dumps(strategy_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")
