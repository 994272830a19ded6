"""Body model pickles from users: sparse matrices are checked before any array is written, so a
crafted file ends in one ``InputError`` naming the file and key (it used to crash the process
inside scipy's compiled ``toarray``), and valid sparse matrices of every kind read back exactly."""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from fuzz_bytes import mutate

from slahmr_opt.body.model_file import MAX_DENSE, load_pickle_dict
from slahmr_opt.errors import InputError

KINDS = ("csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array")


def _write(path: Path, value, protocol: int = 2) -> Path:
    path.write_bytes(pickle.dumps({"J_regressor": value, "f": np.arange(6)}, protocol=protocol))
    return path


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_valid_sparse_matrices_read_back_exactly(tmp_path, kind, protocol):
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(24, 50)) * (rng.random((24, 50)) < 0.2)
    matrix = getattr(sp, kind)(dense)
    out = load_pickle_dict(_write(tmp_path / "m.pkl", matrix, protocol))
    assert isinstance(out["J_regressor"], np.ndarray)
    np.testing.assert_array_equal(out["J_regressor"], dense)


def test_repeated_coo_entries_add_up_as_in_scipy(tmp_path):
    matrix = sp.coo_matrix(([1.0, 2.0, 4.0], ([0, 0, 1], [1, 1, 2])), shape=(2, 3))
    out = load_pickle_dict(_write(tmp_path / "m.pkl", matrix))
    np.testing.assert_array_equal(out["J_regressor"], matrix.toarray())


def _crafted(kind: str, field: str):
    """A 3 x 4 sparse matrix whose pickled state is broken in ``field``."""
    m = getattr(sp, kind)(np.eye(3, 4))
    if field == "index_far_outside":
        (m.coords[1] if kind.startswith("coo") else m.indices)[0] = 10**7
    elif field == "negative_index":
        (m.coords[0] if kind.startswith("coo") else m.indices)[-1] = -5
    elif field == "indptr_decreasing":
        m.indptr[1], m.indptr[2] = 2, 1
    elif field == "indptr_past_end":
        m.indptr[-1] = 10**6
    elif field == "data_short":
        m.data = m.data[:1]
    elif field == "float_indices":
        m.indices = m.indices.astype(np.float64)
    elif field == "object_data":
        m.data = np.array([object()] * len(m.data))
    elif field == "huge_shape":
        m._shape = (10**6, 10**6)
    elif field == "negative_shape":
        m._shape = (-3, 4)
    return m


CASES = [(k, f) for k in ("csc_matrix", "csr_array") for f in (
    "index_far_outside", "negative_index", "indptr_decreasing", "indptr_past_end", "data_short",
    "float_indices", "huge_shape", "negative_shape")] + [
    (k, f) for k in ("coo_matrix", "coo_array")
    for f in ("index_far_outside", "negative_index", "data_short", "huge_shape")]  # fmt: skip


@pytest.mark.parametrize(("kind", "field"), CASES)
def test_crafted_sparse_matrix_is_refused_with_one_message(tmp_path, kind, field):
    path = _write(tmp_path / "crafted.pkl", _crafted(kind, field))
    with pytest.raises(InputError, match="J_regressor") as info:
        load_pickle_dict(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_dense_limit_is_larger_than_smplx():
    assert 55 * 10475 < MAX_DENSE


def test_fuzzed_body_model_pickles_never_crash_the_process(tmp_path):
    """400 byte-level mutations of a valid model pickle with sparse matrices (flips, cuts,
    inserted bytes): each loads or raises ``InputError``; run in a child process so that a crash
    in compiled code fails the test instead of ending the suite."""
    rng = np.random.default_rng(1)
    value = {"J_regressor": sp.csc_matrix(rng.normal(size=(6, 9)) * (rng.random((6, 9)) < .4)),
             "weights": sp.coo_array(np.eye(5)), "f": np.arange(12).reshape(4, 3)}  # fmt: skip
    seed = pickle.dumps(value, protocol=2)
    for i in range(400):
        (tmp_path / f"{i:03d}.pkl").write_bytes(mutate(seed, rng, max_run=8))
    code = (
        "import sys, pathlib\n"
        "from slahmr_opt.body.model_file import load_pickle_dict\n"
        "from slahmr_opt.errors import InputError\n"
        "for p in sorted(pathlib.Path(sys.argv[1]).glob('*.pkl')):\n"
        "    try:\n"
        "        load_pickle_dict(p)\n"
        "    except InputError:\n"
        "        pass\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
