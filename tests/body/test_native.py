"""Native backend: equality with smplx, fast path, broadcasting, gradients."""

import pickle

import numpy as np
import pytest
import smplx
import torch

from body.synthetic_model import synthetic_smpl_dict, write_synthetic_smpl_pkl
from slahmr_opt.body import BodyConfig, default_body_path, load_body_model
from slahmr_opt.body.keypoints import SMPLX_VERTEX_ID_KEYS
from slahmr_opt.body.native import NativeBodyModel
from slahmr_opt.geometry.rotations import rotvec_to_rotmat


def random_inputs(batch: tuple[int, ...], num_betas: int = 10, scale: float = 0.4):
    return (
        torch.randn(*batch, num_betas, dtype=torch.float64),
        scale * torch.randn(*batch, 3, dtype=torch.float64),
        scale * torch.randn(*batch, 21, 3, dtype=torch.float64),
        torch.randn(*batch, 3, dtype=torch.float64),
    )


def smplx_reference(path, kp_ids, betas, global_orient, body_pose, transl):
    """Vertices (N, V, 3), joints (N, 24, 3) from smplx.SMPLLayer on the same file."""
    nv = pickle.load(open(path, "rb"))["v_template"].shape[0]
    vertex_ids = {k: min(v, nv - 1) for k, v in smplx.vertex_ids.vertex_ids["smplh"].items()}
    vertex_ids.update(dict(zip(SMPLX_VERTEX_ID_KEYS, kp_ids.tolist(), strict=True)))
    layer = smplx.SMPLLayer(model_path=str(path), num_betas=betas.shape[-1],
                            vertex_ids=vertex_ids).double()  # fmt: skip
    n = betas.shape[0]
    eye = torch.eye(3, dtype=torch.float64).expand(n, 2, 3, 3)
    body = torch.cat([rotvec_to_rotmat(body_pose), eye], dim=1)
    out = layer(betas=betas, global_orient=rotvec_to_rotmat(global_orient)[:, None],
                body_pose=body, transl=transl)  # fmt: skip
    return out.vertices, out.joints[:, :24]


@pytest.fixture(scope="module")
def zero_posedirs_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("body") / "zero_posedirs.pkl"
    return write_synthetic_smpl_pkl(path, posedirs_nonzero=False, seed=3)


@pytest.mark.parametrize("which", ["synthetic", "zero_posedirs", "default"])
def test_native_matches_smplx(which, synthetic_body_path, zero_posedirs_path):
    path = {"synthetic": synthetic_body_path, "zero_posedirs": zero_posedirs_path,
            "default": None}[which]  # fmt: skip
    cfg = BodyConfig(model_path=None if path is None else str(path))
    model = load_body_model(cfg, dtype=torch.float64)
    path = path or default_body_path()
    inputs = random_inputs((4,))
    out = model(*inputs, return_vertices=True)
    ref_v, ref_j = smplx_reference(path, model.keypoint_vertex_ids, *inputs)
    torch.testing.assert_close(out.vertices, ref_v, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.joints, ref_j, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.keypoint_vertices, ref_v[:, model.keypoint_vertex_ids],
                               atol=1e-6, rtol=0)  # fmt: skip


def test_fast_path_equals_full_path(synthetic_body_path):
    model = load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)
    inputs = random_inputs((3, 2))
    fast = model(*inputs)
    full = model(*inputs, return_vertices=True)
    assert fast.vertices is None
    torch.testing.assert_close(fast.joints, full.joints, atol=1e-12, rtol=0)
    kp_from_mesh = full.vertices[..., model.keypoint_vertex_ids, :]
    torch.testing.assert_close(fast.keypoint_vertices, kp_from_mesh, atol=1e-12, rtol=0)


def test_joints_equal_regressed_rest_joints(synthetic_body_path):
    """At rest (zero pose), joints are J_regressor applied to the shaped vertices."""
    model = load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)
    betas = torch.randn(2, 10, dtype=torch.float64)
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    out = model(betas, zeros, torch.zeros(2, 21, 3, dtype=torch.float64), zeros,
                return_vertices=True)  # fmt: skip
    torch.testing.assert_close(out.joints, model.J_regressor @ out.vertices, atol=1e-12, rtol=0)


def test_broadcasting_and_batch_shapes(synthetic_body_path):
    model = load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)
    P, T = 2, 3
    betas = torch.randn(P, 1, 10, dtype=torch.float64)
    _, go, bp, tr = random_inputs((P, T))
    out = model(betas, go, bp, tr, return_vertices=True)
    assert out.joints.shape == (P, T, 24, 3)
    assert out.keypoint_vertices.shape == (P, T, 11, 3)
    assert out.vertices.shape == (P, T, model.num_vertices, 3)
    for p in range(P):
        for t in range(T):
            one = model(betas[p, 0], go[p, t], bp[p, t], tr[p, t])
            assert one.joints.shape == (24, 3)
            torch.testing.assert_close(one.joints, out.joints[p, t], atol=1e-12, rtol=0)
    deep = model(*random_inputs((2, 1, 2, 2)))
    assert deep.joints.shape == (2, 1, 2, 2, 24, 3)


def test_betas_zero_padded_and_too_many_rejected(synthetic_body_path):
    model = load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)
    betas, go, bp, tr = random_inputs((2,))
    short = model(betas[:, :4], go, bp, tr)
    padded = model(torch.cat([betas[:, :4], torch.zeros(2, 6, dtype=torch.float64)], 1), go, bp, tr)
    torch.testing.assert_close(short.joints, padded.joints, atol=0, rtol=0)
    with pytest.raises(ValueError, match="coefficients"):
        model(torch.zeros(2, 11, dtype=torch.float64), go, bp, tr)
    with pytest.raises(ValueError, match="body_pose"):
        model(betas, go, bp[:, :20], tr)
    with pytest.raises(ValueError, match="broadcast"):
        model(betas, go, bp, torch.zeros(3, 3, dtype=torch.float64))


def test_attributes(synthetic_body_path):
    model = load_body_model(BodyConfig(model_path=str(synthetic_body_path), num_betas=6))
    assert model.num_betas == 6 and model.num_vertices == 300
    assert model.model_type == "smpl" and model.gender == "neutral"
    assert model.faces.dtype == torch.long and model.faces.shape[1] == 3
    assert model.parents.tolist()[:4] == [-1, 0, 0, 0] and model.parents.shape == (24,)
    assert model.dtype == torch.float32


def test_smplx_backend_matches_native(synthetic_body_path):
    native = load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)
    layer = load_body_model(BodyConfig(model_path=str(synthetic_body_path), backend="smplx"),
                            dtype=torch.float64)  # fmt: skip
    assert type(layer).__name__ == "SmplxBodyModel"
    inputs = random_inputs((2, 2))
    a, b = native(*inputs, return_vertices=True), layer(*inputs, return_vertices=True)
    for x, y in ((a.joints, b.joints), (a.keypoint_vertices, b.keypoint_vertices),
                 (a.vertices, b.vertices)):  # fmt: skip
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)


def test_sparse_j_regressor_accepted(tmp_path, synthetic_body_path):
    import scipy.sparse

    data = synthetic_smpl_dict()
    data["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
    path = tmp_path / "sparse.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    a = load_body_model(BodyConfig(model_path=str(path)), dtype=torch.float64)
    b = load_body_model(BodyConfig(model_path=str(synthetic_body_path)), dtype=torch.float64)
    inputs = random_inputs((2,))
    torch.testing.assert_close(a(*inputs).joints, b(*inputs).joints, atol=1e-12, rtol=0)


def test_gradcheck(synthetic_body_path):
    data = synthetic_smpl_dict(num_verts=192)
    model = NativeBodyModel(data, synthetic_body_path, num_betas=4, dtype=torch.float64)
    betas, go, bp, tr = random_inputs((1,), num_betas=4)
    args = [x.clone().requires_grad_(True) for x in (betas, go, bp, tr)]

    def fast(*a):
        out = model(*a)
        return out.joints, out.keypoint_vertices

    def full(*a):
        return model(*a, return_vertices=True).vertices

    assert torch.autograd.gradcheck(fast, args, eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(full, args, eps=1e-6, atol=1e-5, fast_mode=True)


def test_keypoint_ids_from_file_or_smpl_size(tmp_path):
    from slahmr_opt.body.native import keypoint_vertex_ids
    from slahmr_opt.errors import InputError

    data = synthetic_smpl_dict()
    assert np.array_equal(keypoint_vertex_ids(data, tmp_path), data["keypoint_vertex_ids"])
    del data["keypoint_vertex_ids"]
    with pytest.raises(InputError, match="keypoint_vertex_ids"):
        keypoint_vertex_ids(data, tmp_path / "x.pkl")
    data["v_template"] = np.zeros((6890, 3))
    smpl_ids = [332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787]
    assert keypoint_vertex_ids(data, tmp_path).tolist() == smpl_ids
