"""Build slahmr-opt's built-in default body model from the CC0 MakeHuman assets shipped in `anny`.

The result is a file in SMPL's own .pkl layout (a pickled dict of numpy arrays), readable by
``smplx.SMPL(model_path=...)`` and by slahmr_opt's native loader:

- mesh: anny's MakeHuman-derived ``anny-noeyes-notongue`` topology, decimated by quadric
  half-edge collapses to a subset of its vertices (so every per-vertex quantity is exact);
- rest pose: SMPL's conventions (metres, y up, facing +z, left side on +x, T-pose with
  horizontal arms, pelvis joint at the origin);
- ``shapedirs``: a PCA of T-posed anny bodies sampled around a neutral adult (phenotypes and
  body-proportion local changes), each component scaled to one standard deviation;
- ``J_regressor``: per joint, a sparse convex combination of a ring of vertices around the joint,
  fitted by non-negative least squares so that it reproduces anny's bone heads for all samples;
- ``weights``: anny's bone weights summed into SMPL's 24 parts;
- ``posedirs``: zeros (anny has no pose-corrective blend shapes), stored as float16.

Only this script imports anny; neither slahmr_opt nor its tests do. Run it in a throwaway
virtualenv (anny pulls warp-lang and friends)::

    python3 -m venv /tmp/annyvenv
    /tmp/annyvenv/bin/pip install torch==2.13.0 && /tmp/annyvenv/bin/pip install anny==0.6.2 \
        smplx==0.1.28 scipy matplotlib
    ANNY_CACHE_DIR=/tmp/annycache /tmp/annyvenv/bin/python scripts/build_default_body.py \
        --out slahmr_opt/body/data/default_body.pkl

Licences: anny's code is Apache-2.0 (NAVER); the MakeHuman assets it ships under
``anny/data/mpfb2`` (base mesh, targets, rig weights) are CC0 1.0. Only those assets flow into
the output; anny's non-commercial SMPL/SMPL-X topologies are never touched.
"""

import argparse
import heapq
import logging
import pickle
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

log = logging.getLogger("build_default_body")

SMPL_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
)
SMPL_JOINT_NAMES = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle", "R_ankle",
    "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head", "L_shoulder",
    "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand", "R_hand",
)  # fmt: skip
KEYPOINT_VERTEX_NAMES = (
    "nose", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe",
    "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
# anny works in z-up, facing -y; SMPL in y-up, facing +z. Both put the body's left on +x.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
ANNY_TOPOLOGY = "anny-noeyes-notongue"
# Body-proportion local changes sampled with the phenotypes (sided ones get one value for both).
LOCAL_CHANGES = (
    "measure-upperarm-length-incr", "measure-lowerarm-length-incr", "upperlegs-height-incr",
    "lowerlegs-height-incr", "measure-shoulder-dist-incr", "torso-scale-horiz-incr",
    "torso-scale-depth-incr", "hip-scale-horiz-incr", "measure-neck-height-incr",
    "measure-napetowaist-dist-incr", "head-scale-vert-incr", "stomach-pregnant-incr",
    "buttocks-volume-incr", "foot-scale-incr", "hand-scale-incr", "upperarm-fat-incr",
    "upperleg-fat-incr",
)  # fmt: skip


def side_of(label: str) -> str:
    return "L" if label.endswith(".L") else "R"


def smpl_part_of_bone(label: str) -> int:
    """The SMPL part (0..23) whose joint rotates the vertices anny weights to ``label``."""
    base = label.split(".")[0]
    lr = 0 if label.endswith(".L") else 1
    if base in ("root", "pelvis", "spine05"):
        return 0
    if base in ("spine04", "spine03"):
        return 3
    if base == "spine02":
        return 6
    if base == "spine01":
        return 9
    if base.startswith("neck"):
        return 12
    if base in ("head", "eye"):
        return 15
    table = {"upperleg": 1, "lowerleg": 4, "foot": 7, "toe": 10, "clavicle": 13, "shoulder": 13,
             "upperarm": 16, "lowerarm": 18, "wrist": 20, "metacarpal": 20}  # fmt: skip
    if base == "finger1-1":  # the thumb's metacarpal moves with the palm
        return 20 + lr
    if base.startswith("finger"):
        return 22 + lr
    for prefix, part in table.items():
        if base.startswith(prefix):
            return part + lr
    raise ValueError(f"unmapped anny bone {label}")


def smpl_joint_bones(labels: list[str]) -> list[list[int]]:
    """Per SMPL joint, the anny bones whose mean head is the joint (in the rest skeleton)."""
    idx = {name: i for i, name in enumerate(labels)}
    out = []
    for name in SMPL_JOINT_NAMES:
        s = "L" if name.startswith("L_") else "R"
        base = name[2:] if name[1] == "_" else name
        single = {"pelvis": "root", "spine1": "spine04", "spine2": "spine02", "spine3": "spine01",
                  "neck": "neck01", "head": "head", "hip": f"upperleg01.{s}",
                  "knee": f"lowerleg01.{s}", "ankle": f"foot.{s}", "collar": f"clavicle.{s}",
                  "shoulder": f"upperarm01.{s}", "elbow": f"lowerarm01.{s}",
                  "wrist": f"wrist.{s}"}  # fmt: skip
        if base == "foot":
            out.append([idx[f"toe{k}-1.{s}"] for k in range(1, 6)])
        elif base == "hand":
            out.append([idx[f"finger{k}-1.{s}"] for k in range(2, 6)])
        else:
            out.append([idx[single[base]]])
    return out


# ---------------------------------------------------------------------------------------------
# anny sampling


def load_anny():
    import anny
    import torch

    model = anny.Anny(topology=ANNY_TOPOLOGY, local_changes="default").to(dtype=torch.float64)
    return model, anny.__version__


def sample_shape_parameters(rng: np.random.Generator, n: int, lc_labels: list[str]):
    """Phenotypes (n, 6) and local changes (n, L) around a neutral adult of mean height ~1.70 m.

    anny's phenotypes lie in [0, 1]: gender 0 male .. 1 female; age 2/3 = young adult, 1 = old;
    height 0.5 is ~1.83 m for gender 0.5, so heights centre on 0.375 (about 1.76 m for men and
    1.63 m for women, sd ~7 cm).
    """
    gender = rng.uniform(0.0, 1.0, n)
    age = rng.uniform(0.667, 0.95, n)
    muscle = np.clip(rng.normal(0.5, 0.15, n), 0.0, 1.0)
    weight = np.clip(rng.normal(0.5, 0.15, n), 0.0, 1.0)
    height = np.clip(rng.normal(0.375, 0.065, n), 0.0, 1.0)
    proportions = np.clip(rng.normal(0.5, 0.15, n), 0.0, 1.0)
    phen = np.stack([gender, age, muscle, weight, height, proportions], 1)
    lc = np.zeros((n, len(lc_labels)))
    for name in LOCAL_CHANGES:
        value = np.clip(rng.normal(0.0, 0.3, n), -1.0, 1.0)
        for i, label in enumerate(lc_labels):
            if label in (name, f"l-{name}", f"r-{name}"):
                lc[:, i] = value
    return phen, lc


def anny_rest_bodies(model, phen: np.ndarray, lc: np.ndarray, chunk: int = 64):
    """Rest vertices (n, V, 3) and bone heads (n, K, 3) in SMPL axes, anny's A-pose."""
    import torch

    verts, heads = [], []
    for s in range(0, len(phen), chunk):
        p = torch.as_tensor(phen[s : s + chunk])
        c = torch.as_tensor(lc[s : s + chunk])
        _, php, lcp, fap = model.get_tensor_inputs(None, p, c, None)
        coeffs = model._get_phenotype_blendshape_coefficients(php, lcp, fap)
        rest = model.get_rest_model(coeffs)
        verts.append(rest["rest_vertices"].numpy() @ ANNY_TO_SMPL.T)
        heads.append(rest["rest_bone_heads"].numpy() @ ANNY_TO_SMPL.T)
    return np.concatenate(verts), np.concatenate(heads)


# ---------------------------------------------------------------------------------------------
# T-pose


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 3, 3) smallest rotations taking directions a (n, 3) onto b (n, 3)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = (a * b).sum(-1)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    return np.eye(3) + K + K @ K / (1.0 + c)[..., None, None]


def tpose(verts, heads, parents, labels, bone_weights, bone_index):
    """Re-pose anny's A-pose bodies to SMPL's T-pose with anny's own 104-bone skinning.

    Per sample: each arm is rotated at the shoulder, elbow and wrist so that upper arm, forearm
    and hand point along +-x; each leg is rotated at the hip so that hip->ankle points down with
    a 1.5 degree outward spread, and the foot is counter-rotated to stay flat.

    Returns T-posed vertices (n, V, 3) and bone heads (n, K, 3).
    """
    n, nb = heads.shape[:2]
    idx = {name: i for i, name in enumerate(labels)}
    local = np.tile(np.eye(3), (n, nb, 1, 1))
    world = np.zeros((n, nb, 3, 3))
    posed = np.zeros_like(heads)

    def fk():
        for k in range(nb):
            p = parents[k]
            if p < 0:
                world[:, k] = local[:, k]
                posed[:, k] = heads[:, k]
            else:
                world[:, k] = world[:, p] @ local[:, k]
                posed[:, k] = posed[:, p] + np.einsum(
                    "nij,nj->ni", world[:, p], heads[:, k] - heads[:, p]
                )

    def set_world_direction(bone, tip, target):
        """Rotate ``bone`` (locally) so that its head->``tip`` points along ``target``."""
        fk()
        cur = posed[:, tip] - posed[:, bone]
        delta = rotation_between(cur, target)  # world-frame correction
        wp = world[:, parents[bone]]
        local[:, bone] = np.swapaxes(wp, -1, -2) @ delta @ wp @ local[:, bone]

    for s, sign in (("L", 1.0), ("R", -1.0)):
        x = np.tile([sign, 0.0, 0.0], (n, 1))
        set_world_direction(idx[f"upperarm01.{s}"], idx[f"lowerarm01.{s}"], x)
        set_world_direction(idx[f"lowerarm01.{s}"], idx[f"wrist.{s}"], x)
        set_world_direction(idx[f"wrist.{s}"], idx[f"finger3-1.{s}"], x)
        fk()
        leg = posed[:, idx[f"foot.{s}"]] - posed[:, idx[f"upperleg01.{s}"]]
        target = leg.copy()
        target[:, 0] = sign * np.tan(np.radians(1.5)) * np.abs(leg[:, 1])
        set_world_direction(idx[f"upperleg01.{s}"], idx[f"foot.{s}"], target)
        fk()
        foot = idx[f"foot.{s}"]
        wp = world[:, parents[foot]]
        local[:, foot] = np.swapaxes(wp, -1, -2)  # world orientation of the foot stays identity
    fk()
    # Skinning: bone transform x -> world (x - head) + posed_head.
    trans = posed - np.einsum("nkij,nkj->nki", world, heads)
    out = np.zeros_like(verts)
    for j in range(bone_index.shape[1]):
        b = bone_index[:, j]
        w = bone_weights[:, j][None, :, None]
        out += w * (np.einsum("nvij,nvj->nvi", world[:, b], verts) + trans[:, b])
    return out, posed


# ---------------------------------------------------------------------------------------------
# Decimation: quadric-error half-edge collapses, so the result is a subset of the input vertices.


def decimate(verts: np.ndarray, faces: np.ndarray, target: int, locked: np.ndarray):
    """Collapse edges of a triangle mesh until ``target`` vertices remain.

    Args:
        verts: (V, 3) positions; faces: (F, 3) vertex ids; locked: (V,) bool, never removed
            (vertices on the rim of a hole are added to it; anny's body mesh has none).
    Returns:
        keep: (V',) sorted ids of the kept input vertices; faces: (F', 3) ids into ``keep``.
    """
    nv = len(verts)
    faces = faces.copy()
    p0, p1, p2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    nrm = np.cross(p1 - p0, p2 - p0)
    area = np.linalg.norm(nrm, axis=1) / 2
    unit = nrm / (2 * area[:, None] + 1e-30)
    plane = np.concatenate([unit, -(unit * p0).sum(1, keepdims=True)], 1)
    Kf = area[:, None, None] * plane[:, :, None] * plane[:, None, :]
    Q = np.zeros((nv, 4, 4))
    for c in range(3):
        np.add.at(Q, faces[:, c], Kf)
    edge_len_weight = 0.1 * area.mean()

    vfaces = [set() for _ in range(nv)]
    for f, tri in enumerate(faces):
        for v in tri:
            vfaces[v].add(f)
    alive_f = np.ones(len(faces), bool)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    uniq = np.unique(edges, axis=0)
    locked = locked.copy()
    locked[boundary_vertices(faces)] = True
    hom = np.concatenate([verts, np.ones((nv, 1))], 1)

    def nbrs(u):
        return {w for f in vfaces[u] for w in faces[f]} - {u}

    def cost(u, v):
        h = hom[v]
        return h @ (Q[u] + Q[v]) @ h + edge_len_weight * np.sum((verts[u] - verts[v]) ** 2)

    def valid(u, v):
        shared = [f for f in vfaces[u] if v in faces[f]]
        if len(shared) != 2 or len(nbrs(u) & nbrs(v)) != 2:
            return False
        for f in vfaces[u]:
            if v in faces[f]:
                continue
            tri = faces[f]
            a, b, c = verts[tri]
            n_old = np.cross(b - a, c - a)
            new = verts[np.where(tri == u, v, tri)]
            e1, e2 = new[1] - new[0], new[2] - new[0]
            n_new = np.cross(e1, e2)
            a_new = np.linalg.norm(n_new)
            if a_new < 1e-12 or n_old @ n_new < 0.3 * np.linalg.norm(n_old) * a_new:
                return False
            sq = e1 @ e1 + e2 @ e2 + (new[2] - new[1]) @ (new[2] - new[1])
            if 2 * np.sqrt(3) * a_new / sq < 0.15:  # 1 for equilateral triangles
                return False
        return True

    stamp = np.zeros(nv, int)
    heap = []

    def push(u, v):
        if not locked[u]:
            heapq.heappush(heap, (cost(u, v), u, v, stamp[u], stamp[v]))

    for a, b in uniq:
        push(a, b)
        push(b, a)
    alive_v = nv
    while alive_v > target and heap:
        _, u, v, su, sv = heapq.heappop(heap)
        if stamp[u] != su or stamp[v] != sv or stamp[u] < 0 or not valid(u, v):
            continue
        for f in list(vfaces[u]):
            if v in faces[f]:
                alive_f[f] = False
                for w in faces[f]:
                    vfaces[w].discard(f)
            else:
                faces[f][faces[f] == u] = v
                vfaces[v].add(f)
        vfaces[u] = set()
        Q[v] += Q[u]
        stamp[u] = -1
        stamp[v] += 1
        alive_v -= 1
        # Q[v] changed: re-cost v's edges; edges around v may have become valid: re-queue them.
        for w in nbrs(v):
            push(v, w)
            push(w, v)
            for x in nbrs(w) - {v}:
                push(w, x)
                push(x, w)
    keep = np.flatnonzero(stamp >= 0)
    remap = -np.ones(nv, int)
    remap[keep] = np.arange(len(keep))
    return keep, remap[faces[alive_f]]


# ---------------------------------------------------------------------------------------------
# Keypoint vertices, joint regressor, shape space


def boundary_vertices(faces: np.ndarray) -> np.ndarray:
    """Ids of the vertices on edges that have a single face (the rims of holes)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    return np.unique(uniq[counts == 1])


def keypoint_vertex_ids(mean_verts, dominant_bone, labels, eye_centres):
    """The 11 keypoint vertices (nose, eyes, ears, toes, heels) on the full-resolution mean mesh.

    Args:
        mean_verts: (V, 3) T-posed mean body; dominant_bone: (V,) anny bone of largest weight;
        eye_centres: (2, 3) left and right eyeball centres (anny's eye bones' heads).
    """
    bone = {name: i for i, name in enumerate(labels)}
    head = np.flatnonzero(np.isin(dominant_bone, [bone["head"]]))
    midline = head[np.abs(mean_verts[head, 0]) < 0.005]
    nose = midline[np.argmax(mean_verts[midline, 2])]
    ids = {"nose": nose}
    for s, sign, centre in (("L", 1.0, eye_centres[0]), ("R", -1.0, eye_centres[1])):
        side = "left" if s == "L" else "right"
        # The eyeballs are not part of the mesh: take the eyelid vertex in front of the pupil.
        front = head[mean_verts[head, 2] > centre[2] + 0.005]
        dist = np.linalg.norm(mean_verts[front, :2] - centre[:2], axis=1)
        ids[f"{side}_eye"] = front[np.argmin(dist)]
        lateral = head[sign * mean_verts[head, 0] > 0]
        x = sign * mean_verts[lateral, 0]
        ear = lateral[x > x.max() - 0.015]
        centroid = mean_verts[ear].mean(0)
        ids[f"{side}_ear"] = ear[np.argmin(np.linalg.norm(mean_verts[ear] - centroid, axis=1))]
        big = np.flatnonzero(dominant_bone == bone[f"toe1-2.{s}"])
        small = np.flatnonzero(np.isin(dominant_bone, [bone[f"toe5-{k}.{s}"] for k in (1, 2, 3)]))
        ids[f"{side}_big_toe"] = big[np.argmax(mean_verts[big, 2])]
        ids[f"{side}_small_toe"] = small[np.argmax(mean_verts[small, 2])]
        foot = np.flatnonzero(dominant_bone == bone[f"foot.{s}"])
        low = foot[mean_verts[foot, 1] < mean_verts[foot, 1].min() + 0.03]
        ids[f"{side}_heel"] = low[np.argmin(mean_verts[low, 2])]
    return np.array([ids[k] for k in KEYPOINT_VERTEX_NAMES])


def fit_joint_regressor(verts, joints, weights, ridge=1e-5, min_ring=120, max_ring=300):
    """(24, V) sparse convex joint regressor fitted over samples.

    Args:
        verts: (n, V, 3) sample bodies; joints: (n, 24, 3) their joints; weights: (V, 24)
            skinning weights (candidates must belong to the joint's or adjacent parts).
    Returns:
        J_regressor (24, V) with non-negative rows summing to 1, and per-joint RMS error (24,).
    """
    n, nv = verts.shape[:2]
    mean_v, mean_j = verts.mean(0), joints.mean(0)
    children = [np.flatnonzero(SMPL_PARENTS == j) for j in range(24)]
    reg = np.zeros((24, nv))
    rms = np.zeros(24)
    for j in range(24):
        parts = [j, *children[j]] + ([SMPL_PARENTS[j]] if j > 0 else [])
        member = np.flatnonzero(weights[:, parts].sum(1) > 0.3)
        if j in (0, 3, 6, 9, 12, 15):
            axis = np.array([0.0, 1.0, 0.0])
        else:
            tip = mean_j[children[j]].mean(0) if len(children[j]) else mean_j[j]
            base = mean_j[SMPL_PARENTS[j]] if not len(children[j]) else mean_j[j]
            axis = (tip - base) / np.linalg.norm(tip - base)
        off = mean_v[member] - mean_j[j]
        along = np.abs(off @ axis)
        dist = np.linalg.norm(off, axis=1)
        half = 0.01
        while (cand := member[along < half]).size < min_ring:
            half *= 1.25
        cand = cand[np.argsort(dist[along < half])[:max_ring]]
        A = verts[:, cand, :].transpose(0, 2, 1).reshape(n * 3, len(cand))
        b = joints[:, j, :].reshape(n * 3)
        scale = np.sqrt(n)
        A_aug = np.concatenate([A, np.sqrt(ridge) * scale * np.eye(len(cand)),
                                10.0 * scale * np.ones((1, len(cand)))])  # fmt: skip
        b_aug = np.concatenate([b, np.zeros(len(cand)), [10.0 * scale]])
        w, _ = nnls(A_aug, b_aug, maxiter=2000)
        w /= w.sum()
        reg[j, cand] = w
        rms[j] = np.sqrt(np.mean(np.sum((np.einsum("nvk,v->nk", verts[:, cand], w)
                                         - joints[:, j]) ** 2, 1)))  # fmt: skip
    return reg, rms


def shape_space(verts: np.ndarray, num_betas: int):
    """PCA of (n, V, 3) bodies: mean (V, 3), shapedirs (V, 3, B) at 1 sd, explained variance."""
    n = len(verts)
    X = verts.reshape(n, -1)
    mean = X.mean(0)
    _, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    std = S / np.sqrt(n - 1)
    dirs = Vt[:num_betas] * std[:num_betas, None]
    nv = verts.shape[1]
    dirs = dirs.reshape(num_betas, nv, 3)
    # Deterministic signs: each component raises the top of the head (or, failing that, the
    # mean of its largest displacement).
    top = np.argmax(mean.reshape(nv, 3)[:, 1])
    for k in range(num_betas):
        ref = dirs[k, top, 1] if abs(dirs[k, top, 1]) > 1e-4 else dirs[k].ravel()[np.argmax(
            np.abs(dirs[k]).ravel())]  # fmt: skip
        if ref < 0:
            dirs[k] *= -1
    explained = std**2 / np.sum(std**2)
    return mean.reshape(nv, 3), np.ascontiguousarray(dirs.transpose(1, 2, 0)), explained


# ---------------------------------------------------------------------------------------------


def build(num_samples: int, target_verts: int, num_betas: int, seed: int):
    model, anny_version = load_anny()
    labels = list(model.bone_labels)
    parents = np.array(model.bone_parents)
    assert all(parents[k] < k for k in range(1, len(parents))), "anny bones must be topo-sorted"
    bone_weights = model.vertex_bone_weights.numpy()
    bone_index = model.vertex_bone_indices.numpy()
    faces_full = model.faces.numpy()
    lc_labels = list(model.local_change_labels)
    missing = [c for c in LOCAL_CHANGES
               if not any(lab in (c, f"l-{c}", f"r-{c}") for lab in lc_labels)]  # fmt: skip
    if missing:
        raise RuntimeError(f"anny lacks local changes {missing}")

    rng = np.random.default_rng(seed)
    phen, lc = sample_shape_parameters(rng, num_samples, lc_labels)
    rest_v, rest_h = anny_rest_bodies(model, phen, lc)
    log.info("sampled %d anny bodies of %d vertices", num_samples, rest_v.shape[1])
    posed = [tpose(rest_v[s : s + 50], rest_h[s : s + 50], parents, labels, bone_weights,
                   bone_index) for s in range(0, num_samples, 50)]  # fmt: skip
    verts = np.concatenate([p[0] for p in posed])
    heads = np.concatenate([p[1] for p in posed])
    del rest_v, posed

    joint_bones = smpl_joint_bones(labels)
    joints = np.stack([heads[:, b].mean(1) for b in joint_bones], 1)
    pelvis = joints[:, :1].copy()
    verts -= pelvis
    joints -= pelvis
    heads -= pelvis

    parts_of_bone = np.array([smpl_part_of_bone(b) for b in labels])
    nv_full = verts.shape[1]
    weights_full = np.zeros((nv_full, 24))
    for j in range(bone_index.shape[1]):
        np.add.at(weights_full, (np.arange(nv_full), parts_of_bone[bone_index[:, j]]),
                  bone_weights[:, j])  # fmt: skip
    weights_full /= weights_full.sum(1, keepdims=True)
    dense_bw = np.zeros((nv_full, len(labels)))
    for j in range(bone_index.shape[1]):
        np.add.at(dense_bw, (np.arange(nv_full), bone_index[:, j]), bone_weights[:, j])
    dominant = dense_bw.argmax(1)

    mean_full = verts.mean(0)
    eyes = heads[:, [labels.index("eye.L"), labels.index("eye.R")]].mean(0)
    kp_full = keypoint_vertex_ids(mean_full, dominant, labels, eyes)
    locked = np.zeros(nv_full, bool)
    locked[kp_full] = True
    keep, faces = decimate(mean_full, faces_full, target_verts, locked)
    log.info("decimated %d -> %d vertices, %d faces", nv_full, len(keep), len(faces))
    kp_ids = np.searchsorted(keep, kp_full)
    assert np.all(keep[kp_ids] == kp_full)

    verts = verts[:, keep]
    weights = weights_full[keep]
    v_template, shapedirs, explained = shape_space(verts, num_betas)
    log.info("shape PCA: first %d components explain %.4f of the variance (%s)", num_betas,
             explained[:num_betas].sum(), np.round(explained[:num_betas], 4))  # fmt: skip
    J_regressor, rms = fit_joint_regressor(verts, joints, weights)
    log.info("joint regressor RMS error per joint (mm): %s", np.round(rms * 1000, 1))
    heights = verts[:, :, 1].max(1) - verts[:, :, 1].min(1)
    log.info("sample heights: mean %.3f m, sd %.3f m; template %.3f m", heights.mean(),
             heights.std(), np.ptp(v_template[:, 1]))  # fmt: skip

    provenance = (
        f"Built by scripts/build_default_body.py from anny {anny_version} (topology "
        f"{ANNY_TOPOLOGY!r}, rig 'anny'), num_samples={num_samples}, seed={seed}, "
        f"target_verts={target_verts}."
    )
    return {
        "v_template": v_template.astype(np.float64),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((len(keep), 3, 207), np.float16),
        "J_regressor": J_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": np.stack([SMPL_PARENTS, np.arange(24)]).astype(np.int64),
        "f": faces.astype(np.int64),
        "keypoint_vertex_ids": kp_ids.astype(np.int64),
        "keypoint_vertex_names": np.array(KEYPOINT_VERTEX_NAMES),
        "joint_names": np.array(SMPL_JOINT_NAMES),
        "provenance": provenance,
        "source": f"anny=={anny_version} (PyPI), assets anny/data/mpfb2 (MakeHuman, MPFB2)",
        "license": "CC0-1.0 (MakeHuman/MPFB2 assets via anny); conversion: slahmr-opt (MIT)",
        "shape_explained_variance": explained[:num_betas].astype(np.float32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("slahmr_opt/body/data/default_body.pkl"))
    parser.add_argument("--num-samples", type=int, default=600)
    parser.add_argument("--target-verts", type=int, default=7000)
    parser.add_argument("--num-betas", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = build(args.num_samples, args.target_verts, args.num_betas, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f:
        pickle.dump(data, f, protocol=4)
    log.info("wrote %s (%.2f MB)", args.out, args.out.stat().st_size / 2**20)


if __name__ == "__main__":
    main()
