"""Ground-truth bodies from motion capture: BVH skeleton -> SMPL joint targets -> fitted body.

The Bandai-Namco skeleton (22 joints, Y-up, centimetres) is mapped onto the 24 SMPL joints by the
table ``BANDAI_TO_SMPL``. Its world axes already match ours (y up; a performer walking toward +z
has the ``_L`` joints at +x, as SMPL's body at zero orientation does), so the only conversion is
centimetres -> metres; ``check_handedness`` verifies the left/right labels on every file.

``fit_body_to_joints`` (``slahmr_opt.mocap.fit``, re-exported here) then fits a body model
(shared betas, per-frame pose, orientation and translation) to the targets::

    motion = read_bvh(path)  # or iter_bandai_archive(archive, "eval")
    targets, weights = smpl_targets(motion)
    fit = fit_body_to_joints(body_model, targets, weights, FitSettings(), relative_terms(),
                             joint_rotations(motion))
"""

import logging
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from slahmr_opt.body.keypoints import SMPL_JOINT_NAMES
from slahmr_opt.errors import InputError
from slahmr_opt.mocap.bvh import BvhMotion, parse_bvh
from slahmr_opt.mocap.fit import (  # noqa: F401  (re-exported: the fitting API)
    BodyFit,
    FitSettings,
    RelativeTerms,
    fit_body_to_joints,
    fit_sequences,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JointSource:
    """Where one SMPL joint's target comes from in the BVH skeleton.

    Attributes:
        smpl: SMPL joint name (``slahmr_opt.body.keypoints.SMPL_JOINT_NAMES``).
        bvh: BVH joint name, or None when the joint has no counterpart (weight 0).
        weight: confidence of the absolute position in the fit's data term.
        anchor: SMPL joint (usually the parent) this joint is also fitted relative to: the
            bone vector ``J - J_anchor`` should match the BVH's. Limb joints use it so that a
            limb keeps its BVH shape where the skeletons' proportions differ.
        anchor_weight: weight of that relative term.
        along_bone: metres to move the target beyond the BVH joint, along the direction of the
            joint's own OFFSET expressed in its (rotated) frame; makes a virtual end point.
        note: why the pairing and weight are what they are.
    """

    smpl: str
    bvh: str | None
    weight: float
    anchor: str | None = None
    anchor_weight: float = 0.0
    along_bone: float = 0.0
    note: str = ""


_LEFT_RIGHT = (("left_", "_L"), ("right_", "_R"))


def _limb(smpl: str, bvh: str, weight: float, anchor: str | None, **kw) -> list[JointSource]:
    """The left and right versions of a limb joint (``bvh`` without side, ``smpl`` likewise)."""
    return [
        JointSource(side + smpl, bvh + suffix, weight, anchor and side + anchor, **kw)
        for side, suffix in _LEFT_RIGHT
    ]


# Built for the built-in default body, whose torso is longer and whose hips (22 cm apart) and
# shoulders (35 cm) are wider than the Bandai skeleton's (13 cm, 20 cm). Absolute positions would
# pull the limbs inward (into the torso) and bend the trunk to make up for it, so limbs are fitted
# as bone vectors from their parent joint (``anchor``) with weak absolute terms, the torso by
# directions (``BANDAI_DIRECTIONS``), and the pelvis, which both skeletons place alike, absolutely.
BANDAI_TO_SMPL = (
    JointSource("pelvis", "Hips", 1.0, note="both ~2 cm above the hip joints' line"),
    *_limb("hip", "UpperLeg", 0.2, None, note="upper-leg origin; hip widths differ"),
    JointSource("spine1", None, 0.0, note="no counterpart"),
    *_limb("knee", "LowerLeg", 0.1, "hip", anchor_weight=1.0),
    JointSource("spine2", "Spine", 0.05, note="torso lengths differ: mainly a direction"),
    *_limb("ankle", "Foot", 0.1, "knee", anchor_weight=1.0),
    JointSource("spine3", "Chest", 0.05),
    *_limb("foot", "Toes", 0.1, "ankle", anchor_weight=1.0, note="toe base: ankle rotation"),
    JointSource("neck", "Neck", 0.05),
    *_limb("collar", "Shoulder", 0.05, None, note="clavicle roots differ by a few cm"),
    JointSource("head", "Head", 0.05),
    *_limb("shoulder", "UpperArm", 0.1, None),
    *_limb("elbow", "LowerArm", 0.1, "shoulder", anchor_weight=1.0),
    *_limb("wrist", "Hand", 0.1, "elbow", anchor_weight=1.0),
    *_limb("hand", "Hand", 0.0, "wrist", anchor_weight=0.5, along_bone=0.08,
           note="virtual: 8 cm along the hand (no BVH end point); sets the wrist rotation"),
)  # fmt: skip
BANDAI_DIRECTIONS = (
    ("pelvis", "spine2", 1.0),
    ("spine2", "spine3", 0.5),
    ("spine3", "neck", 1.0),
    ("neck", "head", 1.0),
    ("left_collar", "left_shoulder", 0.5),
    ("right_collar", "right_shoulder", 0.5),
)
"""Bone directions of the torso, neck and clavicles, ``(from, to, weight)`` in SMPL names: the
body's ``unit(J_to - J_from)`` should match the same direction between their targets."""

BANDAI_SCALE = 0.01
"""Bandai-Namco BVH files are in centimetres."""
BANDAI_TO_WORLD = np.eye(3)
"""Rotation from Bandai axes to ours: identity (both y up, right-handed, same facing rule)."""

BANDAI_ROTATIONS = (
    ("pelvis", "Hips", ((0, 1, 0), (-1, 0, 0), (0, 0, 1)), 1.0),
    ("head", "Head", ((0, 1, 0), (0, 0, 1), (1, 0, 0)), 0.5),
)
"""Joint rotations taken from the BVH, ``(smpl, bvh, axes, weight)``: ``axes`` (3x3, rows x y z
of the BVH joint's frame) has as columns the body's left, up and forward axes in that frame
(Hips: x up the spine, y right, z forward; Head: x up, y forward, z left). The pelvis pitch and
the head's turn are otherwise unobserved (joint positions cannot tell them)."""

_TAKE = re.compile(r"(\d+)(?!.*\d)")


def split_of(name: str) -> str:
    """The fixed data split of a mocap file: ``"eval"`` if its take number ends in 0, else
    ``"train"`` (the take number is the last number in the file name)."""
    match = _TAKE.search(Path(name).stem)
    if match is None:
        raise InputError(name, "file name has no take number")
    return "eval" if match.group(1).endswith("0") else "train"


def iter_bandai_archive(archive: str | Path, split: str | None = None) -> Iterator[BvhMotion]:
    """Read the BVH files of a Bandai-Namco ``.tar.xz`` archive in archive order.

    Args:
        archive: path of the archive.
        split: ``"train"``, ``"eval"`` or None for every file.

    Yields:
        Each motion (``source`` is the file name, without folders), in metres.
    """
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            name = Path(member.name).name
            if not name.endswith(".bvh") or (split is not None and split_of(name) != split):
                continue
            text = tar.extractfile(member).read().decode("utf-8")
            yield parse_bvh(text, source=name, scale=BANDAI_SCALE)


def smpl_targets(
    motion: BvhMotion,
    table: tuple[JointSource, ...] = BANDAI_TO_SMPL,
    to_world: np.ndarray = BANDAI_TO_WORLD,
) -> tuple[np.ndarray, np.ndarray]:
    """SMPL joint targets from a BVH motion.

    Args:
        motion: the BVH motion (positions already in metres).
        table: ``JointSource`` entries; SMPL joints it does not name get weight 0.
        to_world: (3, 3) rotation from the file's axes to ours (``rigs.Rig.to_world``).

    Returns:
        joints_target (T, 24, 3) in our world frame, metres (zeros where unmapped), and
        weights (24,).
    """
    skel = motion.skeleton
    targets = np.zeros((motion.num_frames, len(SMPL_JOINT_NAMES), 3))
    weights = np.zeros(len(SMPL_JOINT_NAMES))
    for src in table:
        if src.bvh is None:
            continue
        k = SMPL_JOINT_NAMES.index(src.smpl)
        j = skel.index(src.bvh)
        targets[:, k] = motion.positions[:, j]
        if src.along_bone:
            direction = skel.offsets[j] / np.linalg.norm(skel.offsets[j])
            targets[:, k] += src.along_bone * motion.rotations[:, j] @ direction
        weights[k] = src.weight
    return targets @ np.asarray(to_world).T, weights


def joint_rotations(
    motion: BvhMotion, table=BANDAI_ROTATIONS, to_world: np.ndarray = BANDAI_TO_WORLD
) -> np.ndarray:
    """(T, K, 3, 3) global rotation targets (body frame to world) of ``table``'s joints.

    Args:
        motion: the BVH motion.
        table: ``(smpl, bvh, axes, weight)`` entries (see ``BANDAI_ROTATIONS``).
        to_world: (3, 3) rotation from the file's axes to ours.
    """
    rots = [motion.rotations[:, motion.skeleton.index(bvh)] @ np.asarray(axes, dtype=float)
            for _, bvh, axes, _ in table]  # fmt: skip
    return np.asarray(to_world) @ np.stack(rots, axis=1)


def facing_directions(joints: np.ndarray) -> np.ndarray:
    """(T, 3) unit horizontal forward direction of the body, from the hips: ``left x up``.

    Args:
        joints: (T, 24, 3) SMPL-ordered joints, y up.
    """
    left = joints[:, 1] - joints[:, 2]
    forward = np.cross(left, np.array([0.0, 1.0, 0.0]))
    forward[:, 1] = 0.0
    return forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)


def check_handedness(joints: np.ndarray, source: str = "") -> float:
    """Check that the left/right labels agree with the knees: bent knees point forward.

    The facing comes from the hips (``left x up``); a knee only bends one way, so wherever it is
    bent its point lies ahead of the hip-ankle line. Mirrored data or swapped labels fail this.

    Args:
        joints: (T, 24, 3) SMPL-ordered joints, y up, with hips, knees and ankles filled in.
        source: file name for the error message.

    Returns:
        Fraction of bent knees (over frames and both sides) that point where the hips face.

    Raises:
        InputError: most bent knees point backward.
    """
    bend = joints[:, [4, 5]] - 0.5 * (joints[:, [1, 2]] + joints[:, [7, 8]])
    bent = np.linalg.norm(bend, axis=-1) > 0.02
    ahead = np.einsum("tkc,tc->tk", bend, facing_directions(joints)) > 0
    agree = float(ahead[bent].mean()) if bent.any() else 1.0
    if agree < 0.5:
        raise InputError(source, f"left/right look mirrored: bent knees point backward in "
                         f"{100 * (1 - agree):.0f}% of frames")  # fmt: skip
    return agree


def relative_terms(
    table: tuple[JointSource, ...] = BANDAI_TO_SMPL,
    directions: tuple[tuple[str, str, float], ...] = BANDAI_DIRECTIONS,
    rotations: tuple = BANDAI_ROTATIONS,
) -> RelativeTerms:
    """Relative, direction and rotation terms of a correspondence (defaults: Bandai-Namco)."""
    terms = RelativeTerms()
    for src in table:
        if src.anchor is not None and src.bvh is not None:
            terms.anchors[SMPL_JOINT_NAMES.index(src.smpl)] = SMPL_JOINT_NAMES.index(src.anchor)
            terms.anchor_weights[SMPL_JOINT_NAMES.index(src.smpl)] = src.anchor_weight
    pairs = [(SMPL_JOINT_NAMES.index(a), SMPL_JOINT_NAMES.index(b)) for a, b, _ in directions]
    return replace(
        terms,
        directions=np.asarray(pairs, dtype=np.int64).reshape(-1, 2),
        direction_weights=np.asarray([w for *_, w in directions], dtype=np.float64),
        rotation_joints=np.asarray([SMPL_JOINT_NAMES.index(r[0]) for r in rotations], np.int64),
        rotation_weights=np.asarray([r[-1] for r in rotations], dtype=np.float64),
    )
