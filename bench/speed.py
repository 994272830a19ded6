"""Speed of stages 1-2 (or 1-3) against sequence length and people, and LM against L-BFGS.

For every (frames, people) size a synthetic scene of walking bodies (hand-made gait, orbiting
camera, detector noise) is fitted once with ``stages_1_2`` (Theseus LM, the default stages 1-2) and
once with ``slahmr_lbfgs`` (torch L-BFGS, SLAHMR's optimizer), each in a fresh process so that
peak memory is its own. ``--stages 3`` fits the default stages 1-3 instead, against the same
stages with every solver switched to L-BFGS (SLAHMR's 30 / 60 / 60 steps). Reported per run:
seconds per stage, frames per second, final loss, peak RSS; per size: the time each solver needs
to reach the other's final loss (from the per-iteration history).

``--converged`` compares the solvers as optimizers: the same fixed costs (the motion stage's
evidence guard and window cap off, so no weight changes between rounds), the same start, every
stage run to a relative decrease of 1e-5 (LM: per accepted step; L-BFGS: per outer step of 20
inner ones) within 100 iterations, for both solvers.

The same code varies by up to ~20 % between back-to-back runs on the shared 2-core machine:
``--repeat N`` reports the run of median time (lower median for even N) and keeps every time;
``--warmup`` discards one short run first.

    .venv/bin/python bench/speed.py [--frames 100 300 1000 3000] [--people 1 3] [--out FILE]
                                    [--threads N] [--stages 2|3] [--converged]
                                    [--repeat N] [--warmup] [--set KEY=VALUE ...] [--overwrite]
    .venv/bin/python bench/speed.py --table bench/results/speed_*.json
"""

import argparse
import json
import logging
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.config import load_config
from slahmr_opt.costs.motion_prior import load_motion_prior
from slahmr_opt.errors import ConfigError, InputError, OutputError
from slahmr_opt.files.checks import load_json
from slahmr_opt.files.outputs import check_output_file
from slahmr_opt.io.results import versions
from slahmr_opt.solve import solve
from slahmr_opt.synth import observe as synth

#: Per number of stages, the config and overrides of each solver (the same stages, terms and
#: weights).
SOLVERS = {
    2: {"lm": ("stages_1_2", []), "lbfgs": ("slahmr_lbfgs", [])},
    3: {
        "lm": ("default", []),
        "lbfgs": (
            "default",
            [
                f"stages.{name}.solver.{key}={value}"
                for name, steps in (("root", 30), ("smooth", 60), ("motion", 60))
                for key, value in (("kind", "lbfgs"), ("iterations", steps))
            ],
        ),  # fmt: skip
    },
}


#: ``--converged``: fixed costs, a tight tolerance and room to reach it, for every solver.
CONVERGED = [
    "stages.motion.evidence_margin=0",
    "stages.motion.prior_window_cap=0",
    *(f"stages.{name}.solver.{key}={value}" for name in ("root", "smooth", "motion")
      for key, value in (("min_rel_decrease", 1e-5), ("iterations", 100))),
]  # fmt: skip


def walking_scene(num_people: int, num_frames: int, seed: int = 0) -> synth.SynthScene:
    """``synth.walking_bodies`` seen by an orbiting hand-held camera."""
    rng = np.random.default_rng(seed)
    bodies = synth.walking_bodies(num_people, num_frames, 30.0, rng)
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    return synth.observe_bodies(body, *bodies, synth.SynthSettings(camera="orbit"), rng)


def _run(args: tuple) -> dict:
    num_people, num_frames, (config, overrides), threads = args
    scene = walking_scene(num_people, num_frames)
    cfg = load_config(config, [*overrides, f"num_threads={threads}"])
    start = time.perf_counter()
    result = solve(scene.obs, cfg, progress=False)
    seconds = time.perf_counter() - start
    curve = [(r.stage, r.wall_time, r.total) for r in result.history.records]
    return {
        "seconds": seconds,
        "frames_per_second": num_frames / seconds,
        "stages": {
            s.name: {"seconds": s.seconds, "iterations": s.iterations, "status": str(s.status)}
            for s in result.stages
        },
        "final_loss": result.stages[-1].final_loss,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "curve": curve,
    }


def time_to_reach(curve: list, target: float, stages: list[str]) -> float | None:
    """Seconds (all stages) until the last stage's loss first falls to ``target``."""
    elapsed = 0.0
    for stage in stages:
        points = [(w, v) for s, w, v in curve if s == stage]
        if stage == stages[-1]:
            for wall, value in points:
                if value <= target:
                    return elapsed + wall
            return None
        elapsed += points[-1][0]
    return None


def markdown_table(paths: list[str]) -> str:
    """README table of speed JSON files. The common loss is the higher of the two final losses;
    the solver that ended there is charged its whole run (an upper bound), the other the time
    its history first came within 0.1% of it."""
    head = ("| people | frames | LM root | LM smooth | LM motion | LM total | LM frames/s "
            "| LM peak RSS | L-BFGS total | L-BFGS frames/s | L-BFGS peak RSS | LM to common loss "
            "| L-BFGS to common loss | ratio |")  # fmt: skip
    lines = [head, "|---" * 14 + "|"]
    for path in paths:
        report = load_json(Path(path), "speed result")
        if not isinstance(report, dict) or not isinstance(report.get("runs"), list):
            raise InputError(path, "speed result has no 'runs' list (not bench/speed.py's JSON)")
        for r in report["runs"]:
            if not isinstance(r, dict) or not isinstance(r.get("lm"), dict):
                raise InputError(path, "a run without its 'lm' result (not bench/speed.py's JSON)")
            lm, lb = r["lm"], r.get("lbfgs")
            if lb is None:
                t_lm = t_lb = None
            elif lm["final_loss"] <= lb["final_loss"]:
                t_lm, t_lb = r["lm_seconds_to_lbfgs_loss"], lb["seconds"]
            else:
                t_lm, t_lb = lm["seconds"], r["lbfgs_seconds_to_lm_loss"]
            ratio = f"{t_lm / t_lb:.2f}" if t_lm and t_lb else "-"
            stages = [lm["stages"].get(name) for name in ("root", "smooth", "motion")]
            cells = [
                r["people"], r["frames"],
                *(f"{s['seconds']:.1f} s / {s['iterations']} it" if s else "-" for s in stages),
                f"{lm['seconds']:.1f} s", f"{lm['frames_per_second']:.1f}",
                f"{lm['peak_rss_mb'] / 1024:.1f} GB",
                *((f"{lb['seconds']:.1f} s", f"{lb['frames_per_second']:.1f}",
                   f"{lb['peak_rss_mb'] / 1024:.1f} GB") if lb else ("-", "-", "-")),
                *(f"{t:.1f} s" if t else ("never" if "lbfgs" in r else "-") for t in (t_lm, t_lb)),
                ratio,
            ]  # fmt: skip
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 300, 1000, 3000])
    ap.add_argument("--people", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.json"))
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads per run (0: torch's default)"
    )
    ap.add_argument("--stages", type=int, choices=sorted(SOLVERS), default=2)
    ap.add_argument("--solvers", nargs="+", choices=["lm", "lbfgs"], default=["lm", "lbfgs"],
                    help="lm alone skips the comparison (long sequences)")  # fmt: skip
    ap.add_argument("--converged", action="store_true",
                    help="fixed costs, every stage to a relative decrease of 1e-5 (module doc)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="fresh-process runs per size and solver: the run of median time is "
                         "reported, every time is kept (seconds_all)")
    ap.add_argument("--warmup", action="store_true",
                    help="one discarded 1 x 100-frame run first: the first run after an install "
                         "reads cold files (18 s against 8 s seen)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config overrides for every solver (e.g. costs.motion_prior_path=FILE, "
                         "to time another prior)")
    ap.add_argument("--table", nargs="+", metavar="JSON", help="print the README table and exit")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = ap.parse_args()
    if "lm" not in args.solvers:
        ap.error("--solvers must include lm (every row is reported against LM)")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if min(args.frames) < 3 or min(args.people) < 1:
        ap.error("--frames must be >= 3 and --people >= 1")
    solvers = {k: v for k, v in SOLVERS[args.stages].items() if k in args.solvers}
    if args.table:
        try:
            print(markdown_table(args.table))
        except InputError as exc:
            print(f"speed.py: {exc}", file=sys.stderr)
            sys.exit(2)
        return
    extra = [*(CONVERGED if args.converged else []), *args.set]
    solvers = {k: (c, [*o, *extra]) for k, (c, o) in solvers.items()}
    try:  # bad overrides, prior files and outputs end here, before any run
        for config, overrides in solvers.values():
            load_motion_prior(load_config(config, overrides).costs.motion_prior_path)
        check_output_file(args.out, args.overwrite, (".json",))
    except (ConfigError, InputError, OutputError) as exc:
        print(f"speed.py: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.WARNING)
    report = {"versions": versions(), "threads": args.threads, "stages": args.stages,
              "converged": args.converged, "set": args.set, "runs": []}  # fmt: skip
    ctx = mp.get_context("spawn")

    def fresh_run(people: int, frames: int, config: tuple) -> dict:
        with ctx.Pool(1) as pool:
            return pool.map(_run, [(people, frames, config, args.threads)])[0]

    if args.warmup:
        fresh_run(1, 100, solvers["lm"])
    for people in args.people:
        for frames in args.frames:
            row = {"people": people, "frames": frames}
            for name, config in solvers.items():
                runs = sorted((fresh_run(people, frames, config) for _ in range(args.repeat)),
                              key=lambda r: r["seconds"])  # fmt: skip
                row[name] = runs[(len(runs) - 1) // 2]
                row[name]["seconds_all"] = [r["seconds"] for r in runs]
            stages = list(row["lm"]["stages"])
            slack = 1.001  # "the same loss": within 0.1%
            for a, b in (("lm", "lbfgs"), ("lbfgs", "lm")):
                if a in row and b in row:
                    target = slack * row[b]["final_loss"]
                    row[f"{a}_seconds_to_{b}_loss"] = time_to_reach(row[a]["curve"], target, stages)
            for name in solvers:
                row[name].pop("curve")
            report["runs"].append(row)
            logging.warning(
                "P=%d T=%5d  %s  LM to L-BFGS loss %s s, L-BFGS to LM loss %s s",
                people,
                frames,
                "  ".join(
                    f"{k} {row[k]['seconds']:.1f} s ({row[k]['frames_per_second']:.1f} fps, "
                    f"{row[k]['peak_rss_mb']:.0f} MB)"
                    for k in solvers
                ),  # fmt: skip
                row.get("lm_seconds_to_lbfgs_loss"),
                row.get("lbfgs_seconds_to_lm_loss"),
            )
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
