"""GLB export: re-read by trimesh, and the skin and animation evaluated as a viewer does.

Joints of the evaluated skeleton must equal ``results.npz``'s joints (float32 rounding only).
Vertices may differ from the body model's only by what a glTF skin cannot hold: with all of a
vertex's weights kept (``influences=8``; the synthetic models have at most 5 per vertex), the
per-vertex error is bounded by the length of that vertex's pose blend shape offset (LBS of
rotated offsets cannot lengthen them), and is float rounding for a model without pose blend
shapes.
"""

import numpy as np
import pytest
import torch
import trimesh
from body.synthetic_model import write_synthetic_smpl_pkl, write_synthetic_smplh_npz
from export_helpers import (
    FPS,
    FRAME_OFFSET,
    MASK_1,
    NUM_FRAMES,
    GlbReader,
    read_small_result,
    write_small_result,
)
from scipy.spatial.transform import Rotation

from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.io.bodies import camera_to_world, intrinsics, mesh_faces, posed, rest
from slahmr_opt.io.export.glb import export_glb
from slahmr_opt.io.export.motion import OPENCV_TO_Y_UP

PEOPLE = ("person_7", "person_b_2")
JOINT_TOL = 2e-5  # metres: float32 storage of rotations, offsets and vertices
FLOAT_TOL = 5e-5  # metres: float32 LBS of vertices up to ~2 m from the origin


@pytest.fixture(scope="module")
def flat_body_path(tmp_path_factory):
    """Synthetic SMPL-layout model without pose blend shapes."""
    return write_synthetic_smpl_pkl(
        tmp_path_factory.mktemp("flat") / "flat.pkl", posedirs_nonzero=False
    )


def _export(tmp_path, model_path, aligned=True, influences=4, model_type="smpl"):
    results = write_small_result(tmp_path / "fit", model_path, aligned, model_type)
    result, model = read_small_result(results)
    path = export_glb(result, model, tmp_path / "scene.glb", influences=influences)
    return result, model, GlbReader(path)


def _rotations(result, p: int, t: int) -> np.ndarray:
    """(22, 3, 3) root and body joint rotations of person p at frame t, float64."""
    body = result.body
    aa = torch.cat([body.root_orient[p, t][None], body.pose_body[p, t]]).double()
    return rotvec_to_rotmat(aa).numpy()


def _pose_blend_lengths(result, model, p: int, t: int) -> np.ndarray:
    """(V,) length of each vertex's pose blend shape offset (native model) at frame t."""
    rot = _rotations(result, p, t)
    feature = np.concatenate([(rot[1:] - np.eye(3)).reshape(-1), np.zeros(18)])  # hands: rest
    posedirs = model.posedirs.double().numpy()  # (207, V * 3)
    return np.linalg.norm((feature @ posedirs).reshape(-1, 3), axis=1)


@pytest.mark.parametrize("aligned", [True, False])
def test_joints_equal_results(tmp_path, synthetic_body_path, aligned):
    result, model, glb = _export(tmp_path, synthetic_body_path, aligned)
    F = np.eye(3) if aligned else OPENCV_TO_Y_UP
    errors = []
    for p, name in enumerate(PEOPLE):
        for t in np.flatnonzero(result.track_mask[p].numpy()):
            joints, _ = glb.skinned(name, t)
            errors.append(np.abs(joints - result.joints[p, t].numpy() @ F.T).max())
    assert len(errors) == NUM_FRAMES + MASK_1.sum()
    assert max(errors) < JOINT_TOL, max(errors)


def test_vertices_differ_by_pose_blend_shapes_only(tmp_path, synthetic_body_path):
    result, model, glb = _export(tmp_path, synthetic_body_path, influences=8)
    verts, _ = posed(result, model)
    excess, largest = [], 0.0
    for p, name in enumerate(PEOPLE):
        for t in np.flatnonzero(result.track_mask[p].numpy()):
            _, skinned = glb.skinned(name, t)
            err = np.linalg.norm(skinned - verts[p, t], axis=1)
            excess.append((err - _pose_blend_lengths(result, model, p, t)).max())
            largest = max(largest, err.max())
    assert max(excess) < FLOAT_TOL, max(excess)
    assert largest > 1e-3  # the synthetic pose blend shapes do show


@pytest.mark.parametrize("influences", [4, 8])
def test_vertices_exact_without_pose_blend_shapes(tmp_path, flat_body_path, influences):
    result, model, glb = _export(tmp_path, flat_body_path, influences=influences)
    verts, _ = posed(result, model)
    err = max(
        np.abs(glb.skinned(name, t)[1] - verts[p, t]).max()
        for p, name in enumerate(PEOPLE)
        for t in np.flatnonzero(result.track_mask[p].numpy())
    )
    if influences == 8:
        assert err < FLOAT_TOL, err
    else:  # spine3 vertices have 5 influences in the synthetic model: top 4 drift
        assert err < 0.05, err


def test_skin_weights_are_the_models_largest(tmp_path, synthetic_body_path):
    result, model, glb = _export(tmp_path, synthetic_body_path, influences=4)
    node = glb.tree["nodes"][glb.names["person_7"]]
    attrs = glb.tree["meshes"][node["mesh"]]["primitives"][0]["attributes"]
    joints = glb.accessor(attrs["JOINTS_0"]).astype(int)
    weights = glb.accessor(attrs["WEIGHTS_0"])
    assert "JOINTS_1" not in attrs
    model_w = model.skinning_weights().double().numpy()
    for v in range(0, len(model_w), 7):
        top = np.sort(model_w[v])[::-1][:4]
        top = top[top > 0]
        np.testing.assert_allclose(np.sort(weights[v])[::-1][: len(top)], top / top.sum(), 1e-6)
        used = weights[v] > 0
        np.testing.assert_allclose(model_w[v, joints[v, used]], top[: used.sum()] * 1.0, 0, 1e-7)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)


def test_trimesh_rereads_people_and_camera_path(tmp_path, synthetic_body_path):
    result, model, _ = _export(tmp_path, synthetic_body_path, aligned=False)
    scene = trimesh.load(tmp_path / "scene.glb")
    assert {*PEOPLE, "camera_path", "camera_frustums"} <= set(scene.geometry)
    rest_verts, _ = rest(result, model)
    for p, name in enumerate(PEOPLE):
        mesh = scene.geometry[name]
        np.testing.assert_allclose(mesh.vertices, rest_verts[p], atol=1e-6)
        np.testing.assert_array_equal(mesh.faces, mesh_faces(model))
    transform, geom = scene.graph.get("camera_path")
    points = trimesh.transform_points(scene.geometry[geom].vertices, transform)
    _, centres = camera_to_world(result)
    expected = centres @ OPENCV_TO_Y_UP.T
    gaps = np.linalg.norm(points[:, None] - expected[None], axis=-1)
    assert gaps.min(1).max() < 1e-5 and gaps.min(0).max() < 1e-5


def test_untracked_frames_hidden_and_timeline(tmp_path, synthetic_body_path):
    result, model, glb = _export(tmp_path, synthetic_body_path)
    nodes = glb.tree["nodes"]
    roots = {nodes[i]["name"]: i for i in glb.tree["scenes"][0]["nodes"]}
    assert set(roots) == {*PEOPLE, "person_7_rig", "person_b_2_rig", "camera_path",
                          "camera_frustums", "camera"}  # fmt: skip
    assert nodes[nodes[roots["person_7_rig"]]["children"][0]]["name"] == "person_7_pelvis"
    anim = glb.tree["animations"][0]
    scale = [
        (anim["samplers"][c["sampler"]], c["target"]["node"])
        for c in anim["channels"]
        if c["target"]["path"] == "scale"
    ]
    assert len(scale) == 1 and scale[0][0]["interpolation"] == "STEP"  # only person 1 has gaps
    assert glb.tree["nodes"][scale[0][1]]["name"] == "person_b_2_pelvis"
    np.testing.assert_array_equal(glb.accessor(scale[0][0]["output"])[:, 0], MASK_1)
    for t in range(NUM_FRAMES):
        _, verts = glb.skinned("person_b_2", t)
        spread = np.ptp(verts, axis=0).max()
        assert (spread > 0.1) if MASK_1[t] else (spread < 1e-6)  # float32 weight sums
    times = glb.accessor(anim["samplers"][0]["input"])
    np.testing.assert_allclose(times, np.arange(NUM_FRAMES) / FPS, atol=1e-7)
    extras = glb.tree["extras"]["slahmr_opt"]
    assert extras["fps"] == FPS and extras["frame_offset"] == FRAME_OFFSET


@pytest.mark.parametrize("aligned", [True, False])
def test_animated_camera_is_the_fitted_camera(tmp_path, synthetic_body_path, aligned):
    """The ``camera`` node at every frame sits at the fitted camera's centre and looks along its
    optical axis (glTF: -z forward, +y up; OpenCV: +z forward, +y down), in the export world;
    its field of view is the focal length's."""
    result, _, glb = _export(tmp_path, synthetic_body_path, aligned)
    nodes = glb.tree["nodes"]
    node = next(i for i, n in enumerate(nodes) if n.get("name") == "camera")
    camera = glb.tree["cameras"][nodes[node]["camera"]]["perspective"]
    fx, fy = np.median(intrinsics(result)[:, :2], axis=0)
    H, W = result.cameras.image_size
    assert camera["yfov"] == pytest.approx(2 * np.arctan(H / (2 * fy)))
    assert camera["aspectRatio"] == pytest.approx(W * fy / (H * fx))
    anim = glb.tree["animations"][0]
    tracks = {c["target"]["path"]: glb.accessor(anim["samplers"][c["sampler"]]["output"])
              for c in anim["channels"] if c["target"]["node"] == node}  # fmt: skip
    assert set(tracks) == {"translation", "rotation"}
    F = np.eye(3) if aligned else OPENCV_TO_Y_UP
    R_c2w, centres = camera_to_world(result)
    R = Rotation.from_quat(tracks["rotation"]).as_matrix()  # (T, 3, 3) glTF camera to world
    np.testing.assert_allclose(tracks["translation"], centres @ F.T, atol=1e-5)
    np.testing.assert_allclose(R @ [0, 0, -1], (F @ R_c2w)[:, :, 2], atol=1e-6)
    np.testing.assert_allclose(R @ [0, 1, 0], -(F @ R_c2w)[:, :, 1], atol=1e-6)


def test_smplh_model_weights_folded_onto_24_joints(tmp_path):
    model_path = write_synthetic_smplh_npz(tmp_path / "SMPLH_NEUTRAL.npz")
    result, model, glb = _export(tmp_path, model_path, influences=8, model_type="smplh")
    verts, _ = posed(result, model)
    layer = model.layer
    for p, name in enumerate(PEOPLE):
        t = int(np.flatnonzero(result.track_mask[p].numpy())[-1])
        joints, skinned = glb.skinned(name, t)
        assert np.abs(joints - result.joints[p, t].numpy()).max() < JOINT_TOL
        rot = _rotations(result, p, t)
        feature = np.zeros((51, 3, 3))
        feature[:21] = rot[1:] - np.eye(3)
        blend = feature.reshape(-1) @ layer.posedirs.double().numpy()
        bound = np.linalg.norm(blend.reshape(-1, 3), axis=1)
        err = np.linalg.norm(skinned - verts[p, t], axis=1)
        assert (err - bound).max() < FLOAT_TOL
