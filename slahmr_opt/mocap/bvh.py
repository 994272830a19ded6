"""Reader for BVH motion capture files: hierarchy, motion channels and forward kinematics.

Handles ordinary BVH (6 channels on the root, 3 rotation channels on the other joints, as in the
CMU conversions) and files where every joint carries position channels (the Bandai-Namco data:
``Xposition Yposition Zposition Zrotation Xrotation Yrotation`` on all 22 joints).

Conventions:
    - Rotation channels are intrinsic Euler angles in degrees, applied in the order listed: channels
      ``Zrotation Xrotation Yrotation`` give the local rotation ``Rz @ Rx @ Ry``.
    - A joint's local translation from its parent is its OFFSET; position channels, where present,
      replace the matching OFFSET components (for the root they are its absolute position).
    - Global rotation ``R_j = R_parent @ R_local_j``; global position
      ``x_j = x_parent + R_parent @ t_local_j``. The file's axes are kept (no axis swap);
      lengths are multiplied by ``scale`` to give metres.
    - Joint names are single whitespace-free tokens; joints are stored in file order (depth
      first), so a parent always precedes its children.
"""

import logging
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.errors import InputError
from slahmr_opt.geometry.rotations import euler_to_rotmat, rotvec_to_rotmat

logger = logging.getLogger(__name__)

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
CENTIMETRES = 0.01
"""``scale`` for files in centimetres (Bandai-Namco, most MotionBuilder exports)."""

_FPS_SNAP_REL_TOL = 1e-4


@dataclass(frozen=True)
class BvhSkeleton:
    """The static part of a BVH file.

    Attributes:
        names: J joint names in file order.
        parents: (J,) int64 parent index of each joint, -1 for a root.
        offsets: (J, 3) OFFSET of each joint from its parent, in file units.
        channels: J tuples of channel names, in file order.
        end_site_parents: (E,) int64 joint each End Site hangs from.
        end_site_offsets: (E, 3) End Site offsets, in file units.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_site_parents: np.ndarray
    end_site_offsets: np.ndarray

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        """Index of the joint called ``name`` (KeyError naming the known joints if absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r}; joints are {list(self.names)}") from None


@dataclass
class BvhMotion:
    """A BVH file after forward kinematics.

    Attributes:
        skeleton: the hierarchy.
        channel_values: (T, C) raw motion values (file units and degrees), columns in file order.
        positions: (T, J, 3) global joint positions, metres, in the file's axes.
        rotations: (T, J, 3, 3) global joint rotations (joint frame to world).
        end_site_positions: (T, E, 3) global End Site positions, metres.
        frame_time: seconds per frame, as written in the file.
        fps: frames per second (``1 / frame_time``, snapped to an integer within 0.01%).
        scale: metres per file unit that was applied.
        source: the file (or archive member) the motion was read from.
    """

    skeleton: BvhSkeleton
    channel_values: np.ndarray
    positions: np.ndarray
    rotations: np.ndarray
    end_site_positions: np.ndarray
    frame_time: float
    fps: float
    scale: float
    source: str

    @property
    def num_frames(self) -> int:
        return self.channel_values.shape[0]

    def joint(self, name: str) -> np.ndarray:
        """(T, 3) global positions of joint ``name`` in metres."""
        return self.positions[:, self.skeleton.index(name)]


class _Tokens:
    """Cursor over the whitespace-separated tokens of the HIERARCHY section."""

    def __init__(self, text: str, source: str):
        self.tokens = text.split()
        self.pos = 0
        self.source = source

    def next(self, what: str) -> str:
        if self.pos >= len(self.tokens):
            raise InputError(self.source, f"hierarchy ends early: expected {what}")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> None:
        tok = self.next(repr(word))
        if tok != word:
            raise InputError(self.source, f"hierarchy: expected {word!r}, found {tok!r}")

    def floats(self, n: int, what: str) -> list[float]:
        vals = [self.next(what) for _ in range(n)]
        try:
            return [float(v) for v in vals]
        except ValueError:
            raise InputError(self.source, f"hierarchy: {what} is not numeric: {vals}") from None

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None


class _HierarchyBuilder:
    def __init__(self, source: str):
        self.source = source
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[list[float]] = []
        self.channels: list[tuple[str, ...]] = []
        self.end_parents: list[int] = []
        self.end_offsets: list[list[float]] = []

    def joint(self, tok: _Tokens, parent: int) -> None:
        name = tok.next("a joint name")
        if name in self.names:
            raise InputError(self.source, f"joint name {name!r} appears twice")
        index = len(self.names)
        self.names.append(name)
        self.parents.append(parent)
        tok.expect("{")
        tok.expect("OFFSET")
        self.offsets.append(tok.floats(3, f"OFFSET of {name}"))
        self.channels.append(self._channels(tok, name))
        while True:
            word = tok.next(f"JOINT, End Site or '}}' in {name}")
            if word == "}":
                return
            if word == "JOINT":
                self.joint(tok, index)
            elif word == "End":
                tok.expect("Site")
                tok.expect("{")
                tok.expect("OFFSET")
                self.end_offsets.append(tok.floats(3, f"End Site OFFSET of {name}"))
                self.end_parents.append(index)
                tok.expect("}")
            else:
                raise InputError(self.source, f"hierarchy: unexpected {word!r} in joint {name}")

    def _channels(self, tok: _Tokens, name: str) -> tuple[str, ...]:
        tok.expect("CHANNELS")
        count = tok.next(f"channel count of {name}")
        if not count.isdigit():
            raise InputError(self.source, f"joint {name}: channel count {count!r} is not a number")
        chans = tuple(tok.next(f"channel names of {name}") for _ in range(int(count)))
        for c in chans:
            if c not in POSITION_CHANNELS + ROTATION_CHANNELS:
                raise InputError(self.source, f"joint {name}: unknown channel name {c!r}")
        if len(set(chans)) != len(chans):
            raise InputError(self.source, f"joint {name}: repeated channel in {list(chans)}")
        return chans

    def build(self) -> BvhSkeleton:
        return BvhSkeleton(
            names=tuple(self.names),
            parents=np.asarray(self.parents, dtype=np.int64),
            offsets=np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3),
            channels=tuple(self.channels),
            end_site_parents=np.asarray(self.end_parents, dtype=np.int64),
            end_site_offsets=np.asarray(self.end_offsets, dtype=np.float64).reshape(-1, 3),
        )


def _parse_hierarchy(text: str, source: str) -> BvhSkeleton:
    tok = _Tokens(text, source)
    tok.expect("HIERARCHY")
    builder = _HierarchyBuilder(source)
    while tok.peek() is not None:
        tok.expect("ROOT")
        builder.joint(tok, -1)
    if not builder.names:
        raise InputError(source, "hierarchy has no ROOT joint")
    return builder.build()


def _header_value(line: str, pattern: str, source: str, what: str) -> str:
    match = re.fullmatch(pattern, line.strip())
    if match is None:
        raise InputError(source, f"expected {what} line, found {line.strip()[:60]!r}")
    return match.group(1)


def _parse_motion(lines: list[str], first_line: int, num_channels: int, source: str):
    """Parse the MOTION lines (after the MOTION keyword) into frame time and (T, C) values."""
    body = [(i, s) for i, s in enumerate(lines) if s.strip()]
    if len(body) < 2:
        raise InputError(source, "MOTION section lacks the Frames and Frame Time lines")
    num_frames = int(_header_value(body[0][1], r"Frames:\s*(\d+)", source, "'Frames: N'"))
    frame_time = float(
        _header_value(body[1][1], r"Frame Time:\s*([-+0-9.eE]+)", source, "'Frame Time: dt'")
    )
    if not (frame_time > 0 and math.isfinite(frame_time)):
        raise InputError(source, f"Frame Time must be a positive number, got {frame_time}")
    if num_frames == 0:
        raise InputError(source, "has no motion frames (Frames: 0)")
    rows = body[2:]
    if len(rows) < num_frames:
        raise InputError(
            source, f"motion is truncated: header says {num_frames} frames, found {len(rows)}"
        )
    if len(rows) > num_frames:
        logger.warning(
            "%s: %d frame lines beyond Frames: %d ignored",
            source,
            len(rows) - num_frames,
            num_frames,
        )
        rows = rows[:num_frames]
    tokens: list[str] = []
    for i, line in rows:
        values = line.split()
        if len(values) != num_channels:
            raise InputError(
                source,
                f"line {first_line + i + 1}: {len(values)} values, the hierarchy has "
                f"{num_channels} channels",
            )
        tokens.extend(values)
    try:
        data = np.asarray(tokens, dtype=np.float64).reshape(num_frames, num_channels)
    except ValueError as err:
        raise InputError(source, f"motion data is not numeric ({err})") from None
    bad = ~np.isfinite(data)
    if bad.any():
        frame, column = np.argwhere(bad)[0]
        raise InputError(source, f"motion value {data[frame, column]} (frame {frame + 1}, "
                         f"channel {column + 1}) is not a finite number")  # fmt: skip
    return frame_time, data


def _fps(frame_time: float) -> float:
    fps = 1.0 / frame_time
    nearest = round(fps)
    if nearest > 0 and abs(fps - nearest) <= _FPS_SNAP_REL_TOL * nearest:
        return float(nearest)
    return fps


def _local_rotations(chans: tuple[str, ...], values: np.ndarray) -> np.ndarray:
    """(T, 3, 3) local rotation from a joint's channel names and (T, n) values in degrees."""
    cols = [i for i, c in enumerate(chans) if c in ROTATION_CHANNELS]
    num_frames = values.shape[0]
    if not cols:
        return np.broadcast_to(np.eye(3), (num_frames, 3, 3))
    angles = torch.from_numpy(np.deg2rad(values[:, cols]))
    axes = "".join(chans[i][0] for i in cols)
    if len(axes) == 3 and axes[0] != axes[1] and axes[1] != axes[2]:
        return euler_to_rotmat(axes, angles).numpy()
    # Unusual layouts (one or two axes, repeated axes): chain single-axis rotations.
    rot = torch.eye(3, dtype=angles.dtype).expand(num_frames, 3, 3)
    for k, axis in enumerate(axes):
        aa = torch.zeros(num_frames, 3, dtype=angles.dtype)
        aa[:, "XYZ".index(axis)] = angles[:, k]
        rot = rot @ rotvec_to_rotmat(aa)
    return rot.numpy()


def forward_kinematics(
    skeleton: BvhSkeleton, channel_values: np.ndarray, scale: float = CENTIMETRES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global joint positions and rotations for every frame, vectorised over frames.

    Args:
        skeleton: the hierarchy.
        channel_values: (T, C) motion values (file units, degrees), columns in file order.
        scale: metres per file unit.

    Returns:
        positions (T, J, 3) in metres, rotations (T, J, 3, 3) joint-to-world, and End Site
        positions (T, E, 3) in metres.
    """
    num_frames = channel_values.shape[0]
    num_joints = skeleton.num_joints
    positions = np.zeros((num_frames, num_joints, 3))
    rotations = np.zeros((num_frames, num_joints, 3, 3))
    start = 0
    for j, chans in enumerate(skeleton.channels):
        values = channel_values[:, start : start + len(chans)]
        start += len(chans)
        local_t = np.broadcast_to(skeleton.offsets[j], (num_frames, 3)).copy()
        for k, c in enumerate(chans):
            if c in POSITION_CHANNELS:
                local_t[:, POSITION_CHANNELS.index(c)] = values[:, k]
        local_t *= scale
        local_r = _local_rotations(chans, values)
        parent = skeleton.parents[j]
        if parent < 0:
            rotations[:, j] = local_r
            positions[:, j] = local_t
        else:
            rotations[:, j] = rotations[:, parent] @ local_r
            positions[:, j] = positions[:, parent] + np.einsum(
                "tab,tb->ta", rotations[:, parent], local_t
            )
    ends = skeleton.end_site_parents
    end_positions = positions[:, ends] + np.einsum(
        "teab,eb->tea", rotations[:, ends], skeleton.end_site_offsets * scale
    )
    return positions, rotations, end_positions


def parse_bvh(text: str, source: str = "<string>", scale: float = CENTIMETRES) -> BvhMotion:
    """Parse BVH text and run forward kinematics.

    Args:
        text: the whole file's contents.
        source: name used in error messages and kept in the result (file or archive member).
        scale: metres per file unit (0.01 for centimetres, 1.0 for metres).

    Returns:
        The motion with global positions (T, J, 3) in metres and rotations (T, J, 3, 3).

    Raises:
        InputError: malformed hierarchy, unknown channel names, truncated motion or a frame line
            whose value count differs from the hierarchy's channel count.
    """
    lines = text.splitlines()
    motion_at = next((i for i, s in enumerate(lines) if s.strip() == "MOTION"), None)
    if motion_at is None:
        raise InputError(source, "no MOTION section")
    skeleton = _parse_hierarchy("\n".join(lines[:motion_at]), source)
    frame_time, values = _parse_motion(
        lines[motion_at + 1 :], motion_at + 1, skeleton.num_channels, source
    )
    positions, rotations, end_positions = forward_kinematics(skeleton, values, scale)
    if not (np.isfinite(positions).all() and np.isfinite(end_positions).all()):
        raise InputError(source, "joint positions overflow: offsets or position channels are "
                         "too large to be lengths")  # fmt: skip
    return BvhMotion(
        skeleton=skeleton,
        channel_values=values,
        positions=positions,
        rotations=rotations,
        end_site_positions=end_positions,
        frame_time=frame_time,
        fps=_fps(frame_time),
        scale=scale,
        source=source,
    )


def with_scale(motion: BvhMotion, scale: float) -> BvhMotion:
    """``motion`` with lengths in ``scale`` metres per file unit (positions are linear in it)."""
    factor = scale / motion.scale
    return replace(
        motion,
        positions=motion.positions * factor,
        end_site_positions=motion.end_site_positions * factor,
        scale=scale,
    )


def subsample(motion: BvhMotion, stride: int) -> BvhMotion:
    """Every ``stride``-th frame of ``motion`` (from the first); frame time and fps follow."""
    if stride == 1:
        return motion
    frame_time = motion.frame_time * stride
    return replace(
        motion,
        channel_values=motion.channel_values[::stride],
        positions=motion.positions[::stride],
        rotations=motion.rotations[::stride],
        end_site_positions=motion.end_site_positions[::stride],
        frame_time=frame_time,
        fps=motion.fps / stride,
    )


def read_bvh(path: str | Path, scale: float = CENTIMETRES) -> BvhMotion:
    """Read a BVH file (see :func:`parse_bvh`).

    Args:
        path: the ``.bvh`` file.
        scale: metres per file unit (0.01 for centimetres, 1.0 for metres).

    Raises:
        InputError: the file is missing, not text, or malformed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    return parse_bvh(text, source=str(path), scale=scale)
