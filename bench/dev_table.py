"""Markdown tables of ``slahmr-opt bench run`` results, by camera and by kind of motion.

Means are frame-weighted, as in ``metrics.json``. "locomotion" are the walks, runs and turns,
"in place" the waves and raised hands (their RTE divides by a path of a few centimetres and is not
meaningful). ``alpha / true`` is the estimated camera scale over the true one on moving cameras
that translate (tracking, orbit).

    .venv/bin/python bench/dev_table.py bench/results/dev_default.json [MORE.json ...]
    .venv/bin/python bench/dev_table.py --compare before=A/metrics.json after=B/metrics.json

``--compare`` gives one row per group and labelled run, for the runs' common sequences.
"""

import argparse
import json
from pathlib import Path

import numpy as np

KEYS = ("w_mpjpe100", "wa_mpjpe100", "rte", "jitter", "foot_sliding", "pa_mpjpe", "mpjpe",
        "facing_off45")  # fmt: skip
COMPARE_KEYS = ("w_mpjpe100", "wa_mpjpe100", "rte", "jitter", "foot_sliding", "pa_mpjpe",
                "facing_off45")  # fmt: skip
LOCOMOTION = ("_walk_", "_run_", "walk-turn")
MOTIONS = {"walk": "_walk_", "turn": "walk-turn", "run": "_run_", "wave": "_wave-",
           "raise": "_raise-up"}  # fmt: skip
MOVING = ("tracking", "orbit")
CAMERAS = ("static", "pan", "tracking", "orbit")
GROUPS = (*CAMERAS, "locomotion", "in place", *MOTIONS, "all")


def _groups(sequences: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {g: [] for g in GROUPS}
    for name, row in sequences.items():
        kind = "locomotion" if any(k in name for k in LOCOMOTION) else "in place"
        motion = [m for m, pattern in MOTIONS.items() if pattern in name]
        for g in (row["camera"], kind, *motion, "all"):
            out[g].append(row)
    return out


def _mean(rows: list[dict], key: str) -> float:
    w = np.array([r["frames"] for r in rows], float)
    v = np.array([r.get(key, np.nan) for r in rows], float)
    ok = np.isfinite(v)
    return float((w[ok] * v[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")


def _alpha(rows: list[dict]) -> str:
    moving = [r["alpha"] / r["alpha_true"] for r in rows if r["camera"] in MOVING]
    return f"{np.mean(moving):.2f}" if moving else "-"


def table(metrics_path: str | Path) -> str:
    sequences = json.loads(Path(metrics_path).read_text())["sequences"]
    lines = [
        "| sequences | n | " + " | ".join(KEYS) + " | alpha / true |",
        "|---" * (len(KEYS) + 3) + "|",
    ]
    for group, rows in _groups(sequences).items():
        if not rows:
            continue
        values = " | ".join(f"{_mean(rows, k):.1f}" for k in KEYS)
        lines.append(f"| {group} | {len(rows)} | {values} | {_alpha(rows)} |")
    return "\n".join(lines)


def compare(runs: dict[str, str | Path], groups=GROUPS) -> str:
    """One row per group and run (label -> metrics.json) over the sequences all runs share."""
    seqs = {k: json.loads(Path(p).read_text())["sequences"] for k, p in runs.items()}
    common = set.intersection(*(set(s) for s in seqs.values()))
    lines = [
        "| sequences | run | n | " + " | ".join(COMPARE_KEYS) + " | alpha / true | s / seq |",
        "|---" * (len(COMPARE_KEYS) + 5) + "|",
    ]
    for group in groups:
        for label, s in seqs.items():
            rows = _groups({k: v for k, v in s.items() if k in common})[group]
            if not rows:
                continue
            values = " | ".join(f"{_mean(rows, k):.1f}" for k in COMPARE_KEYS)
            secs = np.mean([r["seconds"] for r in rows])
            lines.append(f"| {group} | {label} | {len(rows)} | {values} | {_alpha(rows)} | "
                         f"{secs:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", nargs="*", help="metrics.json files of bench run")
    ap.add_argument("--compare", nargs="+", metavar="LABEL=PATH", help="runs side by side")
    ap.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS)
    args = ap.parse_args()
    for path in args.metrics:
        print(f"\n{path}\n{table(path)}")
    if args.compare:
        runs = dict(item.split("=", 1) for item in args.compare)
        print(compare(runs, args.groups))


if __name__ == "__main__":
    main()
