"""AMASS export: each person's ``person_<id>.npz`` read back and posed with the same body model
gives the joints of ``results.npz`` (turned into AMASS's z-up world), on the tracked span; the
file records the body model; the CLI writes it from a real fit's results."""

import numpy as np
import pytest
import torch
from export_helpers import (
    FPS,
    FRAME_OFFSET,
    MASK_1,
    NUM_FRAMES,
    read_small_result,
    write_small_result,
)

from slahmr_opt.cli.main import main
from slahmr_opt.io.export.amass import Y_UP_TO_Z_UP, export_amass
from slahmr_opt.io.export.motion import OPENCV_TO_Y_UP, nearest_tracked

TOL = 1e-5  # metres


def _posed_joints(model, data) -> np.ndarray:
    """(N, 24, 3) joints of an AMASS file posed with ``model`` (as a viewer does)."""
    poses = torch.as_tensor(data["poses"], dtype=model.dtype)
    n = len(poses)
    with torch.no_grad():
        out = model(torch.as_tensor(data["betas"], dtype=model.dtype)[None].expand(n, -1),
                    poses[:, :3], poses[:, 3:66].reshape(n, 21, 3),
                    torch.as_tensor(data["trans"], dtype=model.dtype))
    return out.joints[:, :24].double().numpy()


@pytest.mark.parametrize("aligned", [True, False])
def test_amass_round_trip_gives_the_results_joints(tmp_path, synthetic_body_path, aligned):
    result, model = read_small_result(write_small_result(tmp_path, synthetic_body_path, aligned))
    paths = export_amass(result, model, tmp_path / "amass")
    assert [p.name for p in paths] == ["person_7.npz", "person_b_2.npz"]
    world = Y_UP_TO_Z_UP @ (np.eye(3) if aligned else OPENCV_TO_Y_UP)
    joints = result.joints.double().numpy() @ world.T
    spans = [np.arange(NUM_FRAMES), np.arange(2, 10)]  # person 1: tracked on 2..5 and 8..9
    for p, path in enumerate(paths):
        with np.load(path, allow_pickle=False) as data:
            assert data["poses"].shape == (len(spans[p]), 72)
            np.testing.assert_array_equal(data["poses"][:, 66:], 0.0)  # SMPL's hands
            assert float(data["mocap_framerate"]) == FPS and str(data["gender"]) == "neutral"
            np.testing.assert_array_equal(data["frames"], spans[p] + FRAME_OFFSET)
            np.testing.assert_allclose(data["betas"], result.body.betas[p].numpy(), atol=1e-7)
            source = spans[p] if p == 0 else nearest_tracked(MASK_1)[spans[p]]
            err = np.abs(_posed_joints(model, data) - joints[p, source]).max()
            assert err < TOL, err


def test_cli_amass_from_a_real_fit(tmp_path):
    """The demo's results: the file names the built-in model and its hash, z is up (the feet
    near z = 0), and a second export without ``--overwrite`` is refused."""
    fit = tmp_path / "fit"
    assert main(["demo", "--out", str(fit), "stages.motion.solver.iterations=1",
                 "stages.smooth.solver.iterations=2", "stages.root.solver.iterations=2"]) == 0
    out = tmp_path / "amass"
    args = ["export", "--results", str(fit / "results.npz"), "--format", "amass", "--out", str(out)]
    assert main(args) == 0
    (path,) = out.iterdir()
    with np.load(path, allow_pickle=False) as data:
        assert bool(data["body_model_builtin"]) and str(data["body_model_type"]) == "smpl"
        assert len(str(data["body_model_sha256"])) == 64
        lowest = data["trans"][:, 2].min()
    assert 0.5 < lowest < 1.5  # SMPL transl, z up: the pelvis offset above a floor at z = 0
    assert main(args) == 2
