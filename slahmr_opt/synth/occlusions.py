"""Detector-like occlusions of synthetic keypoints: parts or whole people hidden over spans of
frames, people leaving the image, and detectors that give no face keypoints."""

from dataclasses import dataclass, replace

import numpy as np
import torch

from slahmr_opt.inputs.track_data import track_mask_from_vis
from slahmr_opt.types import Observations

MIN_KEYPOINTS = 4
"""A person counts as detected in a frame with at least this many confident keypoints."""


@dataclass
class OcclusionSettings:
    """Occlusions added to the detector-like keypoints.

    Attributes:
        spans: (min, max) occlusion spans per person.
        length: (min, max) frames per span.
        whole_prob: probability that a span hides the whole person (else a body part).
        exit_prob: probability that the person is outside the image at the start or end.
        exit_frames: (min, max) frames outside the image.
    """

    spans: tuple[int, int] = (1, 3)
    length: tuple[int, int] = (4, 15)
    whole_prob: float = 0.4
    exit_prob: float = 0.3
    exit_frames: tuple[int, int] = (5, 20)


#: COCO-17 keypoint groups a part occlusion hides (legs, arms, one side, head).
PARTS = (
    (11, 12, 13, 14, 15, 16),
    (13, 14, 15, 16),
    (7, 8, 9, 10),
    (5, 7, 9, 11, 13, 15),
    (6, 8, 10, 12, 14, 16),
    (0, 1, 2, 3, 4),
)


def add_occlusions(
    obs: Observations, rng: np.random.Generator, s: OcclusionSettings
) -> Observations:
    """Hide keypoints (a part or the whole person) over a few spans of frames, and sometimes
    put the person outside the image at the start or the end.

    Returns:
        New ``Observations`` with ``kp2d`` confidences, ``vis_mask``, ``track_mask`` and
        ``smpl_guess.valid`` updated.
    """
    conf = obs.kp2d[..., 2].numpy().copy()
    P, T, _ = conf.shape
    for p in range(P):
        for _ in range(rng.integers(s.spans[0], s.spans[1] + 1)):
            length = int(rng.integers(s.length[0], s.length[1] + 1))
            a = int(rng.integers(0, max(T - length, 1)))
            if rng.random() < s.whole_prob:
                conf[p, a : a + length] = 0.0
            else:
                conf[p, a : a + length, list(PARTS[rng.integers(len(PARTS))])] = 0.0
        if rng.random() < s.exit_prob:
            n = min(int(rng.integers(s.exit_frames[0], s.exit_frames[1] + 1)), T // 4)
            if rng.random() < 0.5:
                conf[p, :n] = 0.0
            else:
                conf[p, T - n :] = 0.0
    return _with_confidences(obs, conf)


def _with_confidences(obs: Observations, conf: np.ndarray) -> Observations:
    """``obs`` with new keypoint confidences; detections, tracks and guesses follow them."""
    vis = torch.from_numpy((conf > 0).sum(-1) >= MIN_KEYPOINTS)
    conf = np.where(vis.numpy()[..., None], conf, 0.0)
    kp2d = obs.kp2d.clone()
    kp2d[..., 2] = torch.from_numpy(conf).to(kp2d)
    guess = obs.smpl_guess and replace(obs.smpl_guess, valid=obs.smpl_guess.valid & vis)
    return replace(obs, kp2d=kp2d, vis_mask=vis, track_mask=track_mask_from_vis(vis),
                   smpl_guess=guess)  # fmt: skip


def hide_keypoints(obs: Observations, indices) -> Observations:
    """Set the confidence of keypoints ``indices`` to 0 in every frame (e.g. the face)."""
    conf = obs.kp2d[..., 2].numpy().copy()
    conf[..., list(indices)] = 0.0
    return _with_confidences(obs, conf)
