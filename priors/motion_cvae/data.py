"""Transitions of the CVAE motion prior from ``priors/data``'s state files (numpy + torch).

``states_<split>.npz`` (``priors/data/README.md``) holds per-frame world quantities of fitted
mocap; the prior's transitions are recomputed from them with ``states_from_body``, the same code
the solver runs on its own variables, so training and use cannot disagree on the state.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from slahmr_priors import augment
from slahmr_priors.motion_cvae.state import axis_angle_to_matrix, states_from_rotations

#: Motion augmentations of ``load_transitions`` (``slahmr_priors.augment``).
AUGMENTATIONS = ("mirror", "reverse", "speed")
#: Speed factors of the ``speed`` augmentation (1.0 is always kept).
SPEEDS = (0.8, 1.25)


@dataclass
class TransitionSet:
    """Transitions of many sequences.

    Attributes:
        prev, cur: (N, 204) float32 states (``slahmr_priors.motion_cvae.state``).
        contacts: (N, C) float32 contact labels of frame t (``slahmr_priors.data.states``).
        sequence: (N,) int64 index into ``names``.
        names: (S,) file names.
        metadata: the state file's metadata.
    """

    prev: torch.Tensor
    cur: torch.Tensor
    contacts: torch.Tensor
    sequence: torch.Tensor
    names: np.ndarray
    metadata: dict

    def subset(self, mask: torch.Tensor) -> "TransitionSet":
        """The transitions where ``mask`` (N,) bool is set."""
        return TransitionSet(self.prev[mask], self.cur[mask], self.contacts[mask],
                             self.sequence[mask], self.names, self.metadata)  # fmt: skip


def take_numbers(names: np.ndarray) -> np.ndarray:
    """(S,) take number (the last number in each file name)."""
    return np.asarray([int(re.findall(r"\d+", Path(str(n)).stem)[-1]) for n in names])


def motion_variants(root: torch.Tensor, pose: torch.Tensor, joints: torch.Tensor,
                    contacts: torch.Tensor, contact_joints: tuple[int, ...],
                    augmentations=()) -> list[tuple]:  # fmt: skip
    """The motion (root rotations (T, 3, 3), poses (T, 63), joints (T, 22, 3), contacts (T, C))
    and its ``augmentations``: ``mirror`` adds the left/right mirror, ``reverse`` every motion
    so far played backwards, ``speed`` every motion so far at each of ``SPEEDS``."""
    out = [(root, pose, joints, contacts)]
    if "mirror" in augmentations:
        out.append((augment.mirror_rotation(root),
                    augment.mirror_pose(pose.reshape(-1, 21, 3)).reshape(-1, 63),
                    augment.mirror_joints(joints),
                    augment.mirror_contacts(contacts, contact_joints)))  # fmt: skip
    if "reverse" in augmentations:
        out += [tuple(x.flip(0) for x in m) for m in out]
    if "speed" in augmentations:
        for (r, p, j, c), factor in [(m, f) for f in SPEEDS for m in list(out)]:
            t = augment.change_speed(factor, len(r))
            out.append((augment.orthonormalize(augment.resample(r, t)), augment.resample(p, t),
                        augment.resample(j, t), c[t.round().long()]))  # fmt: skip
    return out


def load_transitions(path: str | Path, max_files: int | None = None, exclude=(),
                     augmentations=()) -> TransitionSet:  # fmt: skip
    """All transitions (t-1, t), t = 2 .. T-1, of every sequence in a state file (float64 maths).

    Args:
        path: ``states_<split>.npz``.
        max_files: keep only the first n sequences (quick trials).
        exclude: leave out sequences whose name contains one of these strings (motion kinds or
            styles held out of training, e.g. ``_run_``, ``_elderly_``).
        augmentations: some of ``AUGMENTATIONS`` (``motion_variants``); the variants keep their
            sequence's index.
    """
    unknown = set(augmentations) - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(f"unknown augmentations {sorted(unknown)} (known: {AUGMENTATIONS})")
    with np.load(path) as data:
        arrays = {k: data[k] for k in ("names", "seq_start", "fps", "root_orient", "pose_body",
                                       "joints", "contacts", "contact_joints")}  # fmt: skip
        metadata = json.loads(str(data["metadata"]))
    contact_joints = tuple(int(j) for j in arrays["contact_joints"])
    prevs, curs, contacts, sequence = [], [], [], []
    starts = arrays["seq_start"]
    count = len(arrays["names"]) if max_files is None else min(max_files, len(arrays["names"]))
    for s in range(count):
        a, b = starts[s], starts[s + 1]
        if b - a < 3 or any(x in str(arrays["names"][s]) for x in exclude):
            continue
        root, pose, joints = (torch.from_numpy(arrays[k][a:b].astype(np.float64))
                              for k in ("root_orient", "pose_body", "joints"))  # fmt: skip
        labels = torch.from_numpy(arrays["contacts"][a:b].astype(np.float32))
        for r, p, j, c in motion_variants(axis_angle_to_matrix(root), pose, joints, labels,
                                          contact_joints, augmentations):  # fmt: skip
            tr = states_from_rotations(r, p, j, float(arrays["fps"][s]))
            prevs.append(tr.prev.float())
            curs.append(tr.cur.float())
            contacts.append(c[2:])
            sequence.append(torch.full((len(r) - 2,), s, dtype=torch.int64))
    if not prevs:
        raise ValueError(f"no sequence of 3 frames or more is left (exclude: {list(exclude)})")
    return TransitionSet(torch.cat(prevs), torch.cat(curs), torch.cat(contacts),
                         torch.cat(sequence), arrays["names"][:count], metadata)  # fmt: skip


def load_motions(path: str | Path, indices: list[int] | None = None) -> list:
    """World motions (``slahmr_priors.motion_cvae.scores.Motion``) of a state file's sequences,
    or of those at ``indices`` (every one by default)."""
    from slahmr_priors.motion_cvae.scores import Motion

    with np.load(path) as data:
        starts, fps = data["seq_start"], data["fps"]
        keys = ("root_orient", "pose_body", "joints", "contacts")
        arrays = {k: data[k] for k in keys}
    indices = range(len(starts) - 1) if indices is None else indices
    return [Motion(*(arrays[k][starts[s] : starts[s + 1]] for k in keys), float(fps[s]))
            for s in indices]  # fmt: skip


def write_sample(path: str | Path, out: str | Path, count: int, frames: int, seed: int) -> None:
    """Write ``count`` random sequences of a state file (their first ``frames`` frames; world
    root_orient, pose_body, joints (22), contacts, fps, names) as a small npz for tests."""
    with np.load(path) as data:
        names, starts, fps = data["names"], data["seq_start"], data["fps"]
        picks = np.sort(np.random.default_rng(seed).choice(len(names), count, replace=False))
        rows = [np.arange(starts[s], min(starts[s + 1], starts[s] + frames)) for s in picks]
        lengths = np.array([len(r) for r in rows])
        rows = np.concatenate(rows)
        np.savez_compressed(
            out, names=names[picks], fps=fps[picks].astype(np.float64),
            seq_start=np.concatenate([[0], np.cumsum(lengths)]),
            root_orient=data["root_orient"][rows], pose_body=data["pose_body"][rows],
            joints=data["joints"][rows][:, :22], contacts=data["contacts"][rows],
        )  # fmt: skip
