"""Tables of ``bench run`` results: by camera, by kind of motion and by motion variant.

Means are frame-weighted, as in ``metrics.json``. Groups: the camera kinds; "locomotion" (walks,
runs and turns) and "in place" (waves and raised hands, whose RTE divides by a path of a few
centimetres and means little); each motion kind of the Bandai-Namco data; the motion variants of
``bench make --variants`` ("original", and "reversed" / "mirrored": motions the priors' training
data lacks by construction); "all". ``alpha / true`` is the estimated camera scale over the true
one on moving cameras that translate (tracking, orbit; the rendered-video benchmark's behind and
side).

``compare`` puts runs side by side over their common sequences; with ``check`` it marks every
group where a run is worse than the first (the reference, e.g. stages 1-2) by more than that
fraction in one of ``CHECK_KEYS``: issue 13's rule that stage 3 may not lose more than 5 % on
any motion kind.
"""

from pathlib import Path

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.experiments.bench_run import read_json
from slahmr_opt.synth.benchmark import VARIANTS

KEYS = ("w_mpjpe100", "wa_mpjpe100", "rte", "jitter", "foot_sliding", "pa_mpjpe", "mpjpe",
        "facing_off45")  # fmt: skip
COMPARE_KEYS = ("w_mpjpe100", "wa_mpjpe100", "rte", "jitter", "foot_sliding", "pa_mpjpe",
                "facing_off45")  # fmt: skip
#: Metrics the ``check`` of ``compare`` guards.
CHECK_KEYS = ("pa_mpjpe", "wa_mpjpe100", "w_mpjpe100", "rte")
LOCOMOTION = ("_walk_", "_run_", "walk-turn")
MOTIONS = {"walk": "_walk_", "turn": "walk-turn", "run": "_run_", "wave": "_wave-",
           "raise": "_raise-up"}  # fmt: skip
MOVING = ("tracking", "orbit", "behind", "side")
CAMERAS = ("static", "pan", "tracking", "orbit", "behind", "side")
GROUPS = (*CAMERAS, "locomotion", "in place", *MOTIONS, *VARIANTS, "all")


def variant_of(name: str) -> str:
    """``original``, ``reversed`` or ``mirrored``: the suffix ``~variant`` of a sequence name."""
    suffix = name.rsplit("~", 1)[1] if "~" in name else "original"
    return suffix if suffix in VARIANTS else "original"


def groups(sequences: dict) -> dict[str, list[dict]]:
    """The score rows of ``sequences`` (name -> score) in each of ``GROUPS``; the failure rows
    of ``bench run --video`` (no metrics) are left out."""
    out: dict[str, list[dict]] = {g: [] for g in GROUPS}
    for name, row in sequences.items():
        if row.get("failed"):
            continue
        kind = "locomotion" if any(k in name for k in LOCOMOTION) else "in place"
        motion = [m for m, pattern in MOTIONS.items() if pattern in name]
        for g in (row.get("camera"), kind, *motion, variant_of(name), "all"):
            if g in out:
                out[g].append(row)
    return out


def mean(rows: list[dict], key: str) -> float:
    """Frame-weighted mean of ``key`` over rows that have a finite value (NaN if none)."""
    w = np.array([r["frames"] for r in rows], float)
    v = np.array([r.get(key, np.nan) for r in rows], float)
    ok = np.isfinite(v)
    return float((w[ok] * v[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")


def _alpha(rows: list[dict]) -> str:
    """Mean alpha / true over the translating cameras, and how many did not observe a scale
    (``world_scale`` NaN: the camera barely moved)."""
    moving = np.array([r["alpha"] / r["alpha_true"] for r in rows if r.get("camera") in MOVING])
    if not len(moving):
        return "-"
    seen = moving[np.isfinite(moving)]
    text = f"{seen.mean():.2f}" if len(seen) else "-"
    return text if len(seen) == len(moving) else f"{text} ({len(moving) - len(seen)} not observed)"


def _sequences(path: str | Path) -> dict:
    data = read_json(Path(path), "bench run metrics file")
    if not isinstance(data.get("sequences"), dict) or not data["sequences"]:
        raise InputError(path, "no scored sequences (not a metrics.json of bench run?)")
    return data["sequences"]


def table(metrics_path: str | Path) -> str:
    """Markdown table of one run's ``metrics.json``, one row per non-empty group."""
    lines = [
        "| sequences | n | " + " | ".join(KEYS) + " | alpha / true |",
        "|---" * (len(KEYS) + 3) + "|",
    ]
    for group, rows in groups(_sequences(metrics_path)).items():
        if rows:
            values = " | ".join(f"{mean(rows, k):.1f}" for k in KEYS)
            lines.append(f"| {group} | {len(rows)} | {values} | {_alpha(rows)} |")
    return "\n".join(lines)


def compare(runs: dict[str, str | Path], check: float | None = None) -> tuple[str, list[str]]:
    """Markdown table, one row per group and run (label -> metrics.json), over the sequences all
    runs share; and, with ``check``, the list of regressions against the first run: ``"group:
    label metric +x %"`` where a later run is worse by more than ``check`` (a fraction)."""
    seqs = {k: _sequences(p) for k, p in runs.items()}
    common = set.intersection(*(set(s) for s in seqs.values()))
    ref = next(iter(runs))
    lines = [
        "| sequences | run | n | " + " | ".join(COMPARE_KEYS) + " | alpha / true | s / seq |",
        "|---" * (len(COMPARE_KEYS) + 5) + "|",
    ]
    regressions = []
    for group in GROUPS:
        base = None
        for label, s in seqs.items():
            rows = groups({k: v for k, v in s.items() if k in common})[group]
            if not rows:
                continue
            values = {k: mean(rows, k) for k in COMPARE_KEYS}
            cells = []
            for k in COMPARE_KEYS:
                cell = f"{values[k]:.1f}"
                if check is not None and base is not None and k in CHECK_KEYS:
                    rise = values[k] / base[k] - 1 if base[k] > 0 else 0.0
                    if rise > check:
                        cell += " (!)"
                        regressions.append(f"{group}: {label} {k} {100 * rise:+.0f} %")
                cells.append(cell)
            secs = np.mean([r["seconds"] for r in rows])
            lines.append(f"| {group} | {label} | {len(rows)} | {' | '.join(cells)} | "
                         f"{_alpha(rows)} | {secs:.1f} |")  # fmt: skip
            if label == ref:
                base = values
    return "\n".join(lines), regressions
