"""Theseus LM vs torch L-BFGS (SLAHMR's optimizer) on the bundled example, side by side.

Both solvers minimise the same costs with the same weights; the JSON records per-stage time,
iterations, final loss and the accuracy against the example's ground truth.

    .venv/bin/python bench/solvers.py [--out bench/results/solvers.json] [--repeat 2]
"""

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.config import load_config
from slahmr_opt.experiments.evaluate import evaluate_result
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.io.results import versions as library_versions
from slahmr_opt.io.results import write_result
from slahmr_opt.solve import solve

CONFIGS = {"lm (stages_1_2)": "stages_1_2", "lbfgs (slahmr_lbfgs)": "slahmr_lbfgs"}


def run(config: str | None, obs) -> dict:
    cfg = load_config(config)
    start = time.perf_counter()
    result = solve(obs, cfg, progress=False)
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        metrics = evaluate_result(write_result(result, tmp), EXAMPLE_DIR / "gt.npz")
    frames = int(result.track_mask.shape[1])
    return {
        "seconds_total": seconds,
        "frames": frames,
        "frames_per_second": frames / seconds,
        "stages": [s.to_dict() for s in result.stages],
        "final_loss": result.stages[-1].final_loss,
        "metrics": metrics,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "solvers.json"))
    ap.add_argument("--repeat", type=int, default=2, help="runs per solver (the fastest is kept)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    obs = load_observations(EXAMPLE_DIR / "tracks.npz", EXAMPLE_DIR / "cameras.npz")
    report = {"versions": library_versions(), "threads": torch.get_num_threads(), "runs": {}}
    for name, config in CONFIGS.items():
        runs = [run(config, obs) for _ in range(args.repeat)]
        report["runs"][name] = min(runs, key=lambda r: r["seconds_total"])
    lm, lb = (report["runs"][k]["seconds_total"] for k in CONFIGS)
    report["time_ratio_lm_over_lbfgs"] = lm / lb
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for name, r in report["runs"].items():
        m = r["metrics"]
        stages = ", ".join(
            f"{s['name']} {s['seconds']:.1f} s/{s['iterations']} it" for s in r["stages"]
        )
        logging.warning(
            "%-22s %5.1f s (%4.1f frames/s) [%s] loss %.1f | W %.0f WA %.0f PA %.1f mm",
            name,
            r["seconds_total"],
            r["frames_per_second"],
            stages,
            r["final_loss"],
            m["w_mpjpe100"],
            m["wa_mpjpe100"],
            m["pa_mpjpe"],
        )
    logging.warning(
        "LM / L-BFGS time ratio: %.2f; written %s", report["time_ratio_lm_over_lbfgs"], out
    )


if __name__ == "__main__":
    main()
