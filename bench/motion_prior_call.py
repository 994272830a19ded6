"""Time of one motion-prior Jacobian call at the size the LM solver makes it, per prior file.

``block_lm._add_term`` linearizes the ``motion_prior`` term ``CHUNK_ENTRIES`` Jacobian entries at
a time: 75 frame triples with the shape and global columns of stage 3. This times exactly that
call (``block_lm.term_jacobians`` on one chunk of a 300-frame track) for each weights file,
interleaved (file A, file B, A, B, ...) so that machine noise falls on all of them alike; the
median of ``--repeat`` calls after ``--skip`` discarded ones is reported. Use it to price a prior
of another width before retraining the solver's benchmarks on it.

    .venv/bin/python bench/motion_prior_call.py PRIOR.pt [PRIOR.pt ...] [--out FILE]
                                                [--threads 2] [--repeat 25] [--overwrite]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.costs.motion_prior import build_motion_prior_term, load_motion_prior
from slahmr_opt.errors import InputError, OutputError
from slahmr_opt.files.outputs import check_output_file
from slahmr_opt.io.results import versions
from slahmr_opt.stages.block_lm import CHUNK_ENTRIES, term_jacobians

FRAMES = 300
#: Columns of one stage-3 frame triple: 3 frames x (3 + 3 + 63), 10 betas, scale and floor.
COLUMNS = 3 * 69 + 10 + 4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("priors", nargs="+", type=Path, help="motion_cvae.pt files")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results"
                    / "motion_prior_call.json")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=25)
    ap.add_argument("--skip", type=int, default=3, help="first calls per file not counted")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = ap.parse_args()
    if args.repeat <= args.skip:
        ap.error("--repeat must exceed --skip")
    try:
        check_output_file(args.out, args.overwrite, (".json",))
        priors = {path: load_motion_prior(str(path)) for path in args.priors}
    except (InputError, OutputError) as exc:
        print(f"motion_prior_call.py: {exc}", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(args.threads)
    body = load_body_model(BodyConfig(), dtype=torch.float32)
    mask = torch.ones(1, FRAMES, dtype=torch.bool)
    terms = {}
    for path in args.priors:
        terms[path] = build_motion_prior_term(mask, body, priors[path], torch.eye(4), 30.0,
                                              torch.float32)  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    params = {
        "root_orient": 0.1 * torch.randn(1, FRAMES, 3, generator=gen),
        "trans": 0.1 * torch.randn(1, FRAMES, 3, generator=gen),
        "pose_body": 0.1 * torch.randn(1, FRAMES, 63, generator=gen),
        "betas": torch.zeros(1, 10),
    }
    windows = max(1, CHUNK_ENTRIES // (next(iter(terms.values())).dim * COLUMNS))
    wrt = [f"{v}{k}" for k in range(3) for v in ("root_orient", "trans", "pose_body")]
    kw = next(iter(terms.values())).gather(params, torch.arange(windows))
    times = {path: [] for path in terms}
    for _ in range(args.repeat):
        for path, term in terms.items():
            start = time.perf_counter()
            term_jacobians(term, [*wrt, "betas"], kw)
            times[path].append(time.perf_counter() - start)
    report = {
        "versions": versions(), "threads": args.threads, "windows": windows,
        "priors": [{"file": str(p), "hidden": priors[p].config["hidden"],
                    "parameters": sum(x.numel() for x in priors[p].parameters()),
                    "median_seconds": statistics.median(t[args.skip :]), "seconds_all": t}
                   for p, t in times.items()],
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for row in report["priors"]:
        print(f"{row['file']}: hidden {row['hidden']}, {row['median_seconds'] * 1000:.0f} ms "
              f"per {windows}-window call")  # fmt: skip


if __name__ == "__main__":
    main()
