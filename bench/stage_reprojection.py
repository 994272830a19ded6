"""How much stage 3 gives up of stage 2's agreement with the 2D keypoints, per benchmark sequence.

Reads ``OUT/<sequence>/history.csv`` of a ``slahmr-opt bench run`` and compares the ``kp2d``
term (the robust reprojection loss, same weight in both stages) at the end of stage ``smooth``
and of stage ``motion``. The target of issue 12: stage 3 never more than 20 % worse.

    .venv/bin/python bench/stage_reprojection.py OUT [OUT ...]
"""

import argparse
import csv
from pathlib import Path

import numpy as np

CAMERAS = ("static", "pan", "tracking", "orbit")


def final_terms(history: Path, term: str = "kp2d") -> dict[str, float]:
    """The last recorded value of ``term`` in each stage of a ``history.csv``."""
    last: dict[str, float] = {}
    with open(history, newline="") as f:
        for row in csv.DictReader(f):
            if row.get(term):
                last[row["stage"]] = float(row[term])
    return last


def ratios(out: Path, before: str = "smooth", after: str = "motion") -> dict[str, float]:
    """``kp2d(after) / kp2d(before)`` for every sequence folder of ``out`` that has both."""
    res = {}
    for hist in sorted(out.glob("*/history.csv")):
        t = final_terms(hist)
        if before in t and after in t and t[before] > 0:
            res[hist.parent.name] = t[after] / t[before]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outs", nargs="+", type=Path)
    for out in ap.parse_args().outs:
        r = ratios(out)
        if not r:
            print(f"{out}: no sequence with both stages")
            continue
        v = np.array(list(r.values()))
        print(f"{out}: {len(v)} sequences, kp2d motion / smooth: median {np.median(v):.2f}, "
              f"max {v.max():.2f}, over 1.2: {(v > 1.2).sum()}")  # fmt: skip
        for cam in CAMERAS:
            c = np.array([x for k, x in r.items() if f"_{cam}_" in k])
            if len(c):
                print(f"  {cam:9s} median {np.median(c):.2f}  max {c.max():.2f}")


if __name__ == "__main__":
    main()
