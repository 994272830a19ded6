"""OBJ / PLY export: one posed mesh per person and frame, through trimesh.

Files: ``<out>/person_<id>/frame_<NNNNNN>.<obj|ply>``, ``NNNNNN`` the video frame index
(``frame_offset + t``), only on the person's tracked frames. Vertices are the body model's full
output (pose blend shapes included) in the y-up export world of
``motion.export_world_rotation``, metres. OBJ is text (positions and triangles), PLY binary
little-endian.
"""

from pathlib import Path

import numpy as np
import trimesh

from slahmr_opt.body import BodyModel
from slahmr_opt.files.checks import prepare_output
from slahmr_opt.io.bodies import mesh_faces, posed
from slahmr_opt.io.export.files import person_names, write_file
from slahmr_opt.io.export.motion import export_world_rotation
from slahmr_opt.types import Result

MESH_FORMATS = ("obj", "ply")
#: Frames posed at once (bounds memory on long videos).
CHUNK = 32


def mesh_bytes(vertices: np.ndarray, faces: np.ndarray, fmt: str) -> bytes:
    """One mesh as an OBJ or PLY file's bytes; vertex order and count are kept as given."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if fmt == "obj":
        text = mesh.export(file_type="obj", include_normals=False, include_texture=False)
        return text.encode()
    if fmt == "ply":
        return mesh.export(file_type="ply", encoding="binary", vertex_normal=False)
    raise ValueError(f"mesh format must be one of {MESH_FORMATS}, got {fmt!r}")


def mesh_paths(result: Result, out: str | Path, fmt: str, frames: range) -> dict:
    """``{(person, t): path}`` of the files ``export_meshes`` writes for ``frames``."""
    out = Path(out)
    names = person_names(result.track_ids)
    mask = result.track_mask.numpy().astype(bool)
    return {
        (p, t): out / names[p] / f"frame_{result.frame_offset + t:06d}.{fmt}"
        for p in range(result.num_people)
        for t in frames
        if mask[p, t]
    }


def export_meshes(
    result: Result,
    body_model: BodyModel,
    out: str | Path,
    fmt: str = "obj",
    frames: slice = slice(None),
    overwrite: bool = False,
) -> list[Path]:
    """Write the posed meshes of ``frames`` (result frame indices) of ``result``, posed with
    ``body_model``, into the folder ``out``.

    Raises:
        FileExistsError: ``out`` exists and is not empty, and ``overwrite`` is False.
    Returns:
        The files written, person by person, frame by frame.
    """
    if fmt not in MESH_FORMATS:
        raise ValueError(f"mesh format must be one of {MESH_FORMATS}, got {fmt!r}")
    out = Path(out)
    prepare_output(out, overwrite, is_dir=True)
    chosen = range(result.num_frames)[frames]
    paths = mesh_paths(result, out, fmt, chosen)
    F = export_world_rotation(result)
    faces = mesh_faces(body_model)
    for start in range(0, len(chosen), CHUNK):
        ts = chosen[start : start + CHUNK]
        verts, _ = posed(result, body_model, np.asarray(ts))
        verts = verts.astype(np.float64) @ F.T
        for k, t in enumerate(ts):
            for p in range(result.num_people):
                if (p, t) in paths:
                    paths[p, t].parent.mkdir(parents=True, exist_ok=True)
                    write_file(paths[p, t], mesh_bytes(verts[p, k], faces, fmt))
    return list(paths.values())
