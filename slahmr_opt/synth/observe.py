"""Synthetic observations of known bodies: moving cameras, detector-like 2D keypoints, SLAM-like
camera trajectories and regressor-like per-frame SMPL guesses.

The ground-truth world is y-up (as motion capture); cameras use OpenCV axes. The SLAM world is the
first camera's frame and its translations are divided by the true scale ``alpha_true``, so that
``alpha_true * t_slam`` is metric, as the solver assumes.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.geometry.camera import project, world_to_camera
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.inputs.track_data import track_mask_from_vis
from slahmr_opt.synth.guesses import GUESS_PRESETS, GuessSettings, regressor_guess
from slahmr_opt.types import Cameras, Observations

UP = np.array([0.0, 1.0, 0.0])
#: Left/right keypoint pairs of COCO-17 (swapped by detector-like left/right confusions).
COCO_FLIPS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]


@dataclass
class SynthSettings:
    """Knobs of the synthetic observations (defaults: a hand-held phone and a good detector)."""

    camera: str = "tracking"
    """``static``, ``pan``, ``tracking`` (follows the person) or ``orbit`` (circles them)."""
    image_size: tuple[int, int] = (720, 1280)
    distance: float = 4.5
    """Camera-to-person distance, metres."""
    camera_height: float = 0.4
    """Camera height above the pelvis, metres."""
    shake_deg: float = 0.4
    """Hand-held rotation jitter, degrees (std)."""
    kp_noise: float = 0.01
    """Keypoint pixel noise as a fraction of the person's height in pixels (std)."""
    outlier_prob: float = 0.02
    drop_prob: float = 0.05
    swap_prob: float = 0.01
    """Probability per frame that left and right keypoints are swapped."""
    alpha_true: float = 0.37
    """Metres per SLAM translation unit."""
    slam_rot_drift_deg: float = 1.0
    """Rotation drift accumulated over the sequence, degrees."""
    slam_trans_noise: float = 0.005
    """SLAM translation jitter, metres."""
    guesses: GuessSettings = GUESS_PRESETS["near-true"]
    """Errors of the per-frame SMPL guesses (``kind="none"``: no guesses)."""


def look_at(eye: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``(R (T,3,3), t (T,3))`` of OpenCV cameras at ``eye`` facing ``target``."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    right = np.cross(fwd, UP)
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd], axis=-2)
    t = -np.einsum("tij,tj->ti", R, eye)
    return R, t


def camera_path(
    kind: str,
    pelvis: np.ndarray,
    s: SynthSettings,
    rng: np.random.Generator,
    heading: float | None = None,
):
    """Ground-truth world-to-camera ``(R, t)`` following ``pelvis (T, 3)``.

    Args:
        heading: direction from the person to the camera over the floor, radians
            (``(sin, cos)`` along world x, z); None: drawn from ``rng`` (which draws it anyway,
            so that the rest of the stream stays the same).
    """
    T = len(pelvis)
    smooth = gaussian_filter1d(pelvis, sigma=15, axis=0, mode="nearest")
    start = pelvis[0] + np.array([0.0, s.camera_height, 0.0])
    drawn = rng.uniform(0, 2 * np.pi)
    heading = drawn if heading is None else heading
    offset0 = s.distance * np.array([math.sin(heading), 0.0, math.cos(heading)])
    if kind == "static":
        eye = np.repeat((pelvis.mean(0) + offset0 + [0, s.camera_height, 0])[None], T, 0)
        target = np.repeat(pelvis.mean(0)[None], T, 0)
    elif kind == "pan":
        eye = np.repeat((start + offset0)[None], T, 0)
        target = smooth
    elif kind == "tracking":
        eye = smooth + offset0 + [0, s.camera_height, 0]
        target = smooth
    elif kind == "orbit":
        ang = heading + np.linspace(0, np.pi / 2, T)
        ring = s.distance * np.stack([np.sin(ang), np.zeros(T), np.cos(ang)], -1)
        eye = smooth + ring + [0, s.camera_height, 0]
        target = smooth
    else:
        raise ValueError(f"unknown camera path {kind!r}")
    R, t = look_at(eye, target)
    if kind != "static" and s.shake_deg > 0:
        shake = gaussian_filter1d(rng.normal(size=(T, 3)), sigma=2, axis=0)
        shake *= np.deg2rad(s.shake_deg) / max(shake.std(), 1e-9)
        dR = rotvec_to_rotmat(torch.from_numpy(shake)).numpy()
        R = dR @ R
        t = -np.einsum("tij,tj->ti", R, eye)
    return R, t


def slam_like(R: np.ndarray, t: np.ndarray, s: SynthSettings, rng: np.random.Generator):
    """Re-express true cameras as a SLAM system would: world = first camera, translation in
    units of ``1 / alpha_true`` metres, with rotation drift and translation jitter."""
    T = len(R)
    R_rel = R @ R[0].T
    t_rel = t - np.einsum("tij,j->ti", R_rel, t[0])
    drift_axis = rng.normal(size=3)
    drift_axis /= np.linalg.norm(drift_axis)
    drift = np.linspace(0, np.deg2rad(s.slam_rot_drift_deg), T)[:, None] * drift_axis
    R_slam = rotvec_to_rotmat(torch.from_numpy(drift)).numpy() @ R_rel
    centres = -np.einsum("tji,tj->ti", R_rel, t_rel)  # true centres in the first camera's frame
    centres += gaussian_filter1d(rng.normal(size=(T, 3)), 1.5, axis=0) * s.slam_trans_noise * 3
    t_slam = -np.einsum("tij,tj->ti", R_slam, centres) / s.alpha_true
    return R_slam, t_slam


def detect_keypoints(
    kp_w: Tensor,
    R: Tensor,
    t: Tensor,
    intrins: Tensor,
    image_size,
    s: SynthSettings,
    rng: np.random.Generator,
    flip_pairs: list[tuple[int, int]],
) -> tuple[Tensor, Tensor]:
    """Detector-like 2D keypoints of true world keypoints ``kp_w (P, T, K, 3)``.

    Returns:
        ``kp2d (P, T, K, 3)`` with confidences and ``vis (P, T)`` (person detected).
    """
    uv = project(world_to_camera(kp_w, R, t), intrins).numpy()
    P, T, K, _ = uv.shape
    height_px = np.ptp(uv[..., 1], axis=-1, keepdims=True).clip(20, None)
    uv = uv + rng.normal(size=uv.shape) * s.kp_noise * height_px[..., None]
    conf = rng.uniform(0.55, 1.0, size=(P, T, K))
    outlier = rng.random((P, T, K)) < s.outlier_prob
    uv[outlier] += (
        rng.uniform(-1, 1, size=(outlier.sum(), 2))
        * 0.25
        * height_px.repeat(K, -1)[outlier][:, None]
    )
    conf[outlier] = rng.uniform(0.4, 0.7, size=outlier.sum())
    conf[rng.random((P, T, K)) < s.drop_prob] = 0.0
    swap = rng.random((P, T)) < s.swap_prob
    for a, b in flip_pairs:
        uv[swap, a], uv[swap, b] = uv[swap, b].copy(), uv[swap, a].copy()
    H, W = image_size
    inside = (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    conf[~inside] = 0.0
    vis = (conf > 0).sum(-1) >= 4
    conf[~vis] = 0.0
    kp2d = np.concatenate([uv, conf[..., None]], -1).astype(np.float32)
    return torch.from_numpy(kp2d), torch.from_numpy(vis)


def default_cameras(R, t, image_size, focal: float | None = None) -> Cameras:
    """Cameras with SLAHMR's default intrinsics (focal = (H + W) / 2) unless ``focal`` is given."""
    H, W = image_size
    f = focal or 0.5 * (H + W)
    T = len(R)
    intrins = torch.tensor([f, f, W / 2, H / 2], dtype=torch.float32).expand(T, 4).clone()
    return Cameras(
        torch.as_tensor(R).float(), torch.as_tensor(t).float(), intrins, (int(H), int(W))
    )


@dataclass
class SynthScene:
    """Synthetic observations of known bodies and the truth behind them.

    Attributes:
        obs: what a tracker and SLAM would report (COCO-17 keypoints, SMPL guesses, cameras).
        joints: (P, T, 24, 3) true world joints, metres (y-up ground-truth world).
        R_true, t_true: (T, 3, 3), (T, 3) true metric world-to-camera extrinsics.
    """

    obs: Observations
    joints: Tensor
    R_true: np.ndarray
    t_true: np.ndarray


def observe_bodies(
    body: BodyModel,
    root_orient: Tensor,
    trans: Tensor,
    pose_body: Tensor,
    betas: Tensor,
    s: SynthSettings,
    rng: np.random.Generator,
    fps: float = 30.0,
    guess_rng: np.random.Generator | None = None,
) -> SynthScene:
    """Film known bodies with the camera of ``s`` and corrupt what is seen as a tracker and a SLAM
    system would. A ``static`` camera keeps its true, metric extrinsics (``is_static``).

    Args:
        root_orient, trans: (P, T, 3); pose_body: (P, T, 21, 3); betas: (P, B); float64.
        guess_rng: the random stream of the guesses; None: ``rng`` (then the keypoints and
            cameras depend on the guess settings; a separate stream keeps them the same).
    """
    P, T = trans.shape[:2]
    out = body(betas[:, None].expand(-1, T, -1), root_orient, pose_body, trans)
    R, t = camera_path(s.camera, out.joints[:, :, 0].mean(0).numpy(), s, rng)
    cams_true = default_cameras(R, t, s.image_size)
    R64, t64 = torch.from_numpy(R), torch.from_numpy(t)
    kp_w = body.keypoints(out, "coco17")
    kp2d, vis = detect_keypoints(
        kp_w, R64, t64, cams_true.intrins.double(), s.image_size, s, rng, COCO_FLIPS
    )
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    rest = body(
        torch.zeros(1, body.num_betas, dtype=torch.float64),
        zeros,
        torch.zeros(1, 21, 3, dtype=torch.float64),
        zeros,
    )
    guess = None
    if s.guesses.kind != "none":
        guess = regressor_guess(
            root_orient, pose_body, out.joints[..., 0, :], rest.joints[0, 0], R64, t64, vis,
            s.guesses, guess_rng or rng, num_keypoints=(kp2d[..., 2] > 0).sum(-1),
        )  # fmt: skip
    if s.camera == "static":
        cams = replace(cams_true, is_static=True)
    else:
        cams = default_cameras(*slam_like(R, t, s, rng), s.image_size)
    obs = Observations(
        kp2d=kp2d,
        kp_format="coco17",
        track_mask=track_mask_from_vis(vis),
        vis_mask=vis,
        cameras=cams,
        fps=fps,
        track_ids=[f"{p + 1:03d}" for p in range(P)],
        smpl_guess=guess,
    )
    return SynthScene(obs, out.joints.float(), R, t)


def walking_bodies(num_people: int, num_frames: int, fps: float, rng: np.random.Generator):
    """Hand-made walkers for tests and speed benchmarks (not real motion): bodies 1.2 m apart
    walk along +z at 1 m/s swinging their legs, arms down.

    Returns:
        float64 ``root_orient (P, T, 3)``, ``trans (P, T, 3)``, ``pose_body (P, T, 21, 3)``,
        ``betas (P, 10)``.
    """
    t = np.arange(num_frames) / fps
    P, T = num_people, num_frames
    trans = np.zeros((P, T, 3))
    trans[..., 0] = np.arange(P)[:, None] * 1.2
    trans[..., 2] = 1.0 * t
    root = np.zeros((P, T, 3))
    root[..., 1] = 0.1 * np.sin(t)
    pose = np.zeros((P, T, 21, 3))
    phase = 2 * np.pi * t + np.arange(P)[:, None]
    pose[..., 0, 0], pose[..., 1, 0] = 0.4 * np.sin(phase), -0.4 * np.sin(phase)  # hips
    pose[..., 3, 0], pose[..., 4, 0] = 0.4 * (1 + np.sin(phase)), 0.4 * (1 - np.sin(phase))
    pose[..., 15, 2], pose[..., 16, 2] = -1.2, 1.2  # shoulders: arms down
    betas = rng.normal(size=(P, 10)) * 0.5
    return tuple(torch.tensor(a, dtype=torch.float64) for a in (root, trans, pose, betas))
