"""Helpers of the export tests: a small fitted-looking result, and an independent GLB reader.

``write_small_result`` writes a ``results.npz`` (+ ``config.yaml`` naming the body model) of two
people over 12 frames, with the joints the body model gives, a moving camera, a track with gaps
and track ids that need cleaning for file names. ``GlbReader`` parses a GLB from the file's
bytes (not through the exporter's code) and evaluates the animation and the skin the way a
viewer does: node TRS -> global matrices -> joint matrices -> linear blend skinning.
"""

import json
import struct
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyConfig, BodyModel, load_body_model
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.io.bodies import result_body_model
from slahmr_opt.io.results import read_result
from slahmr_opt.types import Result

NUM_FRAMES = 12
TRACK_IDS = ("7", "b/2")
#: Person 1 is tracked on frames 2..5 and 8..9 only.
MASK_1 = np.array([0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0], dtype=bool)
FPS = 24.0
FRAME_OFFSET = 5


def write_small_result(
    folder: Path, model_path: Path, aligned: bool = True, model_type: str = "smpl", seed: int = 0
) -> Path:
    """Write ``folder/results.npz`` and ``folder/config.yaml``; returns the npz path.

    ``aligned``: a gravity-aligned world (``world_transform`` not the identity); else the SLAM
    world (identity ``world_transform``, NaN floor).
    """
    rng = np.random.default_rng(seed)
    P, T = 2, NUM_FRAMES
    model = load_body_model(BodyConfig(model_path=str(model_path), model_type=model_type))
    t = np.linspace(0, 1, T)[None, :, None]
    root_orient = rng.normal(0, 0.3, (P, 1, 3)) + t * rng.normal(0, 1.0, (P, 1, 3))
    pose_body = rng.normal(0, 0.3, (P, 1, 63)) + t * rng.normal(0, 0.6, (P, 1, 63))
    trans = rng.normal(0, 1.0, (P, 1, 3)) + t * rng.normal(0, 1.0, (P, 1, 3))
    betas = rng.normal(0, 1.0, (P, 10))
    cam_aa = rng.normal(0, 0.2, (1, 3)) + t[0] * rng.normal(0, 0.5, (1, 3))
    cam_R = rotvec_to_rotmat(torch.as_tensor(cam_aa)).numpy()
    cam_t = rng.normal(0, 1.0, (1, 3)) + t[0] * rng.normal(0, 1.0, (1, 3))
    world = np.eye(4)
    if aligned:
        world[:3, :3] = Rotation.from_rotvec([2.9, 0.1, 0.05]).as_matrix()
        world[:3, 3] = [0.1, 1.2, 0.0]
    arrays = {
        "trans": trans.astype(np.float32),
        "root_orient": np.broadcast_to(root_orient, (P, T, 3)).astype(np.float32),
        "pose_body": np.broadcast_to(pose_body, (P, T, 63)).astype(np.float32),
        "betas": betas.astype(np.float32),
        "cam_R": np.broadcast_to(cam_R, (P, T, 3, 3)).astype(np.float32),
        "cam_t": np.broadcast_to(cam_t, (P, T, 3)).astype(np.float32),
        "intrins": np.tile([[500.0, 500.0, 320.0, 240.0]], (T, 1)).astype(np.float32),
        "track_mask": np.stack([np.ones(T, dtype=bool), MASK_1]),
        "track_ids": np.array(TRACK_IDS),
        "fps": np.array(FPS),
        "image_size": np.array([480, 640]),
        "frame_offset": np.array(FRAME_OFFSET),
        "world_transform": world.astype(np.float32),
        "floor_plane": np.array([0, -1, 0, -1.2] if aligned else [np.nan] * 4, np.float32),
    }
    with torch.no_grad():
        out = model(torch.as_tensor(arrays["betas"][:, None]),
                    torch.as_tensor(arrays["root_orient"]),
                    torch.as_tensor(arrays["pose_body"].reshape(P, T, 21, 3)),
                    torch.as_tensor(arrays["trans"]))  # fmt: skip
    arrays["joints"] = out.joints.numpy()
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "results.npz", **arrays)
    (folder / "config.yaml").write_text(
        f"body:\n  model_path: {model_path}\n  model_type: {model_type}\n  num_betas: 10\n"
    )
    return folder / "results.npz"


def read_small_result(path: Path) -> tuple[Result, BodyModel]:
    """A results file read back, with the body model its ``config.yaml`` names."""
    result = read_result(path)
    return result, result_body_model(result, source=path)


_DTYPES = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


class GlbReader:
    """A GLB file's JSON and binary chunk, read with ``struct`` and numpy only."""

    def __init__(self, path: Path):
        data = Path(path).read_bytes()
        magic, version, length = struct.unpack_from("<4sII", data, 0)
        assert magic == b"glTF" and version == 2 and length == len(data)
        json_len, kind = struct.unpack_from("<I4s", data, 12)
        assert kind == b"JSON"
        self.tree = json.loads(data[20 : 20 + json_len])
        bin_len, kind = struct.unpack_from("<I4s", data, 20 + json_len)
        assert kind == b"BIN\0"
        self.bin = data[28 + json_len : 28 + json_len + bin_len]
        self.names = {n.get("name"): i for i, n in enumerate(self.tree["nodes"])}

    def accessor(self, index: int) -> np.ndarray:
        acc = self.tree["accessors"][index]
        view = self.tree["bufferViews"][acc["bufferView"]]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        width = _WIDTH[acc["type"]]
        arr = np.frombuffer(self.bin, _DTYPES[acc["componentType"]], acc["count"] * width, start)
        return arr.reshape(acc["count"], width) if width > 1 else arr

    def local_matrices(self, frame: int) -> list[np.ndarray]:
        """(4, 4) local matrix of every node at animation keyframe ``frame``."""
        trs = []
        for node in self.tree["nodes"]:
            trs.append({"translation": np.array(node.get("translation", [0.0, 0, 0])),
                        "rotation": np.array(node.get("rotation", [0.0, 0, 0, 1])),
                        "scale": np.array(node.get("scale", [1.0, 1, 1]))})  # fmt: skip
        for anim in self.tree.get("animations", []):
            for ch in anim["channels"]:
                sampler = anim["samplers"][ch["sampler"]]
                values = self.accessor(sampler["output"])
                trs[ch["target"]["node"]][ch["target"]["path"]] = values[frame].astype(np.float64)
        mats = []
        for t in trs:
            m = np.eye(4)
            m[:3, :3] = Rotation.from_quat(t["rotation"]).as_matrix() * t["scale"]
            m[:3, 3] = t["translation"]
            mats.append(m)
        return mats

    def global_matrices(self, frame: int) -> np.ndarray:
        """(N, 4, 4) world matrix of every node reachable from the scene's roots."""
        local = self.local_matrices(frame)
        out = np.full((len(local), 4, 4), np.nan)

        def visit(i: int, parent: np.ndarray) -> None:
            out[i] = parent @ local[i]
            for child in self.tree["nodes"][i].get("children", []):
                visit(child, out[i])

        for root in self.tree["scenes"][self.tree.get("scene", 0)]["nodes"]:
            visit(root, np.eye(4))
        return out

    def skinned(self, mesh_node: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """World joints (J, 3) and skinned vertices (V, 3) of ``mesh_node`` at ``frame``."""
        node = self.tree["nodes"][self.names[mesh_node]]
        skin = self.tree["skins"][node["skin"]]
        G = self.global_matrices(frame)[skin["joints"]]
        ibm = self.accessor(skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
        joint_mats = G @ ibm
        prim = self.tree["meshes"][node["mesh"]]["primitives"][0]
        attrs = prim["attributes"]
        rest = self.accessor(attrs["POSITION"]).astype(np.float64)
        verts = np.zeros_like(rest)
        s = 0
        while f"JOINTS_{s}" in attrs:
            joints = self.accessor(attrs[f"JOINTS_{s}"]).astype(np.int64)
            weights = self.accessor(attrs[f"WEIGHTS_{s}"]).astype(np.float64)
            for k in range(4):
                M = joint_mats[joints[:, k]]
                moved = np.einsum("vij,vj->vi", M[:, :3, :3], rest) + M[:, :3, 3]
                verts += weights[:, k : k + 1] * moved
            s += 1
        return G[:, :3, 3], verts
