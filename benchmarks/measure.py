"""What every benchmark script shares: its command line and its report (how figures are printed, and the markdown
file with the hardware they were measured on). Timing that waits for the GPU is :func:`course_lib.runtime.timed`."""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from course_lib.plots import results_table
from course_lib.runtime import describe_hardware, get_device, resolve_profile, seed_everything


def fmt(value: object) -> str:
    """A figure for a results table: floats to 3 significant digits (1 decimal from 100 on), ints with separators."""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class Run:
    """What a benchmark's command line asked for: the profile, device, seed, the selected items and the report file."""

    profile: str
    device: torch.device
    seed: int
    selected: list[str]
    out: Path
    command: str
    start: float = field(default_factory=time.perf_counter)

    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60


def parse_args(argv: list[str] | None, *, description: str, script: str, topic: str, choices: Sequence[str],
               option: str = "parts") -> Run:
    """The command line every topic's benchmark shares: ``--profile``, ``--<option>`` (a comma-separated subset
    of ``choices``), ``--device``, ``--seed``, ``--out`` (default ``benchmarks/RESULTS-<topic>-<profile>.md``).
    Seeds everything with the seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--profile", default=None, help="smoke, cpu or gpu (default: $COURSE_PROFILE, else hardware)")
    parser.add_argument(f"--{option}", default=",".join(choices),
                        help=f"comma-separated subset of {', '.join(choices)}")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"report file (default benchmarks/RESULTS-{topic}-<profile>.md)")
    args = parser.parse_args(argv)
    selected = [p.strip() for p in getattr(args, option).split(",") if p.strip()]
    unknown = sorted(set(selected) - set(choices))
    if unknown:
        parser.error(f"unknown {option} {', '.join(unknown)}; expected some of {', '.join(choices)}")
    profile = resolve_profile(args.profile)
    seed_everything(args.seed)
    return Run(profile=profile, device=get_device(args.device), seed=args.seed, selected=selected,
               out=args.out or Path(__file__).with_name(f"RESULTS-{topic}-{profile}.md"),
               command=f"python benchmarks/{script} --profile {profile}")


def write_report(rows: list[dict], run: Run, *, title: str, settings: str,
                 group: Callable[[dict], Any] | None = None) -> str:
    """Write the benchmark's markdown report to ``run.out`` and return it: a header (when, the hardware, the
    command, ``settings``), then one table per group of rows (``group(row)``; default: rows with the same
    columns), each table's columns the union of its rows' (in order of appearance)."""
    lines = [
        f"# {title}, profile `{run.profile}`",
        "",
        f"- measured: {dt.datetime.now().isoformat(timespec='minutes')}, wall time {run.minutes():.1f} min",
        f"- hardware: {describe_hardware()} ({platform.platform()}); device `{run.device}`",
        f"- command: `{run.command}`",
        f"- settings: {settings}",
        "",
    ]
    groups: dict[Any, list[dict]] = {}
    for row in rows:
        groups.setdefault(group(row) if group else tuple(row), []).append(row)
    for members in groups.values():
        columns = list(dict.fromkeys(k for row in members for k in row if not k.startswith("_")))
        lines += [results_table([{k: fmt(row.get(k, "")) for k in columns} for row in members], columns), ""]
    report = "\n".join(lines)
    run.out.write_text(report)
    return report


def run_parts(run: Run, measure: Callable[[str], list[dict]], report: Callable[[list[dict]], str]) -> list[dict]:
    """Measure each selected part in order (``measure(part)`` -> its rows), printing its rows as they come and
    rewriting the report after each part (so that an interrupted run keeps what it measured); returns all rows."""
    rows: list[dict] = []
    for part in run.selected:
        print(f"[{run.profile}] {part} ...", flush=True)
        new = measure(part)
        for row in new:
            print("   ", {k: fmt(v) for k, v in row.items() if not k.startswith("_")}, flush=True)
        rows += new
        report(rows)
    print(report(rows))
    return rows
