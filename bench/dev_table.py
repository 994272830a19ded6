"""Markdown tables of ``slahmr-opt bench run`` results, by camera and by kind of motion.

Means are frame-weighted, as in ``metrics.json``. "locomotion" are the walks, runs and turns,
"in place" the waves and raised hands (their RTE divides by a path of a few centimetres and is not
meaningful). ``alpha / true`` is the estimated camera scale over the true one on moving cameras
that translate (tracking, orbit).

    .venv/bin/python bench/dev_table.py bench/results/dev_default.json [MORE.json ...]
"""

import argparse
import json
from pathlib import Path

import numpy as np

KEYS = ("w_mpjpe100", "wa_mpjpe100", "rte", "jitter", "foot_sliding", "pa_mpjpe", "mpjpe")
LOCOMOTION = ("_walk_", "_run_", "walk-turn")
MOVING = ("tracking", "orbit")
GROUPS = ("static", "pan", "tracking", "orbit", "locomotion", "in place", "all")


def _groups(sequences: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {g: [] for g in GROUPS}
    for name, row in sequences.items():
        kind = "locomotion" if any(k in name for k in LOCOMOTION) else "in place"
        for g in (row["camera"], kind, "all"):
            out[g].append(row)
    return out


def _mean(rows: list[dict], key: str) -> float:
    w = np.array([r["frames"] for r in rows], float)
    return float((w * np.array([r[key] for r in rows], float)).sum() / w.sum())


def table(metrics_path: str | Path) -> str:
    sequences = json.loads(Path(metrics_path).read_text())["sequences"]
    lines = [
        "| sequences | n | " + " | ".join(KEYS) + " | alpha / true |",
        "|---" * (len(KEYS) + 3) + "|",
    ]
    for group, rows in _groups(sequences).items():
        if not rows:
            continue
        moving = [r["alpha"] / r["alpha_true"] for r in rows if r["camera"] in MOVING]
        alpha = f"{np.mean(moving):.2f}" if moving else "-"
        values = " | ".join(f"{_mean(rows, k):.1f}" for k in KEYS)
        lines.append(f"| {group} | {len(rows)} | {values} | {alpha} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", nargs="+", help="metrics.json files of bench run")
    for path in ap.parse_args().metrics:
        print(f"\n{path}\n{table(path)}")


if __name__ == "__main__":
    main()
