"""TUM and OBJ/PLY exports: re-read and compared with the result they came from."""

import numpy as np
import pytest
import trimesh
from export_helpers import (
    FPS,
    FRAME_OFFSET,
    MASK_1,
    NUM_FRAMES,
    read_small_result,
    write_small_result,
)
from scipy.spatial.transform import Rotation

from slahmr_opt.inputs.cameras import read_tum_traj
from slahmr_opt.io.bodies import camera_arrays, camera_to_world, mesh_faces, posed
from slahmr_opt.io.export.camera_path import export_tum
from slahmr_opt.io.export.meshes import export_meshes
from slahmr_opt.io.export.motion import OPENCV_TO_Y_UP


@pytest.fixture
def loaded(tmp_path, synthetic_body_path):
    return read_small_result(write_small_result(tmp_path / "fit", synthetic_body_path))


def test_tum_round_trip(tmp_path, loaded):
    result, _ = loaded
    path = export_tum(result, tmp_path / "camera.tum")
    cams = read_tum_traj(path, image_size=(480, 640))
    R_w2c, t_w2c = camera_arrays(result)
    np.testing.assert_allclose(cams.R_w2c.numpy(), R_w2c, atol=1e-6)
    np.testing.assert_allclose(cams.t_w2c.numpy(), t_w2c, atol=1e-6)
    # As evo reads it: '#' comments, 8 float columns, quaternion real part last.
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#") and len(lines) == NUM_FRAMES + 1
    assert all(len(line.split()) == 8 and "." in line.split()[0] for line in lines[1:])
    table = np.loadtxt(path, comments="#")
    np.testing.assert_allclose(table[:, 0], (FRAME_OFFSET + np.arange(NUM_FRAMES)) / FPS, atol=1e-6)
    R_c2w, centres = camera_to_world(result)
    np.testing.assert_allclose(table[:, 1:4], centres, atol=1e-6)
    np.testing.assert_allclose(Rotation.from_quat(table[:, 4:]).as_matrix(), R_c2w, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(table[:, 4:], axis=1), 1.0, atol=1e-8)


def test_tum_refuses_to_overwrite(tmp_path, loaded):
    (tmp_path / "camera.tum").write_text("mine\n")
    with pytest.raises(FileExistsError):
        export_tum(loaded[0], tmp_path / "camera.tum")
    assert (tmp_path / "camera.tum").read_text() == "mine\n"


@pytest.mark.parametrize("fmt", ["obj", "ply"])
def test_meshes_round_trip(tmp_path, loaded, fmt):
    result, model = loaded
    paths = export_meshes(result, model, tmp_path / "meshes", fmt, frames=slice(1, 11, 3))
    frames = [1, 4, 7, 10]
    expected = [("person_7", t) for t in frames] + [("person_b_2", t) for t in frames if MASK_1[t]]
    assert [(p.parent.name, p.name) for p in paths] == [
        (name, f"frame_{FRAME_OFFSET + t:06d}.{fmt}") for name, t in expected
    ]
    verts, _ = posed(result, model)
    for path, (name, t) in zip(paths, expected, strict=True):
        # maintain_order: trimesh's OBJ reader would drop the synthetic mesh's unused vertices
        mesh = trimesh.load(path, process=False, maintain_order=True)
        p = 0 if name == "person_7" else 1
        np.testing.assert_allclose(mesh.vertices, verts[p, t], atol=1e-6)
        np.testing.assert_array_equal(mesh.faces, mesh_faces(model))


def test_meshes_y_up_for_slam_world(tmp_path, synthetic_body_path):
    result, model = read_small_result(write_small_result(tmp_path, synthetic_body_path, False))
    (path,) = export_meshes(result, model, tmp_path / "meshes", "ply", frames=slice(0, 1))[:1]
    verts, _ = posed(result, model, slice(0, 1))
    mesh = trimesh.load(path, process=False)
    np.testing.assert_allclose(mesh.vertices, verts[0, 0] @ OPENCV_TO_Y_UP.T, atol=1e-6)


def test_meshes_refuse_non_empty_folder(tmp_path, loaded):
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        export_meshes(*loaded, tmp_path / "meshes")
    assert [p.name for p in (tmp_path / "meshes").iterdir()] == ["notes.txt"]
