"""Small random but valid body model files for tests (no licensed data needed).

``write_synthetic_smpl_pkl`` writes a SMPL-layout .pkl (24 joints, SMPL's tree): vertices in
clusters around a T-pose skeleton of plausible proportions, random normalised skinning weights
on each vertex's own joint and its neighbours, joint regressor rows that are random convex
combinations of a joint's own cluster, and ``keypoint_vertex_ids``.
"""

import pickle
from pathlib import Path

import numpy as np

SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18,
                         19, 20, 21])  # fmt: skip
# Rest joint positions of a ~1.7 m T-posed body: y up, facing +z, left on +x, pelvis at 0.
SKELETON = np.array([
    [0.00, 0.00, 0.00], [0.09, -0.08, 0.00], [-0.09, -0.08, 0.00], [0.00, 0.11, -0.02],
    [0.11, -0.48, 0.00], [-0.11, -0.48, 0.00], [0.00, 0.24, -0.01], [0.12, -0.88, -0.03],
    [-0.12, -0.88, -0.03], [0.00, 0.30, 0.01], [0.13, -0.94, 0.10], [-0.13, -0.94, 0.10],
    [0.00, 0.52, -0.02], [0.07, 0.45, -0.01], [-0.07, 0.45, -0.01], [0.00, 0.62, 0.02],
    [0.18, 0.44, -0.02], [-0.18, 0.44, -0.02], [0.44, 0.44, -0.03], [-0.44, 0.44, -0.03],
    [0.68, 0.44, -0.02], [-0.68, 0.44, -0.02], [0.77, 0.44, -0.02], [-0.77, 0.44, -0.02],
])  # fmt: skip
# Joint each keypoint vertex is drawn from: nose, eyes, ears -> head; toes -> feet; heels -> ankles.
KEYPOINT_JOINTS = (15, 15, 15, 15, 15, 10, 10, 7, 11, 11, 8)


def _neighbours(j: int) -> list[int]:
    return [j, *([SMPL_PARENTS[j]] if j else []), *np.flatnonzero(SMPL_PARENTS == j).tolist()]


def synthetic_smpl_dict(
    num_verts: int = 300, num_betas: int = 10, seed: int = 0, posedirs_nonzero: bool = True
) -> dict[str, np.ndarray]:
    """The arrays of a random SMPL-layout model (see the module docstring)."""
    if num_verts < 24 * 8:
        raise ValueError("num_verts must be >= 192 (8 vertices per joint)")
    rng = np.random.default_rng(seed)
    owner = np.arange(num_verts) % 24
    v_template = SKELETON[owner] + 0.04 * rng.standard_normal((num_verts, 3))
    weights = np.zeros((num_verts, 24))
    for v, j in enumerate(owner):
        nb = _neighbours(j)
        weights[v, nb] = rng.uniform(0.05, 1.0, len(nb))
        weights[v, j] += 1.0
    weights /= weights.sum(1, keepdims=True)
    J_regressor = np.zeros((24, num_verts))
    for j in range(24):
        members = rng.choice(np.flatnonzero(owner == j), 6, replace=False)
        J_regressor[j, members] = rng.uniform(0.2, 1.0, 6)
    J_regressor /= J_regressor.sum(1, keepdims=True)
    shapedirs = 0.01 * rng.standard_normal((num_verts, 3, num_betas))
    posedirs = 0.002 * rng.standard_normal((num_verts, 3, 207))
    if not posedirs_nonzero:
        posedirs[:] = 0.0
    faces = np.stack([rng.choice(num_verts, 3, replace=False) for _ in range(2 * num_verts)])
    kp = [np.flatnonzero(owner == j)[KEYPOINT_JOINTS[:k].count(j)]
          for k, j in enumerate(KEYPOINT_JOINTS)]  # fmt: skip
    return {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": J_regressor,
        "weights": weights,
        "kintree_table": np.stack([SMPL_PARENTS, np.arange(24)]),
        "f": faces.astype(np.int64),
        "keypoint_vertex_ids": np.array(kp, dtype=np.int64),
    }


def write_synthetic_smpl_pkl(
    path: str | Path,
    num_verts: int = 300,
    num_betas: int = 10,
    seed: int = 0,
    posedirs_nonzero: bool = True,
) -> Path:
    """Write a random but valid SMPL-layout .pkl (a dict of numpy arrays); return its path."""
    path = Path(path)
    data = synthetic_smpl_dict(num_verts, num_betas, seed, posedirs_nonzero)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    return path


def smplh_parents() -> np.ndarray:
    """(52,) SMPL-H parents: SMPL's 22 body joints, then 15 finger joints per hand (MANO order:
    index, middle, pinky, ring, thumb; three joints each, the first one on the wrist)."""
    parents = list(SMPL_PARENTS[:22])
    for wrist in (20, 21):
        for _ in range(5):
            start = len(parents)
            parents += [wrist, start, start + 1]
    return np.array(parents)


def write_synthetic_smplh_npz(path: str | Path, num_verts: int = 6890, seed: int = 0) -> Path:
    """Write a random SMPL-H-layout .npz (52 joints, hand PCA arrays) and return its path.

    The default 6890 vertices let smplx's SMPL-H keypoint vertex ids index the mesh.
    """
    rng = np.random.default_rng(seed)
    parents = smplh_parents()
    nj = len(parents)
    owner = np.arange(num_verts) % nj
    hand_pos = np.zeros((nj, 3))
    hand_pos[:22] = SKELETON[:22]
    for j in range(22, nj):
        hand_pos[j] = hand_pos[parents[j]] + [np.sign(hand_pos[parents[j], 0]) * 0.03, 0, 0.0]
    v_template = hand_pos[owner] + 0.02 * rng.standard_normal((num_verts, 3))
    weights = np.zeros((num_verts, nj))
    weights[np.arange(num_verts), owner] = 1.0
    weights[np.arange(num_verts), parents[np.maximum(owner, 1)]] += 0.3
    weights /= weights.sum(1, keepdims=True)
    J_regressor = np.zeros((nj, num_verts))
    for j in range(nj):
        members = np.flatnonzero(owner == j)
        J_regressor[j, members] = rng.uniform(0.2, 1.0, len(members))
    J_regressor /= J_regressor.sum(1, keepdims=True)
    np.savez(
        path,
        v_template=v_template,
        shapedirs=0.01 * rng.standard_normal((num_verts, 3, 16)).astype(np.float32),
        posedirs=0.002 * rng.standard_normal((num_verts, 3, (nj - 1) * 9)).astype(np.float32),
        J_regressor=J_regressor,
        weights=weights,
        kintree_table=np.stack([parents, np.arange(nj)]),
        f=np.stack([rng.choice(num_verts, 3, replace=False) for _ in range(num_verts)]),
        hands_componentsl=np.eye(45),
        hands_componentsr=np.eye(45),
        hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45),
    )
    return Path(path)
