"""Stage 3 on real motion: the bundled example (a real walk of the evaluation split, filmed by a
hand-held camera, SLAM-like cameras) fitted with stages 1-2 and with the default stages 1-3."""

import pytest

from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.config import load_config
from slahmr_opt.experiments.evaluate import evaluate_result
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.io.results import write_result
from slahmr_opt.solve import solve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    """Metrics of ``stages_1_2`` and of the default; both share the stage 1-2 checkpoints."""
    tmp = tmp_path_factory.mktemp("motion_stage")
    obs = load_observations(EXAMPLE_DIR / "tracks.npz", EXAMPLE_DIR / "cameras.npz")
    out = {}
    for name in ("stages_1_2", "default"):
        cfg = load_config(name, ["num_threads=1"])
        result = solve(obs, cfg, checkpoint_dir=tmp / "checkpoints", progress=False)
        out[name] = evaluate_result(write_result(result, tmp / name), EXAMPLE_DIR / "gt.npz")
        out[name]["stages"] = [s.name for s in result.stages]
    return out


def test_motion_stage_makes_motion_smooth_and_feet_still(scores):
    before, after = scores["stages_1_2"], scores["default"]
    assert before["stages"] == ["root", "smooth"]
    assert after["stages"] == ["root", "smooth", "motion"]
    # Measured: jitter 132 -> 4.2 (10 m/s^3), foot sliding 28.6 -> 3.8 mm.
    assert after["jitter"] < 0.2 * before["jitter"]
    assert after["foot_sliding"] < 0.5 * before["foot_sliding"]


def test_motion_stage_does_not_worsen_the_world_trajectory(scores):
    before, after = scores["stages_1_2"], scores["default"]
    # Measured: W-MPJPE100 464 -> 332, WA-MPJPE100 102 -> 73, PA-MPJPE 40.9 -> 38.0 mm.
    for key in ("w_mpjpe100", "wa_mpjpe100", "pa_mpjpe"):
        assert after[key] < before[key], key
    assert after["rte"] < 1.1 * before["rte"] + 0.5
