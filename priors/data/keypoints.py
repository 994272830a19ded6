"""World keypoints of the fitted mocap, for training the keypoint regressor
(``slahmr_priors.regressor``).

    python -m slahmr_priors.data.keypoints --data /tmp/slahmr_opt_priors_data

Reads ``fits_<split>.npz`` (``python -m slahmr_priors.data.build``) and writes
``keypoints_<split>.npz``:

==============  ==============  ====================================================
key             shape           meaning
==============  ==============  ====================================================
kp_w            (N, 23, 3)      detector keypoints of the fitted body in the regressor's
                                layout (``slahmr_priors.regressor.features``), world, metres
rest_joints     (S, 24, 3)      SMPL joints of each sequence's shape at zero pose and
                                translation (for forward kinematics in the training loss)
names           (S,)            file names, as in the fits and states files
seq_start       (S + 1,)        frame offsets, as in the fits and states files
==============  ==============  ====================================================

The keypoints are what the solver's reprojection term compares with detections
(``slahmr_opt.body.keypoints``: OpenPose-25 with the detector hip convention). Like
``slahmr_priors.data.build``, this data preparation uses slahmr_opt's body model.
"""

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from slahmr_priors.regressor.features import to_layout

logger = logging.getLogger(__name__)


def fit_keypoints(fits: dict, body, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``kp_w`` (N, 23, 3) and ``rest_joints`` (S, 24, 3) of a fits cache (float64 body)."""
    starts = fits["seq_start"]
    seq = np.searchsorted(starts, np.arange(len(fits["trans"])), side="right") - 1
    f64 = lambda key, rows: torch.from_numpy(fits[key][rows]).double()  # noqa: E731
    out = []
    with torch.no_grad():
        for a in range(0, len(seq), chunk):
            rows = np.arange(a, min(a + chunk, len(seq)))
            res = body(betas=torch.from_numpy(fits["betas"][seq[rows]]).double(),
                       global_orient=f64("root_orient", rows),
                       body_pose=f64("pose_body", rows).reshape(-1, 21, 3),
                       transl=f64("trans", rows))  # fmt: skip
            out.append(to_layout(body.keypoints(res, "op25"), "op25").float().numpy())
        S = len(starts) - 1
        zeros = torch.zeros(S, 3, dtype=torch.float64)
        rest = body(betas=torch.from_numpy(fits["betas"]).double(), global_orient=zeros,
                    body_pose=torch.zeros(S, 21, 3, dtype=torch.float64), transl=zeros)  # fmt: skip
    return np.concatenate(out), rest.joints.float().numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with fits_<split>.npz")
    parser.add_argument("--splits", nargs="+", default=["train", "eval"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from slahmr_opt.body import BodyConfig, load_body_model

    body = load_body_model(BodyConfig()).double()
    for split in args.splits:
        start = time.time()
        with np.load(args.data / f"fits_{split}.npz") as data:
            fits = {k: data[k] for k in ("seq_start", "trans", "root_orient", "pose_body",
                                         "betas", "names")}  # fmt: skip
        kp_w, rest = fit_keypoints(fits, body)
        out = args.data / f"keypoints_{split}.npz"
        np.savez(out, kp_w=kp_w, rest_joints=rest, names=fits["names"],
                 seq_start=fits["seq_start"].astype(np.int64))  # fmt: skip
        logger.info("%s: %d frames -> %s (%.0f s)", split, len(kp_w), out, time.time() - start)


if __name__ == "__main__":
    main()
