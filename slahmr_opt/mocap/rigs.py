"""Which skeleton a BVH file uses, and how it maps onto the 24 SMPL joints, in which units and axes.

Two rigs are known by their full joint sets:

* **Bandai-Namco** (the data the shipped priors were trained on): ``Hips``, ``UpperLeg_L``, ...;
  centimetres, y up; the tables of ``slahmr_opt.mocap.targets``. Only this rig has the fixed
  evaluation split (take number ending in 0, ``targets.split_of``).
* **CMU** in the cgspeed "BVH conversion" (``LHipJoint``, ``LeftUpLeg``, ``LowerBack``, ``Neck1``,
  ...; 120 fps): its unit is the CMU ASF length unit, 1/0.45 inch (``CMU_UNIT``).

Any other humanoid rig is mapped by joint names (``map_joint_names``): the name is lower-cased,
stripped of a namespace prefix (``mixamorig:``) and separators, and matched against side-free
aliases with a side prefix or suffix (``LeftUpLeg``, ``LeftHip``, ``L_Hip``, ``thigh_l``,
``mixamorig:LeftUpLeg``). Joints at zero offset from their parent (CMU's ``LHipJoint``,
``LeftShoulder``, ``Neck``) are passed over: they add no point of their own.

Units (metres per file unit): the rig's own unit where it has one and it gives a plausible leg,
else the unit among ``UNITS`` that makes the rest skeleton's hip-to-ankle length closest to
``TYPICAL_LEG`` (0.85 m); a file where no unit gives a leg in ``LEG_RANGE`` is refused.

Axes: the rest pose (every channel zero) of rigs other than Bandai-Namco must stand upright along
+Y (kept) or +Z (turned to +Y); any other rest pose is refused. The body frame of that rest pose
(left: hip to hip, up: hips to head, forward: left x up) gives the pelvis and head rotation
targets, as ``targets.BANDAI_ROTATIONS`` does for Bandai-Namco.
"""

import math
import re
from dataclasses import dataclass

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.mocap.bvh import BvhSkeleton
from slahmr_opt.mocap.targets import (
    BANDAI_DIRECTIONS,
    BANDAI_ROTATIONS,
    BANDAI_SCALE,
    BANDAI_TO_SMPL,
    BANDAI_TO_WORLD,
    JointSource,
)

CMU_UNIT = 0.0254 / 0.45
"""Metres per unit of the CMU ASF/BVH files (the ASF length unit is 1/0.45 inch)."""
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "CMU unit": CMU_UNIT}
LEG_RANGE = (0.5, 1.3)
"""Plausible hip-to-ankle length of an adult, metres (rest pose, both bones)."""
TYPICAL_LEG = 0.85
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rotation taking a Z-up file's axes to ours (y up): ``(x, y, z) -> (x, z, -y)``."""
_LIMBS = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
REQUIRED = ("pelvis", "head", *(f"{side}_{j}" for j in _LIMBS for side in ("left", "right")))
"""SMPL joints a rig must give for a body to be fitted."""

_CMU_MARKS = frozenset({"LHipJoint", "RHipJoint", "LowerBack", "Spine1", "Neck1", "LeftUpLeg"})
_BANDAI_NAMES = frozenset(s.bvh for s in BANDAI_TO_SMPL if s.bvh is not None)

# Side-free aliases, most specific first. "shoulder" is the SMPL shoulder only in rigs that have
# no upper-arm joint (LeftShoulder/LeftElbow/LeftWrist); with LeftArm it is the collar.
_LIMB_ALIASES = {
    "hip": ("upleg", "upperleg", "hip", "thigh", "femur"),
    "knee": ("lowerleg", "knee", "shin", "calf", "leg", "tibia", "lowleg"),
    "ankle": ("ankle", "foot"),
    "foot": ("toebase", "toe", "toes", "ball"),
    "shoulder": ("arm", "upperarm", "uparm", "humerus", "shoulder"),
    "elbow": ("forearm", "lowerarm", "elbow", "radius"),
    "wrist": ("wrist", "hand"),
    "collar": ("collar", "clavicle", "shoulder"),
}
_SIDES = {"left": ("left", "l"), "right": ("right", "r")}


@dataclass(frozen=True)
class Rig:
    """How one skeleton becomes SMPL joint targets.

    Attributes:
        name: ``bandai-namco``, ``cmu`` or ``by-name`` (mapped by joint names).
        table: ``JointSource`` entries (``targets.smpl_targets``).
        directions: ``(from, to, weight)`` bone directions in SMPL names.
        rotations: ``(smpl, bvh, axes, weight)`` rotation targets (``targets.joint_rotations``).
        to_world: (3, 3) rotation from the file's axes to ours (y up).
        scale: metres per file unit.
        has_split: the fixed evaluation split applies to its files (Bandai-Namco only).
    """

    name: str
    table: tuple[JointSource, ...]
    directions: tuple[tuple[str, str, float], ...]
    rotations: tuple
    to_world: np.ndarray
    scale: float
    has_split: bool = False


BANDAI = Rig("bandai-namco", BANDAI_TO_SMPL, BANDAI_DIRECTIONS, BANDAI_ROTATIONS, BANDAI_TO_WORLD,
             BANDAI_SCALE, has_split=True)  # fmt: skip


def _key(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name.rsplit(":", 1)[-1].lower())


def rest_positions(skeleton: BvhSkeleton) -> np.ndarray:
    """(J, 3) joint positions of the rest pose (every channel zero), in file units."""
    pos = np.zeros((skeleton.num_joints, 3))
    for j, parent in enumerate(skeleton.parents):
        pos[j] = skeleton.offsets[j] + (pos[parent] if parent >= 0 else 0.0)
    return pos


def _ancestors(skeleton: BvhSkeleton, j: int) -> list[int]:
    chain = []
    while skeleton.parents[j] >= 0:
        j = int(skeleton.parents[j])
        chain.append(j)
    return chain


def map_joint_names(skeleton: BvhSkeleton) -> dict[str, str]:
    """SMPL joint name -> BVH joint name, for the joints the names tell (module docstring)."""
    names = skeleton.names
    keys = {_key(n): i for i, n in reversed(list(enumerate(names)))}
    has_point = [i == 0 or bool(np.linalg.norm(skeleton.offsets[i]) > 1e-9)
                 for i in range(len(names))]  # fmt: skip
    found: dict[str, int] = {}
    for side, prefixes in _SIDES.items():
        used: set[int] = set()
        for joint, aliases in _LIMB_ALIASES.items():
            for alias in aliases:
                hits = [keys[k] for p in prefixes for k in (p + alias, alias + p) if k in keys]
                hits = [i for i in hits if i not in used and has_point[i]]
                if hits:
                    found[f"{side}_{joint}"] = hits[0]
                    used.add(hits[0])
                    break
    for joint, aliases in (("pelvis", ("hips", "pelvis", "hip", "root")), ("head", ("head",))):
        hit = next((keys[a] for a in aliases if a in keys), None)
        if hit is not None:
            found[joint] = hit
    if "pelvis" not in found and names:
        found["pelvis"] = 0
    if "head" in found:
        _map_spine(skeleton, found, has_point)
    return {smpl: names[i] for smpl, i in found.items()}


def _map_spine(skeleton: BvhSkeleton, found: dict[str, int], has_point: list[bool]) -> None:
    """Neck and spine1..3 from the joints between the pelvis and the head."""
    chain = _ancestors(skeleton, found["head"])
    if found["pelvis"] not in chain:
        return
    chain = [j for j in reversed(chain[: chain.index(found["pelvis"])]) if has_point[j]]
    if chain and "neck" in _key(skeleton.names[chain[-1]]):
        found["neck"] = chain.pop()
    arm = found.get("left_collar", found.get("left_shoulder"))
    top = next((j for j in _ancestors(skeleton, arm) if j in chain), None) if arm else None
    if not chain:
        return
    top = chain[-1] if top is None else top
    found["spine3"] = top
    below = chain[: chain.index(top)]
    if below:
        found["spine1"] = below[0]
    if len(below) > 1:
        found["spine2"] = below[len(below) // 2] if len(below) > 2 else below[1]


def _table(mapped: dict[str, str]) -> tuple[JointSource, ...]:
    """The correspondence of a rig mapped by names: limbs as bone vectors from their parent,
    the torso by directions; the root's position is left free (rigs place it differently:
    CMU's ``Hips`` is 10 cm above its hip joints, SMPL's pelvis 1.5 cm)."""

    def src(smpl, weight, anchor=None, anchor_weight=0.0, **kw):
        bvh = mapped.get(smpl)
        if bvh is None or (anchor is not None and anchor not in mapped):
            anchor, anchor_weight = None, 0.0
        return JointSource(smpl, bvh, weight if bvh else 0.0, anchor, anchor_weight, **kw)

    rows = [src("pelvis", 0.0)]
    for s in ("left", "right"):
        rows += [
            src(f"{s}_hip", 0.5),
            src(f"{s}_knee", 0.1, f"{s}_hip", 1.0),
            src(f"{s}_ankle", 0.1, f"{s}_knee", 1.0),
            src(f"{s}_foot", 0.1, f"{s}_ankle", 1.0),
            src(f"{s}_collar", 0.05),
            src(f"{s}_shoulder", 0.1),
            src(f"{s}_elbow", 0.1, f"{s}_shoulder", 1.0),
            src(f"{s}_wrist", 0.1, f"{s}_elbow", 1.0),
        ]
        hand = mapped.get(f"{s}_wrist")
        rows.append(JointSource(f"{s}_hand", hand, 0.0, f"{s}_wrist", 0.5, along_bone=0.08,
                                note="virtual: 8 cm along the hand"))  # fmt: skip
    rows += [src(j, 0.05) for j in ("spine1", "spine2", "spine3", "neck", "head")]
    return tuple(r for r in rows if r.bvh is not None or r.smpl in ("pelvis",))


def _directions(mapped: dict[str, str]) -> tuple[tuple[str, str, float], ...]:
    trunk = [j for j in ("pelvis", "spine1", "spine2", "spine3", "neck", "head") if j in mapped]
    dirs = [(a, b, 1.0 if k in (0, len(trunk) - 2) else 0.5)
            for k, (a, b) in enumerate(zip(trunk, trunk[1:]))]  # fmt: skip
    dirs += [(f"{s}_collar", f"{s}_shoulder", 0.5) for s in ("left", "right")
             if f"{s}_collar" in mapped]  # fmt: skip
    return tuple(dirs)


def _rest_frame(skeleton: BvhSkeleton, mapped: dict[str, str], source: str):
    """Body frame of the rest pose in file axes (columns left, up, forward) and the rotation
    from the file's axes to ours."""
    rest = rest_positions(skeleton)
    at = {k: rest[skeleton.index(v)] for k, v in mapped.items()}
    left = at["left_hip"] - at["right_hip"]
    up = at["head"] - 0.5 * (at["left_hip"] + at["right_hip"])
    if np.linalg.norm(left) < 1e-9 or np.linalg.norm(up) < 1e-9:
        raise InputError(source, "rest pose has the hips or the head on one point")
    left = left / np.linalg.norm(left)
    up = up - (up @ left) * left
    up = up / np.linalg.norm(up)
    frame = np.stack([left, up, np.cross(left, up)], axis=-1)
    if up[1] > 0.9:
        return frame, np.eye(3)
    if up[2] > 0.9:
        return frame, Z_UP_TO_Y_UP
    raise InputError(source, f"rest pose (every channel zero) is not upright along +Y or +Z "
                     f"(hips-to-head direction {np.round(up, 2).tolist()}): cannot tell the up "
                     f"axis")  # fmt: skip


def leg_length(skeleton: BvhSkeleton, mapped: dict[str, str]) -> float:
    """Rest hip-to-knee plus knee-to-ankle length, mean of both sides, file units."""
    rest = rest_positions(skeleton)
    lengths = []
    for s in ("left", "right"):
        hip, knee, ankle = (rest[skeleton.index(mapped[f"{s}_{j}"])] for j in _LIMBS[:3])
        lengths.append(np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee))
    return float(np.mean(lengths))


def choose_scale(leg_units: float, preferred: float | None, source: str) -> float:
    """Metres per file unit (module docstring: the rig's unit if plausible, else the unit of
    ``UNITS`` giving a leg closest to ``TYPICAL_LEG``)."""
    lo, hi = LEG_RANGE
    if preferred is not None and lo <= leg_units * preferred <= hi:
        return preferred
    if leg_units > 0:
        best = min(UNITS.values(), key=lambda u: abs(math.log(leg_units * u / TYPICAL_LEG)))
        if lo <= leg_units * best <= hi:
            return best
    raise InputError(source, f"cannot tell the length unit: the rest hip-to-ankle length is "
                     f"{leg_units:.4g} file units, a plausible leg ({lo}-{hi} m) in none of "
                     f"{', '.join(UNITS)}")  # fmt: skip


def detect_rig(skeleton: BvhSkeleton, source: str) -> Rig:
    """The rig of ``skeleton`` (module docstring).

    Raises:
        InputError: the joints of ``REQUIRED`` cannot all be mapped (naming those missing), the
            rest pose is not upright along +Y or +Z, or no unit gives a plausible leg length.
    """
    if _BANDAI_NAMES <= set(skeleton.names):
        return BANDAI
    mapped = map_joint_names(skeleton)
    missing = [j for j in REQUIRED if j not in mapped]
    if missing:
        raise InputError(source, f"unknown skeleton: cannot map the SMPL joints {missing} "
                         f"(known rigs: Bandai-Namco, CMU, Mixamo and names such as LeftUpLeg "
                         f"or LeftHip, LeftLeg or LeftKnee, LeftFoot or LeftAnkle, LeftArm, "
                         f"LeftForeArm or LeftElbow, LeftHand or LeftWrist, Head)")  # fmt: skip
    is_cmu = _CMU_MARKS <= set(skeleton.names)
    frame, to_world = _rest_frame(skeleton, mapped, source)
    scale = choose_scale(leg_length(skeleton, mapped), CMU_UNIT if is_cmu else None, source)
    rotations = (("pelvis", mapped["pelvis"], frame, 1.0), ("head", mapped["head"], frame, 0.5))
    return Rig("cmu" if is_cmu else "by-name", _table(mapped), _directions(mapped), rotations,
               to_world, scale)  # fmt: skip


__all__ = ["BANDAI", "CMU_UNIT", "REQUIRED", "Rig", "detect_rig", "map_joint_names"]
