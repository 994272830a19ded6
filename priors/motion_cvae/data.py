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

from priors.motion_cvae.state import states_from_body


@dataclass
class TransitionSet:
    """Transitions of many sequences.

    Attributes:
        prev, cur: (N, 204) float32 states (``priors.motion_cvae.state``).
        contacts: (N, C) float32 contact labels of frame t (``priors.data.states``).
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


def load_transitions(path: str | Path, max_files: int | None = None) -> TransitionSet:
    """All transitions (t-1, t), t = 2 .. T-1, of every sequence in a state file (float64 maths).

    Args:
        path: ``states_<split>.npz``.
        max_files: keep only the first n sequences (quick trials).
    """
    with np.load(path) as data:
        arrays = {k: data[k] for k in ("names", "seq_start", "fps", "root_orient", "pose_body",
                                       "joints", "contacts")}  # fmt: skip
        metadata = json.loads(str(data["metadata"]))
    prevs, curs, contacts, sequence = [], [], [], []
    starts = arrays["seq_start"]
    count = len(arrays["names"]) if max_files is None else min(max_files, len(arrays["names"]))
    for s in range(count):
        a, b = starts[s], starts[s + 1]
        if b - a < 3:
            continue
        root, pose, joints = (torch.from_numpy(arrays[k][a:b].astype(np.float64))
                              for k in ("root_orient", "pose_body", "joints"))  # fmt: skip
        tr = states_from_body(root, pose, joints, float(arrays["fps"][s]))
        prevs.append(tr.prev.float())
        curs.append(tr.cur.float())
        contacts.append(torch.from_numpy(arrays["contacts"][a + 2 : b].astype(np.float32)))
        sequence.append(torch.full((b - a - 2,), s, dtype=torch.int64))
    return TransitionSet(torch.cat(prevs), torch.cat(curs), torch.cat(contacts),
                         torch.cat(sequence), arrays["names"][:count], metadata)  # fmt: skip


def load_motions(path: str | Path, indices: list[int] | None = None) -> list:
    """World motions (``priors.motion_cvae.scores.Motion``) of a state file's sequences, or of
    those at ``indices`` (every one by default)."""
    from priors.motion_cvae.scores import Motion

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
