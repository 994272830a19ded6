"""Loading model files: restricted unpickling, chumpy mapping, errors naming the file, folders."""

import pickle
import shutil
import sys
import types

import numpy as np
import pytest
import torch

from body.synthetic_model import synthetic_smpl_dict, write_synthetic_smplh_npz
from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.body.model_file import load_pickle_dict
from slahmr_opt.errors import ConfigError, InputError


class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_malicious_pickle_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    data = synthetic_smpl_dict()
    data["v_template"] = _RunsCommand(f"touch {marker}")
    path.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(InputError, match="not allowed") as err:
        load_body_model(BodyConfig(model_path=str(path)))
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_other_globals_refused(tmp_path):
    path = tmp_path / "eval.pkl"
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(InputError, match="builtins.eval"):
        load_pickle_dict(path)


def _fake_chumpy(monkeypatch):
    """Register a stand-in ``chumpy.ch.Ch`` (state: the wrapped array ``x``) for pickling."""
    ch_mod = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch_mod.Ch = Ch
    root = types.ModuleType("chumpy")
    root.ch = ch_mod
    monkeypatch.setitem(sys.modules, "chumpy", root)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch_mod)
    return Ch


def test_chumpy_arrays_mapped_to_numpy(tmp_path, monkeypatch):
    Ch = _fake_chumpy(monkeypatch)
    data = synthetic_smpl_dict()
    data["shapedirs"] = Ch(data["shapedirs"])
    data["v_template"] = Ch(data["v_template"])
    blob = pickle.dumps(data, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    path = tmp_path / "chumpy.pkl"
    path.write_bytes(blob)
    loaded = load_pickle_dict(path)
    assert isinstance(loaded["shapedirs"], np.ndarray)
    np.testing.assert_array_equal(loaded["v_template"], synthetic_smpl_dict()["v_template"])
    load_body_model(BodyConfig(model_path=str(path)))


def test_chumpy_expression_refused(tmp_path, monkeypatch):
    Ch = _fake_chumpy(monkeypatch)
    expr = Ch(None)
    del expr.x
    data = synthetic_smpl_dict()
    data["weights"] = expr
    path = tmp_path / "expr.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(InputError, match="chumpy"):
        load_pickle_dict(path)


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.pkl"
    with pytest.raises(InputError) as err:
        load_body_model(BodyConfig(model_path=str(path)))
    assert err.value.path == str(path)


@pytest.mark.parametrize("problem", ["missing_key", "bad_shape", "not_a_dict", "garbage"])
def test_malformed_file_names_it(tmp_path, problem):
    path = tmp_path / f"{problem}.pkl"
    data = synthetic_smpl_dict()
    if problem == "missing_key":
        del data["J_regressor"]
        blob = pickle.dumps(data)
    elif problem == "bad_shape":
        data["weights"] = data["weights"][:, :20]
        blob = pickle.dumps(data)
    elif problem == "not_a_dict":
        blob = pickle.dumps([1, 2, 3])
    else:
        blob = b"definitely not a pickle"
    path.write_bytes(blob)
    with pytest.raises(InputError) as err:
        load_body_model(BodyConfig(model_path=str(path)))
    assert str(path) in str(err.value)


def test_folder_resolution(tmp_path, synthetic_body_path):
    shutil.copy(synthetic_body_path, tmp_path / "SMPL_MALE.pkl")
    model = load_body_model(BodyConfig(model_path=str(tmp_path), gender="male"))
    assert model.gender == "male" and model.num_vertices == 300
    (tmp_path / "smpl").mkdir()
    shutil.copy(synthetic_body_path, tmp_path / "smpl" / "SMPL_NEUTRAL.pkl")
    assert load_body_model(BodyConfig(model_path=str(tmp_path))).num_vertices == 300
    with pytest.raises(InputError, match="SMPL_FEMALE.pkl"):
        load_body_model(BodyConfig(model_path=str(tmp_path), gender="female"))


def test_config_errors(synthetic_body_path):
    with pytest.raises(ConfigError):
        load_body_model(BodyConfig(model_type="smpl-x"))
    with pytest.raises(ConfigError):
        load_body_model(BodyConfig(gender="other"))
    with pytest.raises(ConfigError):
        load_body_model(BodyConfig(backend="fast"))
    with pytest.raises(ConfigError, match="model_path"):
        load_body_model(BodyConfig(model_type="smplh"))
    with pytest.raises(InputError, match="joints"):
        load_body_model(BodyConfig(model_path=str(synthetic_body_path), model_type="smplh"))


def test_smplh_npz_through_smplx(tmp_path):
    path = write_synthetic_smplh_npz(tmp_path / "SMPLH_NEUTRAL.npz")
    model = load_body_model(BodyConfig(model_path=str(tmp_path), model_type="smplh"),
                            dtype=torch.float64)  # fmt: skip
    assert type(model).__name__ == "SmplxBodyModel" and model.num_vertices == 6890
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    pose = torch.zeros(2, 21, 3, dtype=torch.float64)
    out = model(torch.zeros(2, 10, dtype=torch.float64), zeros, pose, zeros, return_vertices=True)
    assert out.joints.shape == (2, 24, 3) and out.keypoint_vertices.shape == (2, 11, 3)
    data = np.load(path)
    rest = data["J_regressor"] @ data["v_template"]
    np.testing.assert_allclose(out.joints[0, :22].numpy(), rest[:22], atol=1e-5)
    np.testing.assert_allclose(out.joints[0, 22:].numpy(), rest[[25, 40]], atol=1e-5)
    with pytest.raises(InputError, match="24 joints"):
        load_body_model(BodyConfig(model_path=str(path), model_type="smplh", backend="native"))
