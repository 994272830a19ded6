"""Synthetic scenes for solver tests: ``synth.walking_bodies`` seen by known cameras; ``make_scene``
returns the observations a tracker and SLAM would give plus the truth.
"""

from dataclasses import dataclass

import numpy as np
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.synth import observe as synth
from slahmr_opt.types import Observations


@dataclass
class Scene:
    obs: Observations
    joints: torch.Tensor  # (P, T, 24, 3) true world joints
    settings: synth.SynthSettings
    R_true: np.ndarray  # (T, 3, 3) true metric world-to-camera rotations
    t_true: np.ndarray  # (T, 3)


def make_scene(
    num_people: int = 1, num_frames: int = 30, camera: str = "orbit", seed: int = 0, **noise
) -> Scene:
    """Observations of walking bodies; ``noise`` overrides ``SynthSettings`` fields."""
    rng = np.random.default_rng(seed)
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    root, trans, pose, betas = synth.walking_bodies(num_people, num_frames, 30.0, rng)
    s = synth.SynthSettings(camera=camera, **noise)
    scene = synth.observe_bodies(body, root, trans, pose, betas, s, rng)
    return Scene(scene.obs, scene.joints, s, scene.R_true, scene.t_true)
