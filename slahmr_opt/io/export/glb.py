"""GLB export: skinned, animated bodies and the camera path in one glTF 2.0 binary file.

trimesh writes the geometry (rest meshes with normals and a colour per person, the camera path
and frustums as line primitives); the skins and the animation are then added to its glTF JSON
and binary chunk.

All of it is in the y-up export world (``motion.export_world_rotation``: the result's world for
a gravity-aligned result), metres. Scene roots, by node name:

* ``person_<id>``: the person's skinned mesh, the body model's mesh at the person's ``betas``
  at rest (glTF ignores the transform of a skinned mesh's node).
* ``person_<id>_rig``: holds the person's skeleton, SMPL's 24 joints and tree, named
  ``person_<id>_<joint>`` (``..._pelvis`` its root); Blender's importer makes it the person's
  armature.
* ``camera_path`` (the camera centres as a polyline) and ``camera_frustums`` (a few small
  frustums, a tick on the image's top edge).
* ``camera``: the video's camera as a glTF perspective camera (looking along its node's -z, y
  up), animated with the fitted camera's centre and orientation at every frame, so a viewer can
  look through it (Blender: the imported camera, active). Its field of view is the median
  focal length's (``yfov = 2 atan(H / (2 fy))``, aspect ratio ``W fy / (H fx)``): glTF cannot
  animate it.
* The skin of ``person_<id>``: its joints in SMPL order, inverse bind matrices
  ``translate(-rest_joint)``, and per vertex the ``influences`` largest of the body model's skinning
  weights, renormalised (``JOINTS_0``/``WEIGHTS_0``, then ``_1`` for 8).
* One animation ``motion``, keyed at every result frame (``t / fps`` seconds): rotations of joints
  0..21 (hands stay at rest), the pelvis translation, and, for people not tracked on every
  frame, a STEP scale on the pelvis, 0 outside ``track_mask`` (the body collapses to a point;
  poses there hold the nearest tracked frame's); the ``camera`` node's translation and rotation.

Not representable in a glTF skin: the model's pose blend shapes (``posedirs``; zero for the
built-in model), and weights beyond the kept influences, so the skinned mesh differs from the
fitted one by those two terms; joints are exact.
"""

import json
import struct
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from slahmr_opt import __version__
from slahmr_opt.body import BodyModel
from slahmr_opt.body.keypoints import NUM_BODY_POSE_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from slahmr_opt.files.checks import prepare_output
from slahmr_opt.io.bodies import camera_to_world, intrinsics, mesh_faces
from slahmr_opt.io.export.camera_path import (
    camera_path_points,
    frustum_frames,
    frustum_segments,
)
from slahmr_opt.io.export.files import write_file
from slahmr_opt.io.export.motion import (
    PersonMotion,
    export_world_rotation,
    person_motions,
    top_k_weights,
)
from slahmr_opt.types import Result

_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942
_COMPONENT = {np.dtype(np.float32): 5126, np.dtype(np.uint8): 5121, np.dtype(np.uint16): 5123}
_TYPE = {1: "SCALAR", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
#: Base colours of the people (RGBA, 0..1), cycled.
PERSON_COLOURS = (
    (0.90, 0.45, 0.25, 1.0), (0.25, 0.55, 0.90, 1.0), (0.35, 0.75, 0.35, 1.0),
    (0.85, 0.75, 0.25, 1.0), (0.70, 0.40, 0.80, 1.0), (0.30, 0.75, 0.75, 1.0),
)  # fmt: skip


class GlbFile:
    """A GLB's JSON tree and binary chunk, with accessors appended to its single buffer."""

    def __init__(self, data: bytes):
        magic, version, _ = struct.unpack_from("<III", data, 0)
        if magic != _GLB_MAGIC or version != 2:
            raise ValueError("not a glTF 2.0 binary")
        json_len, kind = struct.unpack_from("<II", data, 12)
        assert kind == _JSON_CHUNK
        self.tree = json.loads(data[20 : 20 + json_len])
        self.bin = bytearray()
        at = 20 + json_len
        if at < len(data):
            bin_len, kind = struct.unpack_from("<II", data, at)
            assert kind == _BIN_CHUNK
            self.bin = bytearray(data[at + 8 : at + 8 + bin_len])
        self.tree.setdefault("accessors", [])
        self.tree.setdefault("bufferViews", [])

    def add_accessor(
        self, array: np.ndarray, vertex_attribute: bool = False, bounds: bool = False
    ) -> int:
        """Append (N, ...) ``array`` (float32, uint8 or uint16); returns its accessor index."""
        array = np.ascontiguousarray(array)
        count = array.shape[0]
        width = int(np.prod(array.shape[1:], dtype=np.int64))
        self.bin.extend(b"\0" * (-len(self.bin) % 4))
        view = {"buffer": 0, "byteOffset": len(self.bin), "byteLength": array.nbytes}
        if vertex_attribute:
            view["target"] = _ARRAY_BUFFER
        self.bin.extend(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
        self.tree["bufferViews"].append(view)
        accessor = {
            "bufferView": len(self.tree["bufferViews"]) - 1,
            "componentType": _COMPONENT[array.dtype],
            "count": count,
            "type": _TYPE[width],
        }
        if bounds:
            flat = array.reshape(count, width)
            accessor["min"] = flat.min(0).tolist()
            accessor["max"] = flat.max(0).tolist()
        self.tree["accessors"].append(accessor)
        return len(self.tree["accessors"]) - 1

    def add_node(self, node: dict) -> int:
        self.tree["nodes"].append(node)
        return len(self.tree["nodes"]) - 1

    def to_bytes(self) -> bytes:
        self.bin.extend(b"\0" * (-len(self.bin) % 4))
        self.tree["buffers"] = [{"byteLength": len(self.bin)}]
        text = json.dumps(self.tree, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(self.bin)
        return b"".join([
            struct.pack("<III", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(text), _JSON_CHUNK), text,
            struct.pack("<II", len(self.bin), _BIN_CHUNK), bytes(self.bin),
        ])  # fmt: skip


def continuous_quaternions(rotations: np.ndarray) -> np.ndarray:
    """(T, J, 4) ``[x, y, z, w]`` quaternions of (T, J, 3, 3) rotations, signs chosen so that
    consecutive frames lie in the same hemisphere (component-wise interpolation stays short)."""
    T, J = rotations.shape[:2]
    q = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_quat().reshape(T, J, 4)
    flips = np.ones((T, J))
    flips[1:] = np.where(np.einsum("tjk,tjk->tj", q[1:], q[:-1]) < 0, -1.0, 1.0)
    return q * np.cumprod(flips, axis=0)[..., None]


def _scene(
    result: Result,
    faces: np.ndarray,
    motions: list[PersonMotion],
    cameras: tuple[np.ndarray, np.ndarray],
    max_frustums: int,
) -> trimesh.Scene:
    """The trimesh scene: rest meshes, camera path and frustums (node names as documented)."""
    scene = trimesh.Scene()
    for p, motion in enumerate(motions):
        material = trimesh.visual.material.PBRMaterial(
            baseColorFactor=PERSON_COLOURS[p % len(PERSON_COLOURS)],
            metallicFactor=0.0,
            roughnessFactor=0.8,
        )
        mesh = trimesh.Trimesh(motion.rest_vertices, faces, process=False,
                               visual=trimesh.visual.TextureVisuals(material=material))  # fmt: skip
        normals = mesh.vertex_normals.copy()
        normals[np.linalg.norm(normals, axis=1) < 0.5] = (0.0, 1.0, 0.0)  # vertices in no face
        mesh.vertex_normals = normals
        scene.add_geometry(mesh, node_name=motion.name, geom_name=motion.name)
    R_c2w, centres = cameras
    points = camera_path_points(centres)
    if len(points) >= 2:
        scene.add_geometry(trimesh.load_path(points), node_name="camera_path",
                           geom_name="camera_path")  # fmt: skip
    intrins = intrinsics(result)
    frames = frustum_frames(result.num_frames, max_frustums if len(points) >= 2 else 1)
    frames = frames[(intrins[frames, :2] > 0).all(1)]  # no frustum without a focal
    if len(frames):
        segments = frustum_segments(
            R_c2w[frames], centres[frames], intrins[frames], result.cameras.image_size
        )
        scene.add_geometry(trimesh.load_path(segments), node_name="camera_frustums",
                           geom_name="camera_frustums")  # fmt: skip
    return scene


def _add_skeleton(glb: GlbFile, motion: PersonMotion, prefix: str) -> list[int]:
    """Add the joint nodes of one person at its bind pose; returns their node ids, SMPL order."""
    ids: list[int] = []
    for j, (name, parent) in enumerate(zip(SMPL_JOINT_NAMES, SMPL_PARENTS, strict=True)):
        offset = motion.offsets[j]
        ids.append(glb.add_node({"name": f"{prefix}_{name}", "translation": offset.tolist()}))
        if parent >= 0:
            glb.tree["nodes"][ids[parent]].setdefault("children", []).append(ids[j])
    return ids


#: OpenCV camera axes (x right, y down, z forward) -> glTF's (x right, y up, looking along -z).
OPENCV_TO_GLTF_CAMERA = np.diag([1.0, -1.0, -1.0])


def _export_cameras(result: Result, world_rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world ``(R (T, 3, 3), centre (T, 3))`` in the export world."""
    R_c2w, centres = camera_to_world(result)
    return world_rotation @ R_c2w, centres @ world_rotation.T


def _add_camera(glb: GlbFile, result: Result, cameras: tuple[np.ndarray, np.ndarray]
                ) -> tuple[int, dict]:  # fmt: skip
    """The ``camera`` node (module docstring) and its per-frame ``translation`` and ``rotation``
    ((T, 3), (T, 4)) for the animation; ``cameras`` from ``_export_cameras``."""
    R_c2w, centres = cameras
    fx, fy = np.median(intrinsics(result)[:, :2], axis=0)
    H, W = result.cameras.image_size
    perspective = {
        "yfov": float(2 * np.arctan(H / (2 * fy))),
        "aspectRatio": float(W * fy / (H * fx)),
        "znear": 0.01,
        "zfar": 1000.0,
    }
    glb.tree.setdefault("cameras", []).append({"type": "perspective", "perspective": perspective})
    quats = continuous_quaternions((R_c2w @ OPENCV_TO_GLTF_CAMERA)[:, None])[:, 0]
    node = glb.add_node({"name": "camera", "camera": len(glb.tree["cameras"]) - 1,
                         "translation": centres[0].tolist(),
                         "rotation": quats[0].tolist()})  # fmt: skip
    return node, {"translation": centres, "rotation": quats}


def _add_animation(glb: GlbFile, motions, joint_ids, times: int, camera: tuple[int, dict]) -> dict:
    """The ``motion`` animation: rotations, pelvis translation, visibility scale per person;
    the camera's path."""
    samplers: list[dict] = []
    channels: list[dict] = []

    def channel(node: int, path: str, values: np.ndarray, interpolation: str = "LINEAR"):
        out = glb.add_accessor(values.astype(np.float32))
        samplers.append({"input": times, "output": out, "interpolation": interpolation})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

    for motion, ids in zip(motions, joint_ids, strict=True):
        quats = continuous_quaternions(motion.rotations[:, : NUM_BODY_POSE_JOINTS + 1])
        for j in range(NUM_BODY_POSE_JOINTS + 1):
            channel(ids[j], "rotation", quats[:, j])
        channel(ids[0], "translation", motion.root_position)
        if not motion.visible.all():
            scale = np.repeat(motion.visible[:, None].astype(np.float32), 3, axis=1)
            channel(ids[0], "scale", scale, "STEP")
    node, tracks = camera
    for path, values in tracks.items():
        channel(node, path, values)
    return {"name": "motion", "samplers": samplers, "channels": channels}


def _skin_attributes(glb: GlbFile, weights: np.ndarray, influences: int) -> dict[str, int]:
    """``JOINTS_n``/``WEIGHTS_n`` accessors of the ``influences`` largest weights per vertex."""
    joints, kept = top_k_weights(weights, influences)
    attributes = {}
    for s in range(influences // 4):
        cols = slice(4 * s, 4 * s + 4)
        attributes[f"JOINTS_{s}"] = glb.add_accessor(
            joints[:, cols].astype(np.uint8), vertex_attribute=True
        )
        attributes[f"WEIGHTS_{s}"] = glb.add_accessor(kept[:, cols], vertex_attribute=True)
    return attributes


def _set_view_targets(tree: dict) -> None:
    """Mark the buffer views of vertex attributes and indices as such (a validator hint)."""
    for mesh in tree.get("meshes", []):
        for prim in mesh["primitives"]:
            targets = [(a, _ARRAY_BUFFER) for a in prim["attributes"].values()]
            if "indices" in prim:
                targets.append((prim["indices"], _ELEMENT_ARRAY_BUFFER))
            for accessor, target in targets:
                view = tree["bufferViews"][tree["accessors"][accessor]["bufferView"]]
                view.setdefault("target", target)


def _skin_person(glb: GlbFile, motion: PersonMotion, node: int, attributes: dict) -> list[int]:
    """Give the mesh of ``node`` the skin attributes and a skeleton; returns the joint ids."""
    tree = glb.tree
    for prim in tree["meshes"][tree["nodes"][node]["mesh"]]["primitives"]:
        count = tree["accessors"][prim["attributes"]["POSITION"]]["count"]
        if count != len(motion.rest_vertices):
            raise RuntimeError(f"trimesh wrote {count} vertices for {motion.name}, not "
                               f"{len(motion.rest_vertices)}")  # fmt: skip
        prim["attributes"].update(attributes)
    ids = _add_skeleton(glb, motion, motion.name)
    ibm = np.broadcast_to(np.eye(4, dtype=np.float32), (len(ids), 4, 4)).copy()
    ibm[:, :3, 3] = -motion.rest_joints
    ibm_column_major = ibm.transpose(0, 2, 1).reshape(-1, 16)
    skin = {"name": motion.name, "joints": ids, "skeleton": ids[0],
            "inverseBindMatrices": glb.add_accessor(ibm_column_major)}  # fmt: skip
    tree.setdefault("skins", []).append(skin)
    tree["nodes"][node]["skin"] = len(tree["skins"]) - 1
    return ids


def build_glb(
    result: Result, body_model: BodyModel, influences: int = 4, max_frustums: int = 12
) -> bytes:
    """The GLB file's bytes (layout in the module docstring).

    Args:
        result: the result.
        body_model: the body model it was fitted with.
        influences: skinning weights kept per vertex, 4 or 8 (8 adds ``JOINTS_1``/``WEIGHTS_1``,
            which some viewers ignore).
        max_frustums: camera frustums drawn along the path (0: none).
    """
    if influences not in (4, 8):
        raise ValueError(f"influences must be 4 or 8, got {influences}")
    world_rotation = export_world_rotation(result)
    motions = person_motions(result, body_model, world_rotation, vertices=True)
    cameras = _export_cameras(result, world_rotation)
    scene = _scene(result, mesh_faces(body_model), motions, cameras, max_frustums)
    glb = GlbFile(scene.export(file_type="glb", include_normals=True))
    tree = glb.tree
    by_name = {node.get("name"): i for i, node in enumerate(tree["nodes"])}
    if set(tree["scenes"][0]["nodes"]) != set(by_name.values()):
        raise RuntimeError("unexpected node layout in trimesh's GLB export")
    weights = body_model.skinning_weights().double().numpy()
    attributes = _skin_attributes(glb, weights, influences) if motions else {}
    times = glb.add_accessor(
        (np.arange(result.num_frames) / result.fps).astype(np.float32), bounds=True
    )
    joint_ids = [_skin_person(glb, m, by_name[m.name], attributes) for m in motions]
    for motion, ids in zip(motions, joint_ids, strict=True):
        # A parent that is no joint: Blender's importer makes it the person's own armature.
        rig = glb.add_node({"name": f"{motion.name}_rig", "children": [ids[0]]})
        tree["scenes"][0]["nodes"].append(rig)
    camera = _add_camera(glb, result, cameras)
    tree["scenes"][0]["nodes"].append(camera[0])
    _set_view_targets(tree)
    tree["animations"] = [_add_animation(glb, motions, joint_ids, times, camera)]
    tree["asset"]["generator"] = (
        f"slahmr-opt {__version__} (geometry: trimesh {trimesh.__version__})"
    )
    tree.setdefault("extras", {})["slahmr_opt"] = {
        "fps": result.fps,
        "frame_offset": result.frame_offset,
        "track_ids": [m.track_id for m in motions],
        "skinning_influences": influences,
    }
    return glb.to_bytes()


def export_glb(
    result: Result,
    body_model: BodyModel,
    path: str | Path,
    overwrite: bool = False,
    influences: int = 4,
    max_frustums: int = 12,
) -> Path:
    """Write the GLB (see ``build_glb``) of ``result`` posed with ``body_model`` to ``path``;
    refuses to replace a file unless ``overwrite``."""
    path = Path(path)
    prepare_output(path, overwrite)
    data = build_glb(result, body_model, influences, max_frustums)
    write_file(path, data)
    return path
