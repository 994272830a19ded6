"""Training views of the mocap: random cameras film windows of motion, a detector-like corruption
turns them into keypoint tracks (torch only, batched).

The distribution is deliberately wider than the benchmark generator's (``slahmr_opt.synth.observe``,
which scores the regressor): people off the image centre and leaving it, portrait and landscape
images, focal lengths from wide to tele and known only roughly, cameras from knee height to a
first floor, 2 to 12 m away, static, panning, tracking, orbiting and hand-held; keypoint noise,
outliers, drop-outs, left/right swaps, occlusions, no face keypoints, no feet keypoints.
Augmentations of the motion itself: left/right mirroring and playing it backwards.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from slahmr_priors.augment import (
    MIRROR,
    SMPL_PAIRS,
    mirror_contacts,
    mirror_joints,
    mirror_pose,
    mirror_rotation,
    swap_pairs,
)
from slahmr_priors.motion_cvae.model import CONTACT_JOINTS
from slahmr_priors.motion_cvae.state import axis_angle_to_matrix
from slahmr_priors.regressor.features import (
    FACE,
    FEET,
    MIRROR_PAIRS,
    camera_angular_velocity,
    make_features,
)

#: Keypoint groups a part occlusion hides (regressor layout).
PARTS = ((11, 12, 13, 14, 15, 16, *FEET), (13, 14, 15, 16, *FEET), (7, 8, 9, 10), (5, 7, 9, 11),
         (6, 8, 10, 12), FACE)  # fmt: skip
IMAGE_SIZES = ((720, 1280), (1080, 1920), (540, 960), (480, 640), (1280, 720), (1920, 1080))


@dataclass
class Window:
    """B windows of L frames of mocap in the y-up world (floor y = 0) and what to predict.

    Attributes:
        kp_w: (B, L, 23, 3) keypoints; root: (B, L, 3, 3) root orientation, body to world;
        pose: (B, L, 21, 3) axis-angle; pelvis: (B, L, 3); vel_h: (B, L, 3) pelvis velocity in
        the heading frame, m/s; contact: (B, L, 4); betas: (B, 10); rest: (B, 24, 3) rest
        joints of the shape; local: (B, L, 22, 3) joints relative to the pelvis in the body frame.
    """

    kp_w: Tensor
    root: Tensor
    pose: Tensor
    pelvis: Tensor
    vel_h: Tensor
    contact: Tensor
    betas: Tensor
    rest: Tensor
    local: Tensor


def mirror(w: Window, which: Tensor) -> Window:
    """Mirror the windows selected by ``which`` (B,) bool left-right (x -> -x)."""
    if not bool(which.any()):
        return w
    def pick(new, old):
        shape = (-1,) + (1,) * (old.dim() - 1)
        return torch.where(which.view(shape), new, old)

    local = mirror_joints(w.local)
    rest = swap_pairs(w.rest * MIRROR, SMPL_PAIRS, -2)  # the 24 rest joints' hands stay put
    return Window(
        kp_w=pick(swap_pairs(w.kp_w * MIRROR, MIRROR_PAIRS, -2), w.kp_w),
        root=pick(mirror_rotation(w.root), w.root),
        pose=pick(mirror_pose(w.pose), w.pose),
        pelvis=pick(w.pelvis * MIRROR, w.pelvis),
        vel_h=pick(w.vel_h * MIRROR, w.vel_h),
        contact=pick(mirror_contacts(w.contact, CONTACT_JOINTS[:4]), w.contact),
        betas=w.betas,
        rest=pick(rest, w.rest),
        local=pick(local, w.local),
    )


def reverse(w: Window, which: Tensor) -> Window:
    """Play the windows selected by ``which`` (B,) backwards (velocities change sign)."""
    if not bool(which.any()):
        return w

    def pick(x, sign=1.0):
        shape = (-1,) + (1,) * (x.dim() - 1)
        return torch.where(which.view(shape), sign * x.flip(1), x)

    return Window(pick(w.kp_w), pick(w.root), pick(w.pose), pick(w.pelvis), pick(w.vel_h, -1.0),
                  pick(w.contact), w.betas, w.rest, pick(w.local))  # fmt: skip


def _look_at(eye: Tensor, target: Tensor, roll: Tensor) -> Tensor:
    """(B, L, 3, 3) world-to-camera rotations (OpenCV axes) at ``eye`` facing ``target``."""
    fwd = torch.nn.functional.normalize(target - eye, dim=-1)
    up = fwd.new_tensor([0.0, 1.0, 0.0]).expand_as(fwd)
    right = torch.nn.functional.normalize(torch.cross(fwd, up, dim=-1), dim=-1)
    down = torch.cross(fwd, right, dim=-1)
    R = torch.stack([right, down, fwd], -2)
    c, s = torch.cos(roll), torch.sin(roll)
    z, o = torch.zeros_like(c), torch.ones_like(c)
    Rz = torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*roll.shape, 3, 3)
    return Rz[:, None] @ R


def _smooth(x: Tensor, sigma: float) -> Tensor:
    """Gaussian smoothing of (B, L, D) along time, edges replicated."""
    radius = int(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1) / sigma) ** 2)
    k = (k / k.sum()).to(x)
    B, L, D = x.shape
    y = x.permute(0, 2, 1).reshape(B * D, 1, L)
    y = torch.nn.functional.pad(y, (radius, radius), mode="replicate")
    return torch.nn.functional.conv1d(y, k.view(1, 1, -1)).reshape(B, D, L).permute(0, 2, 1)


def _uniform(gen, n, lo, hi) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def sample_cameras(pelvis: Tensor, gen: torch.Generator):
    """Random camera paths around ``pelvis`` (B, L, 3).

    Returns:
        ``R`` (B, L, 3, 3), ``t`` (B, L, 3) world-to-camera, ``intrins`` (B, 4) true
        ``[f, f, cx, cy]``, ``size`` (B, 2) ``(H, W)``.
    """
    B, L, _ = pelvis.shape
    pick = torch.randint(len(IMAGE_SIZES), (B,), generator=gen)
    sizes = torch.tensor(IMAGE_SIZES, dtype=torch.float32)[pick]
    f = sizes.amax(-1) * torch.exp(_uniform(gen, B, math.log(0.55), math.log(1.4)))
    intrins = torch.stack([f, f, sizes[:, 1] / 2, sizes[:, 0] / 2], -1)
    dist = torch.exp(_uniform(gen, B, math.log(2.0), math.log(12.0)))
    az = _uniform(gen, B, 0, 2 * math.pi)
    ring = torch.stack([torch.sin(az), torch.zeros(B), torch.cos(az)], -1) * dist[:, None]
    height = _uniform(gen, B, 0.3, 2.6)
    smooth = _smooth(pelvis, 15.0)
    centre = pelvis.mean(1)
    offset = torch.randn(B, 3, generator=gen) * torch.tensor([0.25, 0.2, 0.25]) * dist[:, None] / 4
    kind = torch.randint(4, (B,), generator=gen)  # static, pan, tracking, orbit
    eye_static = (centre + ring).clone()
    eye_static[:, 1] = height
    eye = eye_static[:, None].expand(B, L, 3).clone()
    track = smooth + ring[:, None]
    track[..., 1] = height[:, None]
    eye[kind == 2] = track[kind == 2]
    sweep = _uniform(gen, B, -math.pi / 2, math.pi / 2)
    ang = az[:, None] + torch.linspace(0, 1, L)[None] * sweep[:, None]
    orbit = smooth + torch.stack([torch.sin(ang), torch.zeros_like(ang), torch.cos(ang)], -1) * \
        dist[:, None, None]  # fmt: skip
    orbit[..., 1] = height[:, None]
    eye[kind == 3] = orbit[kind == 3]
    target = torch.where((kind == 0)[:, None, None], centre[:, None], smooth) + offset[:, None]
    roll = torch.randn(B, generator=gen) * math.radians(3.0)
    R = _look_at(eye, target, roll)
    shake_deg = torch.where(kind == 0, 0.0, _uniform(gen, B, 0.0, 0.8))
    shake = _smooth(torch.randn(B, L, 3, generator=gen), 2.0)
    shake = shake / shake.std().clamp(min=1e-6) * torch.deg2rad(shake_deg)[:, None, None]
    R = axis_angle_to_matrix(shake) @ R
    t = -(R @ eye[..., None])[..., 0]
    return R, t, intrins, sizes


def detect(kp_w: Tensor, R: Tensor, t: Tensor, intrins: Tensor, size: Tensor,
           gen: torch.Generator) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Detector-like keypoints of world keypoints ``kp_w`` (B, L, K, 3) seen by the cameras.

    Returns:
        ``uv`` (B, L, K, 2) pixels and ``vis`` (B, L, K) bool.
    """
    B, L, K, _ = kp_w.shape
    X = (R[:, :, None] @ kp_w[..., None])[..., 0] + t[:, :, None]
    z = X[..., 2].clamp(min=0.1)
    f, c = intrins[:, None, None, :2], intrins[:, None, None, 2:]
    uv = f * X[..., :2] / z[..., None] + c
    vis = X[..., 2] > 0.3
    height = (uv[..., 1].amax(-1) - uv[..., 1].amin(-1)).clamp(min=10.0)[..., None, None]
    noise = _uniform(gen, B, 0.004, 0.02)[:, None, None, None]
    uv = uv + torch.randn(uv.shape, generator=gen) * noise * height
    out_p = _uniform(gen, B, 0.0, 0.03)[:, None, None]
    outlier = torch.rand(B, L, K, generator=gen) < out_p
    jump = (torch.rand(B, L, K, 2, generator=gen) * 2 - 1) * 0.25 * height
    uv = torch.where(outlier[..., None], uv + jump, uv)
    drop_p = _uniform(gen, B, 0.0, 0.1)[:, None, None]
    vis &= torch.rand(B, L, K, generator=gen) >= drop_p
    swap = torch.rand(B, L, generator=gen) < _uniform(gen, B, 0.0, 0.02)[:, None]
    uv = torch.where(swap[..., None, None], swap_pairs(uv, MIRROR_PAIRS, -2), uv)
    vis = _occlude(vis, gen)
    for part, prob in ((FACE, 0.15), (FEET, 0.4)):  # detectors without face or feet points
        vis[:, :, list(part)] &= (torch.rand(B, generator=gen) >= prob)[:, None, None]
    H, W = size[:, 0, None, None], size[:, 1, None, None]
    vis &= (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    vis &= (vis.sum(-1) >= 4)[..., None]
    return uv, vis


def _occlude(vis: Tensor, gen: torch.Generator) -> Tensor:
    """Hide a part or the whole person over 0-3 spans of 4-20 frames per window."""
    B, L, _ = vis.shape
    vis = vis.clone()
    for b in range(B):
        for _ in range(int(torch.randint(4, (1,), generator=gen))):
            n = int(torch.randint(4, 21, (1,), generator=gen))
            a = int(torch.randint(max(L - n, 1), (1,), generator=gen))
            if float(torch.rand(1, generator=gen)) < 0.3:
                vis[b, a : a + n] = False
            else:
                part = PARTS[int(torch.randint(len(PARTS), (1,), generator=gen))]
                vis[b, a : a + n, list(part)] = False
    return vis


def observe(w: Window, gen: torch.Generator, fps: float) -> tuple[Tensor, dict[str, Tensor]]:
    """Film windows with random cameras: ``features`` (B, L, F) and the targets.

    Targets: ``root_c`` (B, L, 3, 3), ``up_c`` (B, L, 3), ``detected`` (B, L) bool, and the
    window's ``pose``, ``vel_h``, ``contact``, ``betas``, ``rest``, ``local``.
    """
    R, t, intrins, size = sample_cameras(w.pelvis, gen)
    uv, vis = detect(w.kp_w, R, t, intrins, size, gen)
    given = intrins.clone()
    given[:, :2] *= torch.exp(torch.randn(len(given), 1, generator=gen) * 0.08)
    B, L = uv.shape[:2]
    angvel = torch.stack([camera_angular_velocity(R[b], fps) for b in range(B)])
    angvel = angvel + torch.randn(angvel.shape, generator=gen) * 0.02
    feats = make_features(uv, vis, given[:, None].expand(B, L, 4), angvel)
    targets = {
        "root_c": R @ w.root, "up_c": R[..., :, 1], "detected": vis.sum(-1) >= 4,
        "pose": w.pose, "vel_h": w.vel_h, "contact": w.contact, "betas": w.betas,
        "rest": w.rest, "local": w.local,
    }  # fmt: skip
    return feats, targets
