"""Speed of the keypoint regressor's guesses (``slahmr_opt.init.regressor.regress``): frames per
second for one person over 100-3,000 frames and four people over 300, and the network alone.

    .venv/bin/python bench/regressor_speed.py --out bench/results/regressor_speed.json

Synthetic walkers filmed by an orbiting camera (``slahmr_opt.synth.observe``); the model is loaded
once before timing; each size runs ``--repeats`` times and the fastest run counts.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.init.regressor import load_regressor, regress
from slahmr_opt.io.results import cpu_name
from slahmr_opt.synth import observe as synth


def _scene(people: int, frames: int):
    rng = np.random.default_rng(0)
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    bodies = synth.walking_bodies(people, frames, 30.0, rng)
    s = synth.SynthSettings(camera="orbit")
    return synth.observe_bodies(body, *bodies, s, rng).obs


def _fastest(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results/regressor_speed.json"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    body = load_body_model(BodyConfig())
    model = load_regressor()
    rows = []
    for people, frames in ((1, 100), (1, 300), (1, 1000), (1, 3000), (4, 300)):
        obs = _scene(people, frames)
        seconds = _fastest(lambda obs=obs: regress(obs, body), args.repeats)
        feats = torch.randn(people, frames, model.feature_mean.shape[0])
        with torch.no_grad():
            net = _fastest(lambda feats=feats: model(feats), args.repeats)
        n = people * frames
        rows.append({"people": people, "frames": frames, "seconds": round(seconds, 4),
                     "person_frames_per_second": round(n / seconds, 1),
                     "network_seconds": round(net, 4),
                     "network_person_frames_per_second": round(n / net, 1)})  # fmt: skip
        print(rows[-1])
    report = {"threads": args.threads, "cpu": cpu_name(), "python": platform.python_version(),
              "torch": torch.__version__, "rows": rows}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
