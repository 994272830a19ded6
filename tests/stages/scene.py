"""Synthetic scenes for solver tests: known bodies seen by known cameras.

Bodies walk along +z with swinging legs (a hand-made gait, not mocap), in the y-up ground-truth
world; ``make_scene`` returns the observations a tracker and SLAM would give plus the truth.
"""

from dataclasses import dataclass, replace

import numpy as np
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.eval import synth
from slahmr_opt.inputs.track_data import track_mask_from_vis
from slahmr_opt.types import Observations

COCO_FLIPS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]


@dataclass
class Scene:
    obs: Observations
    joints: torch.Tensor  # (P, T, 24, 3) true world joints
    settings: synth.SynthSettings


def walking_bodies(num_people: int, num_frames: int, fps: float, rng):
    t = np.arange(num_frames) / fps
    P, T = num_people, num_frames
    trans = np.zeros((P, T, 3))
    trans[..., 0] = np.arange(P)[:, None] * 1.2
    trans[..., 2] = 1.0 * t
    root = np.zeros((P, T, 3))
    root[..., 1] = 0.1 * np.sin(t)
    pose = np.zeros((P, T, 21, 3))
    phase = 2 * np.pi * 1.0 * t + np.arange(P)[:, None]
    pose[..., 0, 0] = 0.4 * np.sin(phase)  # left hip
    pose[..., 1, 0] = -0.4 * np.sin(phase)  # right hip
    pose[..., 3, 0] = 0.4 * (1 + np.sin(phase))  # knees
    pose[..., 4, 0] = 0.4 * (1 - np.sin(phase))
    pose[..., 15, 2] = -1.2  # arms down
    pose[..., 16, 2] = 1.2
    betas = rng.normal(size=(P, 10)) * 0.5
    return [torch.tensor(a, dtype=torch.float64) for a in (root, trans, pose, betas)]


def make_scene(
    num_people: int = 1, num_frames: int = 30, camera: str = "orbit", seed: int = 0, **noise
) -> Scene:
    """Observations of walking bodies; ``noise`` overrides ``SynthSettings`` fields."""
    rng = np.random.default_rng(seed)
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    root, trans, pose, betas = walking_bodies(num_people, num_frames, 30.0, rng)
    T = num_frames
    out = body(betas[:, None].expand(-1, T, -1), root, pose, trans)
    kp_w = body.keypoints(out, "coco17")
    s = synth.SynthSettings(camera=camera, **noise)
    R, t = synth.camera_path(camera, out.joints[:, :, 0].mean(0).numpy(), s, rng)
    cams_true = synth.cameras_from_arrays(R, t, s.image_size)
    R64, t64 = torch.from_numpy(R), torch.from_numpy(t)
    kp2d, vis = synth.detect_keypoints(
        kp_w, R64, t64, cams_true.intrins.double(), s.image_size, s, rng, COCO_FLIPS
    )
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    pelvis0 = body(
        torch.zeros(1, 10, dtype=torch.float64),
        zeros,
        torch.zeros(1, 21, 3, dtype=torch.float64),
        zeros,
    ).joints[0, 0]
    guess = synth.regressor_guess(root, pose, out.joints[..., 0, :], pelvis0, R64, t64, vis, s, rng)
    if camera == "static":
        cams = replace(cams_true, is_static=True)  # metric, world = ground-truth world
    else:
        R_s, t_s = synth.slam_like(R, t, s, rng)
        cams = synth.cameras_from_arrays(R_s, t_s, s.image_size)
    obs = Observations(
        kp2d=kp2d,
        kp_format="coco17",
        track_mask=track_mask_from_vis(vis),
        vis_mask=vis,
        cameras=cams,
        fps=30.0,
        track_ids=[f"{p:03d}" for p in range(num_people)],
        smpl_guess=guess,
    )
    return Scene(obs, out.joints.float(), s)
