"""The foot-contact scale search on real motion (the bundled example's ground truth)."""

import numpy as np
import pytest
import torch

from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.init.scale import estimate_alpha
from slahmr_opt.inputs.cameras import read_cameras


@pytest.fixture(scope="module")
def example():
    gt = np.load(EXAMPLE_DIR / "gt.npz")
    R = torch.tensor(gt["cam_R"]).double()
    t = torch.tensor(gt["cam_t"]).double()
    joints_c = torch.einsum("tij,ptkj->ptki", R, torch.tensor(gt["joints"]).double())
    joints_c = joints_c + t[None, :, None]
    vis = torch.ones(joints_c.shape[:2], dtype=torch.bool)
    return joints_c, vis, R, t, float(gt["alpha"]), read_cameras(EXAMPLE_DIR / "cameras.npz")


def test_metric_cameras_give_unit_scale(example):
    joints_c, vis, R, t, _, _ = example
    assert estimate_alpha(joints_c, vis, R, t, default=5.0) == pytest.approx(1.0, rel=0.08)


def test_slam_cameras_give_true_scale(example):
    """SLAM cameras (unknown scale 0.37, rotation drift, jitter) and true camera-frame joints."""
    joints_c, vis, _, _, alpha_true, slam = example
    alpha = estimate_alpha(joints_c, vis, slam.R_w2c.double(), slam.t_w2c.double(), default=5.0)
    assert alpha == pytest.approx(alpha_true, rel=0.1)


def test_scale_is_equivariant(example):
    """Cameras with their translation doubled need half the scale."""
    joints_c, vis, _, _, _, slam = example
    R, t = slam.R_w2c.double(), slam.t_w2c.double()
    a1 = estimate_alpha(joints_c, vis, R, t, default=5.0)
    a2 = estimate_alpha(joints_c, vis, R, 2 * t, default=5.0)
    assert a2 == pytest.approx(a1 / 2, rel=0.02)


def test_static_camera_keeps_default(example):
    joints_c, vis, R, _, _, _ = example
    still = torch.zeros(R.shape[0], 3, dtype=R.dtype)
    assert estimate_alpha(joints_c, vis, R, still, default=0.7) == 0.7
