"""Benchmarks: `make bench` (or `python -m bench [NAME ...] [--quick]`), never part of `make test`.

Each module in BENCHMARKS exposes `run(args) -> list[Result]` and, optionally,
`add_arguments(parser)`. It runs the thing and its baseline in the same process; the
runner (`bench/__main__.py`) prints one `name: ratio=… key=value …` line per result and
appends a dated section to bench/RESULTS.md. Everything runs in the dedicated
`strata_bench` database, never in development or test data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# name -> module under bench/, in the order `python -m bench` runs them.
BENCHMARKS: dict[str, str] = {
    "tenant_provisioning": "bench.tenant_provisioning",
    "generator": "bench.generator",
    "ingest": "bench.ingest",
    "sdk_load": "bench.sdk_load",
    "csv_import": "bench.csv_import",
    "segments": "bench.segments",
    "freshness": "bench.freshness",
    "insights": "bench.insights",
    "reports": "bench.reports",
    "lookup": "bench.lookup",
    "warehouse": "bench.warehouse",
    "tenants": "bench.tenants",
    "retention": "bench.retention",
}


@dataclass(frozen=True)
class Result:
    name: str
    # thing / baseline (> 1 means the thing is slower than its baseline, unless
    # ratio_means says otherwise, as for a ratio of rates).
    ratio: float
    # absolute measurements, printed in insertion order: seconds end in `_s`, rates in `_per_s`.
    measurements: dict[str, float | int] = field(default_factory=dict)
    # one line saying what the ratio divides by what.
    ratio_means: str = ""
    # free-text remarks, printed after the result line and listed under the results table.
    notes: tuple[str, ...] = ()
