"""Initial metric scale ``alpha`` of a SLAM camera trajectory from foot contacts.

Stages 1-2 barely constrain ``alpha``: 2D reprojection is blind to it and smoothness terms prefer
a person who moves with the camera. People, however, walk on planted feet. With camera-frame foot
positions ``f_c`` (from the initial per-frame bodies, whose depth comes from body size), the world
feet are ``f_w(alpha) = R_w2c^T (f_c - alpha t_w2c)``; in every frame at least one foot is nearly
still. A 1D search picks the ``alpha`` under which the stillest foot point (ankle or toe)
moves least over the sequence.
"""

import logging

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import Tensor

from slahmr_opt.geometry.camera import invert_pose

logger = logging.getLogger(__name__)

#: SMPL foot joints (left ankle, left toe base, right ankle, right toe base): the heel is planted
#: early in a stance and the toes late, so each is tested on its own.
FEET = (7, 10, 8, 11)
#: Per-frame foot displacement (metres) above which a frame counts as an outlier.
MAX_STEP = 0.15
#: Temporal smoothing of the camera-frame pelvis (frames).
PELVIS_SIGMA = 2.0
#: Temporal smoothing of the feet relative to the pelvis (frames); a stance lasts 5-15 frames.
FEET_SIGMA = 1.0


def _smooth(x: Tensor, sigma: float) -> Tensor:
    """Gaussian smoothing along the frame axis (dim 1)."""
    return torch.from_numpy(gaussian_filter1d(x.numpy(), sigma, axis=1, mode="nearest"))


def stance_cost(alpha: float, feet_c: Tensor, R_w2c: Tensor, t_w2c: Tensor, pairs: Tensor) -> float:
    """Mean over frame pairs of the stillest foot point's displacement (clipped), metres.

    Args:
        feet_c: (P, T, F, 3) camera-frame positions of the foot points.
        R_w2c, t_w2c: (T, 3, 3), (T, 3) cameras (SLAM units).
        pairs: (P, T - 1) bool, consecutive frames both observed.
    """
    feet_w = torch.einsum("tji,ptfj->ptfi", R_w2c, feet_c - alpha * t_w2c[None, :, None])
    step = (feet_w[:, 1:] - feet_w[:, :-1]).norm(dim=-1).min(-1).values  # the stillest point
    return float(step.clamp(max=MAX_STEP)[pairs].mean())


def estimate_alpha(
    joints_c: Tensor, vis_mask: Tensor, R_w2c: Tensor, t_w2c: Tensor, default: float
) -> float:
    """Scale of ``t_w2c`` that keeps planted feet still; ``default`` if the data cannot tell.

    Args:
        joints_c: (P, T, 24, 3) camera-frame SMPL joints of the initial bodies, metres.
        vis_mask: (P, T) frames where each person was detected.
        R_w2c, t_w2c: (T, 3, 3), (T, 3) SLAM cameras.
        default: returned when the camera barely translates or too few frames are observed.
    """
    # Per-frame depth errors move the whole body along the viewing ray and per-frame pose errors
    # jitter the feet; both dwarf the motion we look for. The pelvis is smoothed more than the
    # feet relative to it, whose stance phases are short.
    pelvis = joints_c[..., :1, :].double()
    feet = joints_c[..., FEET, :].double()
    feet_c = _smooth(pelvis, PELVIS_SIGMA) + _smooth(feet - pelvis, FEET_SIGMA)
    pairs = vis_mask[:, 1:] & vis_mask[:, :-1]
    travel = float((t_w2c[1:] - t_w2c[:-1]).norm(dim=-1).sum())
    if int(pairs.sum()) < 10 or travel < 1e-6:
        return default
    # alpha * travel should be between 1 cm and 1 km of camera path.
    grid = np.exp(np.linspace(np.log(0.01 / travel), np.log(1000.0 / travel), 400))
    R, t = R_w2c.double(), t_w2c.double()
    costs = np.array([stance_cost(a, feet_c, R, t, pairs) for a in grid])
    best = int(np.argmin(costs))
    lo, hi = max(best - 1, 0), min(best + 1, len(grid) - 1)
    fine = np.exp(np.linspace(np.log(grid[lo]), np.log(grid[hi]), 41))
    alpha = float(fine[np.argmin([stance_cost(a, feet_c, R, t, pairs) for a in fine])])
    logger.info(
        "initial camera scale from foot contacts: alpha = %.4g (stance cost %.3g m)",
        alpha,
        costs[best],
    )
    return alpha


#: A camera whose path spans less than this fraction of the scene depth (median distance from the
#: cameras to the scene points) does not show the scale: a pan or a tripod's creep, whose SLAM
#: translation is noise.
MIN_BASELINE = 0.02


def scale_observable(t_w2c: Tensor, R_w2c: Tensor, points: Tensor | None) -> tuple[bool, str]:
    """Whether the camera translates enough for a metric scale to mean anything.

    Args:
        t_w2c, R_w2c: (T, 3), (T, 3, 3) SLAM cameras.
        points: (N, 3) scene points in the same world and units, or None (then only a camera
            that does not move at all counts as unobservable).

    Returns:
        The decision and a sentence for the log.
    """
    centres = invert_pose(R_w2c.double(), t_w2c.double())[1]
    span = float((centres - centres.mean(0)).norm(dim=-1).max()) * 2
    if span <= 1e-9:
        return False, "the camera does not translate"
    if points is None or len(points) < 3:
        return True, f"the camera path spans {span:.3g} SLAM units (no scene points to compare)"
    depth = float(torch.cdist(centres[:: max(1, len(centres) // 20)], points.double()).median())
    ratio = span / max(depth, 1e-12)
    if ratio < MIN_BASELINE:
        return False, (
            f"the camera path spans {100 * ratio:.2g} % of the scene depth (a pan or a "
            f"camera on a tripod; {100 * MIN_BASELINE:.0f} % needed)"
        )
    return True, f"the camera path spans {100 * ratio:.2g} % of the scene depth"
