"""The shared floor plane: a robust estimate from the feet of fitted bodies, its solver
parameterisation, and the gravity-aligned output frame it defines.

Plane: ``n . x = d`` with ``n`` the unit normal pointing up (towards the bodies), so the signed
height of a world point is ``n . x - d``.

Solver parameterisation (``floor`` (1, 3) = ``(a, b, c)``): the plane in a fixed reference frame
F, ``y = R_F (x - o_F)``, chosen when the floor is first estimated (``floor_ref`` (4, 4), the
world-to-F rigid transform: F's y axis is the estimated normal, its origin on the estimated
plane). In F the floor is the height field ``y1 = a y0 + b y2 + c``, so ``(0, 0, 0)`` is the
estimate, ``a`` and ``b`` are slopes and ``c`` a height in metres: all three have comparable units,
nothing is singular for tilts well below 90 degrees, and unlike SLAHMR's ``normal * offset``
vector nothing degenerates when the floor passes through the world origin (the first camera).
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from slahmr_opt.errors import SlahmrOptError
from slahmr_opt.init.scale import FEET_SIGMA, PELVIS_SIGMA, _smooth
from slahmr_priors.contacts import contact_labels

logger = logging.getLogger(__name__)

#: Weight of the body-up prior on the normal, m^2: a tilt of angle t costs ``UP_PRIOR sin^2 t``,
#: as much as a 5 cm spread of foot points. Feet of a person walking a straight line lie on a
#: line, which leaves the roll about that line to the prior.
UP_PRIOR = 0.05**2
#: Tukey biweight constant (in robust standard deviations) of the plane fit.
TUKEY_C = 4.685
#: Lower bound of the robust residual scale, metres (noise-free feet would give zero).
MIN_SCALE = 0.01
#: Speed (m/s) at which a foot point's weight in the fit halves (stance feet are still).
STILL_SPEED = 0.5
#: Smallest number of person-frames a floor is fitted to.
MIN_POINTS = 10


class FloorError(SlahmrOptError):
    """Too few foot points to estimate a floor."""


@dataclass
class FloorPlane:
    """A plane ``normal . x = offset`` (world frame, metres).

    Attributes:
        normal: (3,) unit normal, pointing up.
        offset: distance of the plane from the world origin along ``normal``.
        inliers: fraction of the fitted points with a non-zero robust weight (1 if not fitted).
    """

    normal: Tensor
    offset: float
    inliers: float = 1.0

    def height(self, x: Tensor) -> Tensor:
        """(...,) signed height of points (..., 3) above the plane."""
        return x @ self.normal.to(x) - self.offset


def _weighted_plane(x: np.ndarray, w: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, float]:
    """Normal and offset minimising ``sum w (n.(x - c))^2 / sum w + UP_PRIOR (1 - (n.up)^2)``."""
    c = (w[:, None] * x).sum(0) / w.sum()
    d = x - c
    cov = (w[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0) / w.sum()
    cov = cov + UP_PRIOR * (np.eye(3) - np.outer(up, up))
    n = np.linalg.eigh(cov)[1][:, 0]
    n = n if n @ up > 0 else -n
    return n, float(n @ c)


def estimate_floor(
    feet: Tensor, body_up: Tensor, mask: Tensor, fps: float, iterations: int = 10
) -> FloorPlane:
    """Robust plane through the lowest, stillest foot points of every person-frame.

    Per person-frame, the foot point lowest along the mean body axis is taken (in a stance a foot
    rests on the floor; people share one floor, for a static or a moving camera alike). A plane
    is fitted by iteratively reweighted least squares: Tukey weights on the residuals times a
    stillness weight, with a weak prior that the normal is the mean body axis (see
    ``UP_PRIOR``).

    Args:
        feet: (P, T, F, 3) world foot points (heels, toes), metres.
        body_up: (P, T, 3) per-frame body axis (e.g. pelvis minus the mean foot point).
        mask: (P, T) bool, person-frames to use.
        fps: frame rate (stillness is a speed).
        iterations: reweighting rounds.

    Returns:
        The plane, normal pointing the way the bodies stand.

    Raises:
        FloorError: fewer than ``MIN_POINTS`` person-frames.
    """
    feet, body_up, mask = feet.double(), body_up.double(), mask.bool()
    if int(mask.sum()) < MIN_POINTS:
        raise FloorError(f"{int(mask.sum())} person-frames; a floor needs {MIN_POINTS}")
    axes = torch.nn.functional.normalize(body_up[mask], dim=-1)
    up = torch.nn.functional.normalize(axes.mean(0), dim=0).numpy()
    low = (feet @ torch.from_numpy(up)).argmin(-1)  # (P, T) lowest foot point per frame
    lowest = torch.gather(feet, 2, low[..., None, None].expand(*low.shape, 1, 3))[:, :, 0]
    # Speed of each foot point (one-sided at track ends and gaps), of the one chosen per frame.
    step = (feet[:, 1:] - feet[:, :-1]).norm(dim=-1) * fps
    pair = (mask[:, 1:] & mask[:, :-1])[..., None]
    inf = torch.full_like(step, float("inf"))
    fwd = torch.cat([torch.where(pair, step, inf), inf[:, :1]], 1)
    bwd = torch.cat([inf[:, :1], torch.where(pair, step, inf)], 1)
    speed = torch.minimum(fwd, bwd)
    speed = torch.where(torch.isinf(speed), torch.zeros_like(speed), speed)
    speed = torch.gather(speed, 2, low[..., None])[..., 0]
    x = lowest[mask].numpy()
    still = 1.0 / (1.0 + (speed[mask].numpy() / STILL_SPEED) ** 2)
    w = still.copy()
    n, d = _weighted_plane(x, w, up)
    for _ in range(iterations):
        r = x @ n - d
        scale = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), MIN_SCALE)
        u = r / (TUKEY_C * scale)
        w = still * np.clip(1.0 - u**2, 0.0, None) ** 2
        if w.sum() <= 0:
            break
        n, d = _weighted_plane(x, w, up)
    inliers = float((w > 0).mean())
    logger.info(
        "floor: normal %s (%.1f deg from the body axis), offset %.3f m, %d points, %.0f%% inliers",
        np.round(n, 3),
        np.degrees(np.arccos(np.clip(n @ up, -1, 1))),
        d,
        len(x),
        100 * inliers,
    )
    return FloorPlane(torch.from_numpy(n), d, inliers)


def up_rotation(normal: Tensor, forward: Tensor | None = None) -> Tensor:
    """(3, 3) rotation R with ``R normal = +y``; with ``forward``, its component along the plane
    maps to +z (else any such rotation, the smallest one from the identity)."""
    n = torch.nn.functional.normalize(normal.double(), dim=0)
    if forward is None:
        # Smallest rotation: x axis is world x made orthogonal to n (or world z if x ~ n).
        ref = torch.tensor([0.0, 0.0, 1.0], dtype=n.dtype)
        ref = ref if abs(float(n[2])) < 0.9 else torch.tensor([1.0, 0.0, 0.0], dtype=n.dtype)
        z = ref - (ref @ n) * n
    else:
        z = forward.double() - (forward.double() @ n) * n
        if float(z.norm()) < 1e-6:  # looking straight down or up
            z = torch.tensor([0.0, 0.0, 1.0], dtype=n.dtype) - n[2] * n
    z = torch.nn.functional.normalize(z, dim=0)
    x = torch.linalg.cross(n, z)
    return torch.stack([x, n, z])


def floor_reference(plane: FloorPlane) -> Tensor:
    """(4, 4) world-to-F transform of the solver parameterisation: F's y axis is the plane's
    normal and its origin the point of the plane nearest to the world origin."""
    R = up_rotation(plane.normal)
    origin = plane.offset * plane.normal.double()
    ref = torch.eye(4, dtype=torch.float64)
    ref[:3, :3] = R
    ref[:3, 3] = -R @ origin
    return ref


def plane_from_params(floor: Tensor, ref: Tensor) -> FloorPlane:
    """The world plane of solver parameters ``floor`` (1, 3) in reference ``ref`` (4, 4)."""
    a, b, c = floor.double().reshape(3).tolist()
    R, t = ref.double()[:3, :3], ref.double()[:3, 3]
    g = torch.tensor([-a, 1.0, -b], dtype=torch.float64)
    s = float(g.norm())
    n = R.T @ g / s
    # y = R x + t lies on the plane where g . y = c.
    return FloorPlane(n, (c - float(g @ t)) / s)


def gravity_transform(plane: FloorPlane, forward: Tensor, origin: Tensor) -> Tensor:
    """(4, 4) rigid transform of world points into the gravity-aligned frame: y up along the
    floor normal, the floor at y = 0, ``forward`` (e.g. the first camera's viewing direction)
    along +z in the floor, and ``origin``'s projection onto the floor at x = z = 0."""
    R = up_rotation(plane.normal, forward)
    o = origin.double() - plane.height(origin.double()) * plane.normal.double()
    G = torch.eye(4, dtype=torch.float64)
    G[:3, :3] = R
    G[:3, 3] = -R @ o
    return G


def heuristic_contacts(
    joints: Tensor, mask: Tensor, plane: FloorPlane, fps: float, speed_tolerance: float
) -> Tensor:
    """Contact probabilities of SMPL joints 7, 8, 10, 11 from body motion above the floor.

    The rule of the motion-prior training data (``slahmr_priors.contacts.contact_labels``: a joint
    is in contact when its height above the floor and its speed are below thresholds), applied
    to the bodies in the floor's frame after temporal smoothing (pelvis and the joints relative
    to it, as ``init.scale``). Fitted bodies jitter far more than motion capture, so the speed
    threshold is multiplied by ``speed_tolerance``.

    Args:
        joints: (P, T, 24, 3) world joints, metres.
        mask: (P, T) frames where each person exists (contiguous per person).
        plane: the floor.
        fps: frame rate.
        speed_tolerance: factor on the contact speed threshold.

    Returns:
        (P, T, 4) probabilities in {0, 1} (0 outside ``mask``).
    """
    R = up_rotation(plane.normal).to(joints.dtype)
    y = joints.double() @ R.double().T
    y[..., 1] -= plane.offset
    pelvis = y[..., :1, :]
    y = _smooth(pelvis, PELVIS_SIGMA) + _smooth(y - pelvis, FEET_SIGMA)
    out = torch.zeros(*mask.shape, 4, dtype=joints.dtype)
    for p in range(mask.shape[0]):
        frames = torch.nonzero(mask[p])[:, 0]
        if len(frames) < 2:
            continue
        seg = y[p, frames[0] : frames[-1] + 1].numpy()
        vel = np.gradient(seg, 1.0 / fps, axis=0) / speed_tolerance
        labels = contact_labels(seg, vel)[:, :4]  # CONTACT_JOINTS start with 7, 8, 10, 11
        out[p, frames[0] : frames[-1] + 1] = torch.from_numpy(labels).to(out)
    return out * mask[..., None]
