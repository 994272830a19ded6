"""Ablation tables: flatten per-cell metrics, aggregate them per variant, write markdown and CSV.

Per variant, ``frames`` and times (keys with a dotted part ending in ``seconds``) are summed over
sequences; every other number is the frame-weighted mean over the sequences that have it (NaN
left out); ``frames_per_second`` is recomputed from the totals.
"""

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Leading table columns, in this order, when present; the others follow sorted.
LEADING_COLUMNS = (
    "frames",
    "seconds",
    "frames_per_second",
    "w_mpjpe100",
    "wa_mpjpe100",
    "pa_mpjpe",
    "mpjpe",
    "rte",
    "jitter",
    "foot_sliding",
)


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a metrics dict with dotted keys; lists of named dicts are keyed by name."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name + "."))
        elif isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value):
            for item in value:
                rest = {k: v for k, v in item.items() if k != "name"}
                flat.update(flatten_metrics(rest, f"{name}.{item['name']}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def _format(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"


def _columns(rows: list[dict]) -> list[str]:
    keys = {k for row in rows for k in row if k not in ("variant", "sequence")}
    lead = [k for k in LEADING_COLUMNS if k in keys]
    return lead + sorted(keys - set(lead))


def _is_total(key: str) -> bool:
    """Counts and times add up over sequences (``frames``, ``seconds``, ``stage_seconds.root``)."""
    return key == "frames" or any(part.endswith("seconds") for part in key.split("."))


def aggregate(records: list[dict], variant_order: Sequence[str]) -> list[dict]:
    """One row per variant: ``frames`` and times summed, other numbers frame-weighted.

    NaN values (a metric a sequence cannot have) are left out of that metric's mean;
    ``frames_per_second`` is recomputed from the totals.
    """
    rows = []
    for name in variant_order:
        cells = [r["metrics"] for r in records if r["variant"] == name]
        if not cells:
            continue
        row: dict[str, Any] = {"variant": name, "sequences": len(cells)}
        for key in sorted({k for m in cells for k in m} - {"frames_per_second"}):
            have = [m for m in cells if key in m and not math.isnan(m[key])]
            if not have:
                row[key] = math.nan
            elif _is_total(key):
                row[key] = sum(m[key] for m in have)
            else:
                weights = [m.get("frames", 1.0) for m in have]
                total = sum(weights)
                row[key] = sum(w * m[key] for w, m in zip(weights, have)) / max(total, 1e-12)
        if "frames" in row and row.get("seconds", 0.0) > 0:
            row["frames_per_second"] = row["frames"] / row["seconds"]
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict], first: list[str]) -> None:
    columns = first + [c for c in _columns(rows) if c not in first]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_tables(out_dir: Path, records: list[dict], variant_order: Sequence[str]) -> Path:
    """Write ``table.md``, ``table.csv`` and ``cells.csv``; return the markdown table's path."""
    rows = aggregate(records, variant_order)
    _write_csv(out_dir / "table.csv", rows, ["variant", "sequences"])
    cell_rows = [
        {"variant": r["variant"], "sequence": r["sequence"], **r["metrics"]} for r in records
    ]
    _write_csv(out_dir / "cells.csv", cell_rows, ["variant", "sequence"])
    columns = ["variant", "sequences", *_columns(rows)]
    columns = list(dict.fromkeys(columns))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            _format(row[c]) if isinstance(row.get(c), float) else str(row.get(c, ""))
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    path = out_dir / "table.md"
    path.write_text("\n".join(lines) + "\n")
    return path
