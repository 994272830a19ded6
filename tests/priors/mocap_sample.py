"""A tiny motion capture archive in the Bandai-Namco layout, made from the built-in body.

The priors' data preparation reads ``bandai-namco-2.tar.xz`` (22 joints, six channels each,
centimetres, y up, 30 fps; ``slahmr_opt.mocap.targets``). ``write_archive`` writes a few short walks
in that layout: the built-in body is posed by a hand-made gait (a different speed, heading, turn,
stride and shape per file), and each BVH joint is placed at its SMPL counterpart, with the SMPL
joint's world rotation (the pelvis and the head turned into the Bandai joint axes of
``BANDAI_ROTATIONS``). Nothing here needs ``../shared``.
"""

import io
import tarfile
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.body import SMPL_JOINT_NAMES, SMPL_PARENTS, BodyConfig, load_body_model
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.mocap.targets import BANDAI_ROTATIONS

FPS = 30.0
#: Bandai joints in file order (depth first): name, parent name, SMPL joint it sits on.
JOINTS = (
    ("joint_Root", None, None),
    ("Hips", "joint_Root", "pelvis"),
    ("Spine", "Hips", "spine2"),
    ("Chest", "Spine", "spine3"),
    ("Neck", "Chest", "neck"),
    ("Head", "Neck", "head"),
    *(
        joint
        for side, smpl in (("L", "left"), ("R", "right"))
        for joint in (
            (f"Shoulder_{side}", "Chest", f"{smpl}_collar"),
            (f"UpperArm_{side}", f"Shoulder_{side}", f"{smpl}_shoulder"),
            (f"LowerArm_{side}", f"UpperArm_{side}", f"{smpl}_elbow"),
            (f"Hand_{side}", f"LowerArm_{side}", f"{smpl}_wrist"),
        )
    ),
    *(
        joint
        for side, smpl in (("L", "left"), ("R", "right"))
        for joint in (
            (f"UpperLeg_{side}", "Hips", f"{smpl}_hip"),
            (f"LowerLeg_{side}", f"UpperLeg_{side}", f"{smpl}_knee"),
            (f"Foot_{side}", f"LowerLeg_{side}", f"{smpl}_ankle"),
            (f"Toes_{side}", f"Foot_{side}", f"{smpl}_foot"),
        )
    ),
)
CHANNELS = "Xposition Yposition Zposition Zrotation Xrotation Yrotation"
#: Joints with no child in ``JOINTS``: they get an End Site.
LEAVES = ("Head", "Hand_L", "Hand_R", "Toes_L", "Toes_R")


def gait(num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A hand-made walk: ``root_orient (T, 3)``, ``trans (T, 3)`` (height 0),
    ``pose_body (T, 21, 3)``, ``betas (10,)``; float64, y up, about +z at 0.6-1.4 m/s."""
    t = np.arange(num_frames) / FPS
    heading = rng.uniform(-np.pi, np.pi) + rng.uniform(-0.4, 0.4) * t  # turning, rad
    speed = rng.uniform(0.6, 1.4)
    step = np.stack([np.sin(heading), np.zeros_like(t), np.cos(heading)], -1) * speed / FPS
    trans = np.cumsum(step, 0)
    root = np.zeros((num_frames, 3))
    root[:, 1] = heading
    phase = 2 * np.pi * rng.uniform(0.8, 1.1) * t + rng.uniform(0, 2 * np.pi)
    swing = rng.uniform(0.3, 0.5)
    pose = 0.03 * rng.normal(size=(num_frames, 21, 3))
    pose[:, 0, 0], pose[:, 1, 0] = -swing * np.sin(phase), swing * np.sin(phase)  # hips
    pose[:, 3, 0] = swing * (1 + np.sin(phase))  # knees bend forward (positive x)
    pose[:, 4, 0] = swing * (1 - np.sin(phase))
    pose[:, 15, 2], pose[:, 16, 2] = -1.2, 1.2  # shoulders: arms down
    pose[:, 17, 1], pose[:, 18, 1] = -0.3, 0.3  # elbows a little bent
    return root, trans, pose, 0.5 * rng.normal(size=10)


def _posed(body, root, trans, pose, betas) -> tuple[np.ndarray, np.ndarray]:
    """World joints (T, 24, 3), lifted so the lowest toe base is 3 cm above the floor, and
    world joint rotations (T, 24, 3, 3)."""
    T = len(root)
    f64 = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    with torch.no_grad():
        out = body(betas=f64(betas).expand(T, -1), global_orient=f64(root),
                   body_pose=f64(pose), transl=f64(trans))  # fmt: skip
    joints = out.joints[:, :24].numpy().copy()
    foot = [SMPL_JOINT_NAMES.index(n) for n in ("left_foot", "right_foot")]
    joints[..., 1] += 0.03 - joints[:, foot, 1].min()
    local = rotvec_to_rotmat(f64(np.concatenate([root[:, None], pose], 1))).numpy()
    rots = np.zeros((T, 24, 3, 3))
    rots[:, 0] = local[:, 0]
    for j in range(1, 24):  # hands (22, 23) have no pose of their own: their parent's rotation
        own = local[:, j] if j < 22 else np.eye(3)
        rots[:, j] = rots[:, SMPL_PARENTS[j]] @ own
    return joints, rots


def bvh_text(joints: np.ndarray, rots: np.ndarray) -> str:
    """A Bandai-layout BVH (centimetres) placing its joints on SMPL joints (T, 24, 3) with SMPL
    world rotations (T, 24, 3, 3)."""
    T = len(joints)
    axes = {bvh: np.asarray(a, dtype=float) for smpl, bvh, a, _ in BANDAI_ROTATIONS}
    names = [name for name, _, _ in JOINTS]
    pos = np.zeros((T, len(JOINTS), 3))
    rot = np.tile(np.eye(3), (T, len(JOINTS), 1, 1))
    for i, (name, _, smpl) in enumerate(JOINTS):
        if smpl is not None:
            k = SMPL_JOINT_NAMES.index(smpl)
            pos[:, i] = 100.0 * joints[:, k]
            # the BVH joint's frame is such that rot @ axes is the body's frame (mocap.py)
            rot[:, i] = rots[:, k] @ axes[name].T if name in axes else rots[:, k]
    values, offsets = [], []
    for i, (_, parent, _) in enumerate(JOINTS):
        if parent is None:
            local_pos, local_rot = pos[:, i], rot[:, i]
        else:
            p = names.index(parent)
            R_p = rot[:, p].transpose(0, 2, 1)
            local_pos = (R_p @ (pos[:, i] - pos[:, p])[..., None])[..., 0]
            local_rot = R_p @ rot[:, i]
        euler = Rotation.from_matrix(local_rot).as_euler("ZXY", degrees=True)
        values.append(np.concatenate([local_pos, euler], -1))
        offsets.append(local_pos[0])
    lines = ["HIERARCHY"]

    def write(i: int, depth: int) -> None:
        name, _, _ = JOINTS[i]
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {name}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.4f}' for v in offsets[i])}")
        lines.append(f"{pad}  CHANNELS 6 {CHANNELS}")
        for c, (_, parent, _) in enumerate(JOINTS):
            if parent == name:
                write(c, depth + 1)
        if name in LEAVES:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0.0 5.0 0.0",
                          f"{pad}  }}"])  # fmt: skip
        lines.append(f"{pad}}}")

    write(0, 0)
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1 / FPS:.6f}"]
    frames = np.concatenate(values, -1)
    lines += [" ".join(f"{v:.5f}" for v in row) for row in frames]
    return "\n".join(lines) + "\n"


def write_archive(path: Path, takes: dict[str, int], seed: int = 0) -> Path:
    """Write a ``.tar.xz`` of walks ``dataset-2_walk_normal_<take>.bvh`` of ``takes[take]``
    frames each (the take's last digit picks the split: 0 evaluation, else training)."""
    body = load_body_model(BodyConfig()).double()
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:xz") as tar:
        for take, frames in takes.items():
            text = bvh_text(*_posed(body, *gait(frames, rng))).encode()
            info = tarfile.TarInfo(f"Bandai-Namco-Research-Motiondataset-2/data/"
                                   f"dataset-2_walk_normal_{take}.bvh")  # fmt: skip
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    return path
