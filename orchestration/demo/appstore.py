"""Writing the simulated App Store payloads: one file per (chart date, country, device, chart), and the command
line (``python -m orchestration.demo``)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Sequence

from orchestration.demo.catalogue import CURRENCY, DEFAULT_COUNTRIES
from orchestration.demo.payloads import LEGACY_MAX_ENTRIES, payload_bytes
from orchestration.demo.ranking import DEFAULT_SEED
from orchestration.sources.canonical import CHARTS, DEVICES


def relative_path(day: dt.date, country: str, device: str, chart: str) -> str:
    return f"{day.isoformat()}/{country}-{device}-{chart}.json"


def _check_args(start: dt.date, end: dt.date, countries: Sequence[str], devices: Sequence[str],
                charts: Sequence[str], depth: int) -> None:
    if start > end:
        raise ValueError(f"demo: start {start} is after end {end}")
    unknown = [c for c in countries if c not in CURRENCY]
    if unknown:
        raise ValueError(f"demo: unsupported countries {unknown}; supported: {sorted(CURRENCY)}")
    if len(set(countries)) != len(countries):
        raise ValueError(f"demo: duplicate countries in {list(countries)}")
    bad = [d for d in devices if d not in DEVICES] + [c for c in charts if c not in CHARTS]
    if bad:
        raise ValueError(f"demo: unknown devices/charts {bad}; expected devices {DEVICES}, charts {CHARTS}")
    if not 1 <= depth <= LEGACY_MAX_ENTRIES:
        raise ValueError(f"demo: depth must be 1..{LEGACY_MAX_ENTRIES} (the legacy feed's limit), got {depth}")


def generate(out_dir: Path, *, start: dt.date = dt.date(2025, 1, 1), end: dt.date = dt.date(2025, 1, 31),
             countries: Sequence[str] = DEFAULT_COUNTRIES, devices: Sequence[str] = ("iphone", "ipad"),
             charts: Sequence[str] = ("top-free", "top-paid", "top-grossing"), depth: int = 100,
             seed: int = DEFAULT_SEED) -> list[Path]:
    """Write one simulated payload per (date, country, device, chart), ``start`` to ``end`` inclusive.

    Files are ``out_dir/{date}/{country}-{device}-{chart}.json``. iPhone top-free/top-paid hold at most 100
    entries (the v2 feed's limit) whatever ``depth`` says. Same arguments, same bytes. Returns the paths written,
    in (date, country, device, chart) order.
    """
    countries, devices, charts = tuple(countries), tuple(devices), tuple(charts)
    _check_args(start, end, countries, devices, charts, depth)
    out_dir = Path(out_dir)
    written: list[Path] = []
    day = start
    while day <= end:
        (out_dir / day.isoformat()).mkdir(parents=True, exist_ok=True)
        for country in countries:
            for device in devices:
                for chart in charts:
                    path = out_dir / relative_path(day, country, device, chart)
                    path.write_bytes(payload_bytes(country, device, chart, day, depth, seed=seed))
                    written.append(path)
        day += dt.timedelta(days=1)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m orchestration.demo",
                                 description="Write simulated App Store chart payloads (chartlake demo data).")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 1, 1))
    ap.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2025, 1, 31))
    ap.add_argument("--countries", default=",".join(DEFAULT_COUNTRIES))
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    paths = generate(args.out_dir, start=args.start, end=args.end, countries=args.countries.split(","),
                     depth=args.depth, seed=args.seed)
    print(f"wrote {len(paths)} simulated payloads under {args.out_dir}")
    return 0
