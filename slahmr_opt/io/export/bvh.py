"""BVH export: one file per person, SMPL's 24-joint skeleton, for Blender, MotionBuilder, Maya.

* Hierarchy: SMPL's joints and tree (``SMPL_JOINT_NAMES``), OFFSETs from the person's rest joints
  at its ``betas``; the root's OFFSET is zero and its position channels hold the pelvis's world
  position (so readers that add the OFFSET and readers that replace it agree). Leaves (feet, head,
  hands) end in an End Site half their own offset further along the bone, which only gives the
  last bones a length.
* Channels: ``Xposition Yposition Zposition Zrotation Xrotation Yrotation`` on the root, the three
  rotations on every other joint (the hands' stay 0). Rotations are intrinsic Euler angles in
  degrees, ``R = Rz @ Rx @ Ry``, chosen per frame among the two equivalent triples and their
  360-degree turns to be nearest the previous frame, so curves do not jump.
* Units: metres by default, which Blender's importer (scale 1.0, Y up) reads as is; ``cm`` for
  tools that expect centimetres (MotionBuilder, most BVH libraries). The world is the y-up
  export world of ``motion.export_world_rotation``.
* Frames: every result frame, ``Frame Time`` = 1 / fps; outside its track a person holds the
  nearest tracked pose (``motion`` module).
"""

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyModel
from slahmr_opt.body.keypoints import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from slahmr_opt.files.checks import prepare_output
from slahmr_opt.io.export.files import write_file
from slahmr_opt.io.export.motion import (
    PersonMotion,
    export_world_rotation,
    person_motions,
)
from slahmr_opt.types import Result

#: File units per metre.
UNITS = {"m": 1.0, "cm": 100.0}
EULER_ORDER = "ZXY"
_CHILDREN = [[c for c, p in enumerate(SMPL_PARENTS) if p == j] for j in range(NUM_JOINTS)]


def continuous_euler(rotations: np.ndarray, order: str = EULER_ORDER) -> np.ndarray:
    """Intrinsic Euler angles in degrees, continuous over time.

    Args:
        rotations: (T, J, 3, 3).
        order: three distinct axes, e.g. ``"ZXY"`` for ``R = Rz(a) @ Rx(b) @ Ry(c)``.
    Returns:
        (T, J, 3) ``(a, b, c)`` per frame: of ``(a, b, c)``, ``(a + 180, 180 - b, c + 180)`` and
        their 360-degree turns, the one nearest the previous frame's angles.
    """
    T, J = rotations.shape[:2]
    euler = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_euler(order, degrees=True)
    euler = euler.reshape(T, J, 3)
    other = euler + np.array([180.0, 0.0, 180.0])
    other[..., 1] = 180.0 - euler[..., 1]
    out = np.empty_like(euler)
    out[0] = euler[0]
    for t in range(1, T):
        cand = np.stack([euler[t], other[t]])  # (2, J, 3)
        cand += 360.0 * np.round((out[t - 1] - cand) / 360.0)
        dist = np.abs(cand - out[t - 1]).sum(-1)  # (2, J)
        out[t] = np.where((dist[0] <= dist[1])[:, None], cand[0], cand[1])
    return out


def _hierarchy(offsets: np.ndarray) -> list[str]:
    """HIERARCHY lines for (24, 3) joint offsets in file units (the root's is ignored)."""
    lines = ["HIERARCHY"]
    rot = " ".join(f"{axis}rotation" for axis in EULER_ORDER)

    def joint(j: int, depth: int) -> None:
        pad = "\t" * depth
        head = f"ROOT {SMPL_JOINT_NAMES[j]}" if j == 0 else f"JOINT {SMPL_JOINT_NAMES[j]}"
        off = np.zeros(3) if j == 0 else offsets[j]
        chans = f"CHANNELS 6 Xposition Yposition Zposition {rot}" if j == 0 else f"CHANNELS 3 {rot}"
        lines.extend([f"{pad}{head}", f"{pad}{{", f"{pad}\tOFFSET {_fmt(off)}", f"{pad}\t{chans}"])
        for child in _CHILDREN[j]:
            joint(child, depth + 1)
        if not _CHILDREN[j]:
            end = 0.5 * offsets[j]
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {_fmt(end)}",
                          f"{pad}\t}}"])  # fmt: skip
        lines.append(f"{pad}}}")

    joint(0, 0)
    return lines


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def _depth_first() -> list[int]:
    """Joint ids in the order the hierarchy lists them (the order of the motion columns)."""
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for child in _CHILDREN[j]:
            visit(child)

    visit(0)
    return order


def bvh_text(motion: PersonMotion, fps: float, units: str = "m") -> str:
    """The BVH file of one person (see the module docstring).

    Args:
        motion: the person's motion in the export world.
        fps: frames per second (``Frame Time`` = 1 / fps).
        units: ``"m"`` or ``"cm"``.
    """
    scale = UNITS[units]
    angles = continuous_euler(motion.rotations)  # (T, 24, 3)
    order = _depth_first()
    columns = [motion.root_position * scale] + [angles[:, j] for j in order]
    values = np.concatenate(columns, axis=1)
    lines = _hierarchy(motion.offsets * scale)
    lines += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [_fmt(row) for row in values]
    return "\n".join(lines) + "\n"


def bvh_paths(out: str | Path, names: list[str]) -> list[Path]:
    """Where each person's file goes: ``out`` ending in ``.bvh`` is a stem (``walk.bvh`` ->
    ``walk_person_<id>.bvh``), anything else a folder (``<out>/person_<id>.bvh``)."""
    out = Path(out)
    if out.suffix.lower() == ".bvh":
        return [out.with_name(f"{out.stem}_{name}.bvh") for name in names]
    return [out / f"{name}.bvh" for name in names]


def export_bvh(
    result: Result,
    body_model: BodyModel,
    out: str | Path,
    overwrite: bool = False,
    units: str = "m",
) -> list[Path]:
    """Write one BVH per person of ``result`` with a tracked frame (``bvh_paths``), the
    skeleton at the rest joints of ``body_model``; returns the files.

    Raises:
        FileExistsError: a file exists and ``overwrite`` is False (nothing is written then).
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {list(UNITS)}, got {units!r}")
    motions = person_motions(result, body_model, export_world_rotation(result))
    paths = bvh_paths(out, [m.name for m in motions])
    for path in paths:
        prepare_output(path, overwrite)
    for motion, path in zip(motions, paths, strict=True):
        text = bvh_text(motion, result.fps, units)
        write_file(path, text.encode())
    return paths
