"""Synthetic scenes for solver tests: known bodies seen by known cameras.

Bodies walk along +z with swinging legs (a hand-made gait, not mocap), in the y-up ground-truth
world; ``make_scene`` returns the observations a tracker and SLAM would give plus the truth.
"""

from dataclasses import dataclass

import numpy as np
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.eval import synth
from slahmr_opt.types import Observations


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
    s = synth.SynthSettings(camera=camera, **noise)
    scene = synth.observe_bodies(body, root, trans, pose, betas, s, rng)
    return Scene(scene.obs, scene.joints, s)
