"""Training and evaluation motion for the regressor: states and keypoints of the fitted mocap.

Files: ``states_<split>.npz`` (``python -m slahmr_priors.data.build``) and
``keypoints_<split>.npz`` (``python -m slahmr_priors.data.keypoints``) of the same split, frame for
frame (torch and numpy only).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from slahmr_priors.regressor.synth import Window


@dataclass
class MotionSet:
    """Every frame of a split, concatenated (N frames, S sequences); see ``Window``."""

    names: list[str]
    seq_start: np.ndarray
    kp_w: Tensor
    root: Tensor
    pose: Tensor
    pelvis: Tensor
    vel_h: Tensor
    contact: Tensor
    betas: Tensor
    rest: Tensor
    local: Tensor

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.seq_start)

    def window(self, seq: np.ndarray, start: np.ndarray, length: int) -> Window:
        """Windows of ``length`` frames: sequence ``seq[b]`` from its frame ``start[b]``."""
        rows = torch.from_numpy(self.seq_start[seq] + start)[:, None] + torch.arange(length)
        s = torch.from_numpy(seq)
        return Window(self.kp_w[rows], self.root[rows], self.pose[rows], self.pelvis[rows],
                      self.vel_h[rows], self.contact[rows], self.betas[s], self.rest[s],
                      self.local[rows])  # fmt: skip

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> Window:
        """``batch`` random windows of ``length`` frames (sequences long enough, by length)."""
        ok = np.nonzero(self.lengths >= length)[0]
        weight = (self.lengths[ok] - length + 1).astype(np.float64)
        seq = rng.choice(ok, size=batch, p=weight / weight.sum())
        start = rng.integers(0, self.lengths[seq] - length + 1)
        return self.window(seq, start, length)


def load_motion(folder: str | Path, split: str, names_filter=None) -> MotionSet:
    """The ``split`` of ``folder``; ``names_filter(name) -> bool`` keeps a subset of files."""
    folder = Path(folder)
    with np.load(folder / f"states_{split}.npz") as st, \
            np.load(folder / f"keypoints_{split}.npz") as kp:  # fmt: skip
        if not np.array_equal(st["seq_start"], kp["seq_start"]):
            raise ValueError(f"{folder}: states_{split} and keypoints_{split} differ in frames")
        names = [str(n) for n in st["names"]]
        keep = [i for i, n in enumerate(names) if names_filter is None or names_filter(n)]
        starts = st["seq_start"]
        rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in keep])
        lengths = np.diff(starts)[keep]
        root = st["root_orient_mat"][rows].astype(np.float32)
        joints = st["joints"][rows]
        pelvis = joints[:, 0]
        local = np.einsum("nji,nkj->nki", root, joints - pelvis[:, None])
        t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
        return MotionSet(
            names=[names[i] for i in keep],
            seq_start=np.concatenate([[0], np.cumsum(lengths)]),
            kp_w=t(kp["kp_w"][rows]),
            root=t(root),
            pose=t(st["pose_body"][rows].reshape(-1, 21, 3)),
            pelvis=t(pelvis),
            vel_h=t(st["joints_vel_c"][rows, 0]),
            contact=t(st["contacts"][rows, :4]),
            betas=t(st["betas"][keep]),
            rest=t(kp["rest_joints"][keep]),
            local=t(local),
        )
