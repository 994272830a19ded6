"""Issue 14, step 3: the camera scale as a stage-3 variable under the ``scale_prior`` term centred
on the contact estimate, on the bundled example (a real walk of the evaluation split filmed by a
hand-held camera, with its SLAM-like scene points). The contact estimate after stage 2 errs high
with the fitted bodies' size; freed in stage 3, the scale must move towards the truth and not
collapse towards zero, which is what plain smoothness does without the prior."""

import numpy as np
import pytest

from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.config import load_config
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.solve import solve

pytestmark = pytest.mark.slow

FREE_ALPHA = [
    "stages.motion.optimize=[root_orient,trans,pose_body,betas,floor,alpha]",
    "stages.motion.weights.scale_prior=1",
]


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The default fit and the same with the scale free in stage 3 (sharing stages 1-2)."""
    tmp = tmp_path_factory.mktemp("alpha")
    obs = load_observations(EXAMPLE_DIR / "tracks.npz", EXAMPLE_DIR / "cameras.npz",
                            points_path=EXAMPLE_DIR / "points.npz")  # fmt: skip
    with np.load(EXAMPLE_DIR / "gt.npz") as gt:
        truth = float(gt["alpha"])
    out = {"truth": truth}
    for name, overrides in (("fixed", []), ("free", FREE_ALPHA)):
        cfg = load_config(None, ["num_threads=1", *overrides])
        result = solve(obs, cfg, checkpoint_dir=tmp, progress=False)
        out[name] = result.cameras.alpha / truth
    return out


def test_free_scale_moves_towards_the_truth(fits):
    # Measured: 1.105 of the truth after stage 2 (kept by the default), 1.019 with alpha free.
    assert fits["fixed"] > 1.03  # the premise: the contact estimate errs high here
    assert abs(fits["free"] - 1) < 0.6 * abs(fits["fixed"] - 1)
    assert fits["free"] > 0.9  # towards the truth, not towards zero
