"""The restricted unpickler: data comes back, code in a hostile pickle is refused and never runs."""

import builtins
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from slahmr_opt.errors import InputError
from slahmr_opt.files.safe_pickle import load_npy_object, load_pickle


class _RunsShell:
    """Unpickling calls ``os.system(command)``."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _OpensFile:
    """Unpickling calls ``open(path, "w")``, which creates the file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


def _payloads(marker: Path) -> dict[str, object]:
    return {
        "shell": {"frame": {"tid": [1], "smpl": [_RunsShell(f"touch {marker}")]}},
        "open": [np.zeros(3), _OpensFile(marker)],
        "object_array": {"extra_data": np.array([_RunsShell(f"touch {marker}"), 1], dtype=object)},
    }


def _write(path: Path, payload, how: str) -> Path:
    if how == "plain":
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    elif how == "joblib":
        joblib.dump(payload, path)
    else:
        joblib.dump(payload, path, compress=3)
    return path


@pytest.mark.parametrize("how", ["plain", "joblib", "joblib_compressed"])
@pytest.mark.parametrize("kind", ["shell", "open", "object_array"])
def test_hostile_pickle_is_refused_and_never_runs(tmp_path, how, kind):
    marker = tmp_path / "pwned"
    path = _write(tmp_path / f"{kind}.pkl", _payloads(marker)[kind], how)
    with pytest.raises(InputError, match="is not allowed") as err:
        load_pickle(path, "PHALP pickle")
    assert err.value.path == str(path) and f"{kind}.pkl" in str(err.value)
    assert "nothing was executed" in str(err.value)
    assert not marker.exists()


def test_hostile_object_npy_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": _RunsShell(f"touch {marker}")}], dtype=object))
    with pytest.raises(InputError, match="is not allowed") as err:
        load_npy_object(path, "results file")
    assert "evil.npy" in str(err.value) and not marker.exists()


@pytest.mark.parametrize("how", ["plain", "joblib", "joblib_compressed"])
def test_data_round_trips(tmp_path, how):
    payload = {
        "/imgs/000001.jpg": {
            "time": 1,
            "tid": [np.int64(3)],
            "conf": [np.float32(0.9)],
            "bbox": [np.arange(4.0)],
            "smpl": [{"betas": np.ones(10, dtype=np.float32)}],
            "size": [[720, 1280]],
            "names": ("a", b"b", {1, 2}, frozenset({3}), slice(1, 2), 1 + 2j),
            "ordered": OrderedDict(a=1),
        }
    }
    loaded = load_pickle(_write(tmp_path / "ok.pkl", payload, how), "PHALP pickle")
    frame = loaded["/imgs/000001.jpg"]
    assert frame["tid"] == [3] and frame["size"] == [[720, 1280]]
    np.testing.assert_array_equal(frame["bbox"][0], np.arange(4.0))
    assert frame["smpl"][0]["betas"].dtype == np.float32
    assert frame["names"] == payload["/imgs/000001.jpg"]["names"]
    assert frame["ordered"] == OrderedDict(a=1)


def test_torch_tensors_only_when_asked(tmp_path):
    path = tmp_path / "t.pkl"
    joblib.dump({"embedding": torch.arange(3.0)}, path)
    with pytest.raises(InputError, match="torch"):
        load_pickle(path, "PHALP pickle")
    torch.testing.assert_close(
        load_pickle(path, "PHALP pickle", torch_tensors=True)["embedding"], torch.arange(3.0)
    )


@pytest.mark.parametrize("how", ["plain", "joblib_compressed"])
def test_truncated_and_garbage_files_name_the_file(tmp_path, how):
    path = _write(tmp_path / "cut.pkl", {"a": np.arange(1000.0)}, how)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.pkl: cannot read as a PHALP pickle"):
        load_pickle(path, "PHALP pickle")
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"this is not a pickle at all")
    with pytest.raises(InputError, match="garbage.pkl: cannot read as a PHALP pickle"):
        load_pickle(garbage, "PHALP pickle")
    with pytest.raises(InputError, match="missing.pkl: PHALP pickle not found"):
        load_pickle(tmp_path / "missing.pkl", "PHALP pickle")


def test_load_npy_object(tmp_path):
    data = {"poses": np.arange(6.0).reshape(2, 3), "ids": [1, 2], "name": "seq"}
    np.save(tmp_path / "d.npy", data)
    loaded = load_npy_object(tmp_path / "d.npy", "TRAM results")
    assert set(loaded) == {"poses", "ids", "name"} and loaded["ids"] == [1, 2]
    np.testing.assert_array_equal(loaded["poses"], data["poses"])
    np.save(tmp_path / "n.npy", np.arange(5))
    np.testing.assert_array_equal(load_npy_object(tmp_path / "n.npy", "array"), np.arange(5))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="bad.npy"):
        load_npy_object(tmp_path / "bad.npy", "TRAM results")
