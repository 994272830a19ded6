"""Safe reading of body model files (SMPL-layout .pkl, SMPL-H/SMPL-X .npz) into plain numpy.

Body model .pkl files come from users. ``pickle.load`` on them would run whatever their reduce
calls say, so they are read with a restricted unpickler that admits only numpy array
reconstruction and stand-ins for scipy sparse matrices and chumpy objects:

* a scipy sparse matrix (CSC, CSR or COO, SMPL's ``J_regressor``) is never built: its pickled
  state (shape, index and data arrays) is kept and checked (two non-negative dimensions of at most
  ``MAX_DENSE`` entries, integer indices inside the shape, a non-decreasing ``indptr`` that ends at
  the number of entries, numeric data of the same length) before numpy writes the dense array, so
  a crafted file cannot make scipy's compiled code write outside its buffers;
* SMPL's official files store some arrays as chumpy objects: those are mapped back to the numpy
  array they wrap (their ``x``), or refused with a message.
"""

import copyreg
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import READ_ERRORS, reason
from slahmr_opt.files.safe_pickle import RestrictedUnpickler, load_pickle

log = logging.getLogger(__name__)

SMPL_LAYOUT_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                    "kintree_table", "f")  # fmt: skip
CONVERT_HINT = (
    "convert it to a pickle of plain numpy arrays (load it once where chumpy is installed, "
    "replace every chumpy object by np.array(obj), and pickle the dict again)"
)

#: Most entries of a dense array made from a pickled sparse matrix (SMPL-X: 55 x 10,475).
MAX_DENSE = 10**8
_SPARSE_NAMES = ("csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array")
_SPARSE_MODULES = ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse.csr", "scipy.sparse.coo",
                   "scipy.sparse._csc", "scipy.sparse._csr", "scipy.sparse._coo")  # fmt: skip


class _StateStub:
    """Stands in for a class while unpickling; keeps the pickled state (a dict) only."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ state)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        self.state = state if isinstance(state, dict) else {}


class _ChumpyStub(_StateStub):
    """Any chumpy class."""


class _SparseStub(_StateStub):
    """A scipy sparse matrix of ``layout`` ``csc``, ``csr`` or ``coo`` (never constructed)."""

    layout = ""


_SPARSE_STUBS = {n: type(n, (_SparseStub,), {"layout": n[:3]}) for n in _SPARSE_NAMES}


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` limited to the classes the unpickler admitted."""
    if base is not object or not (isinstance(cls, type) and issubclass(cls, _StateStub)):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r} from {base!r}")
    return copyreg._reconstructor(cls, base, state)


class _BodyModelUnpickler(RestrictedUnpickler):
    """Also admits scipy sparse matrices and chumpy objects, as state-only stand-ins."""

    def extra_global(self, module: str, name: str) -> Any:
        if module in _SPARSE_MODULES and name in _SPARSE_STUBS:
            return _SPARSE_STUBS[name]
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        return None


def _index_array(value: Any, what: str) -> np.ndarray:
    array = np.asarray(value) if isinstance(value, np.ndarray) else None
    if array is None or array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} is not a 1-D integer array")
    return array.astype(np.int64)


def _dense_from_sparse(stub: _SparseStub) -> np.ndarray:
    """The dense array of a pickled sparse matrix's state, every index checked first.

    Raises:
        ValueError: the state is not a consistent sparse matrix (the reason).
    """
    s = stub.state
    shape = s.get("_shape", s.get("shape"))
    if not (isinstance(shape, tuple) and len(shape) == 2
            and all(isinstance(n, int | np.integer) and n >= 0 for n in shape)):  # fmt: skip
        raise ValueError(f"shape {shape!r} is not two non-negative integers")
    rows, cols = int(shape[0]), int(shape[1])
    if rows * cols > MAX_DENSE:
        raise ValueError(f"shape {shape} has more than {MAX_DENSE} entries")
    data = s.get("data")
    if not (isinstance(data, np.ndarray) and data.ndim == 1
            and (np.issubdtype(data.dtype, np.number) or data.dtype == bool)):  # fmt: skip
        raise ValueError("data is not a 1-D numeric array")
    if stub.layout == "coo":
        coords = s.get("coords", (s.get("row"), s.get("col")))
        if not (isinstance(coords, tuple) and len(coords) == 2):
            raise ValueError("coordinates are not (row, col)")
        r, c = _index_array(coords[0], "row"), _index_array(coords[1], "col")
    else:
        major, minor = (cols, rows) if stub.layout == "csc" else (rows, cols)
        indptr = _index_array(s.get("indptr"), "indptr")
        indices = _index_array(s.get("indices"), "indices")
        if (len(indptr) != major + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0)
                or indptr[-1] != len(indices)):  # fmt: skip
            raise ValueError(f"indptr does not delimit {len(indices)} entries in {major} slices")
        slices = np.repeat(np.arange(major), np.diff(indptr))
        r, c = (indices, slices) if stub.layout == "csc" else (slices, indices)
    if not len(r) == len(c) == len(data):
        raise ValueError(f"{len(data)} values for {len(r)} row and {len(c)} column indices")
    if len(r) and (r.min() < 0 or r.max() >= rows or c.min() < 0 or c.max() >= cols):
        raise ValueError(f"an index lies outside the shape {shape}")
    dense = np.zeros((rows, cols), dtype=data.dtype)
    np.add.at(dense, (r, c), data)  # repeated entries add up, as in scipy
    return dense


def _to_plain(value: Any, key: str, path: Path) -> Any:
    """Chumpy stubs -> their numpy array, sparse stubs -> dense numpy; others unchanged."""
    if isinstance(value, _ChumpyStub):
        x = value.state.get("x")
        if not isinstance(x, np.ndarray):
            raise InputError(path, f"key {key!r} is a chumpy expression, not an array; "
                             f"{CONVERT_HINT}")  # fmt: skip
        return x
    if isinstance(value, _SparseStub):
        try:
            return _dense_from_sparse(value)
        except ValueError as exc:
            raise InputError(path, f"key {key!r} is not a valid sparse matrix: {exc}") from None
    return value


def load_pickle_dict(path: Path) -> dict[str, Any]:
    """Read a body model .pkl with the restricted unpickler.

    Returns:
        The pickled dict with chumpy arrays and scipy sparse matrices turned into numpy arrays.
    Raises:
        InputError: the file is missing, is not a pickle of a dict, or needs a global other
            than numpy/scipy.sparse reconstruction (nothing it names is ever called).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "body model file not found")
    data = load_pickle(path, "body model file", unpickler=_BodyModelUnpickler, encoding="latin1")
    if not isinstance(data, dict):
        raise InputError(path, f"expected a pickled dict, found {type(data).__name__}")
    return {str(k): _to_plain(v, str(k), path) for k, v in data.items()}


def load_npz_dict(path: Path) -> dict[str, Any]:
    """Read a body model .npz without unpickling: object arrays (SMPL-X's name tables) are skipped.

    Raises:
        InputError: the file is missing or not a valid .npz.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "body model file not found")
    out = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    out[key] = npz[key]
                except ValueError:
                    log.debug("%s: skipping object array %r", path, key)
    except READ_ERRORS as exc:
        raise InputError(path, f"cannot read as a body model .npz: {reason(exc)}") from None
    return out


def load_model_dict(path: Path) -> dict[str, Any]:
    """Read a .pkl or .npz body model file into a dict of plain numpy values."""
    path = Path(path)
    if path.suffix == ".npz":
        return load_npz_dict(path)
    return load_pickle_dict(path)


def num_joints_of(data: dict[str, Any], path: Path) -> int:
    """Number of skeleton joints of a loaded model dict (24 for SMPL, 52 SMPL-H, 55 SMPL-X)."""
    kintree = data.get("kintree_table")
    if kintree is None or np.ndim(kintree) != 2 or np.shape(kintree)[0] != 2:
        raise InputError(path, "missing or malformed 'kintree_table' (expected shape (2, J))")
    return int(np.shape(kintree)[1])


def validate_smpl_layout(data: dict[str, Any], path: Path) -> None:
    """Check the keys and shapes of a SMPL-layout dict (any joint count J).

    Raises:
        InputError: naming the file and the first key that is missing or has a wrong shape.
    """
    missing = [k for k in SMPL_LAYOUT_KEYS if k not in data]
    if missing:
        raise InputError(path, f"not a SMPL-layout body model: missing keys {missing}")
    arrays = {}
    for key in SMPL_LAYOUT_KEYS:
        try:
            arrays[key] = np.asarray(data[key])
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"key {key!r} is not an array: {exc}") from exc
        if arrays[key].dtype == object:
            raise InputError(path, f"key {key!r} is not a numeric array; {CONVERT_HINT}")
    nj = num_joints_of(data, path)
    v = arrays["v_template"]
    nv = v.shape[0] if v.ndim == 2 else -1
    expected = {
        "v_template": (nv, 3),
        "shapedirs": (nv, 3, None),
        "posedirs": (nv, 3, (nj - 1) * 9),
        "J_regressor": (nj, nv),
        "weights": (nv, nj),
        "f": (None, 3),
    }
    for key, shape in expected.items():
        got = arrays[key].shape
        ok = len(got) == len(shape) and all(
            s is None or s == g for s, g in zip(shape, got, strict=False)
        )
        if not ok or nv <= 0:
            want = tuple("*" if s is None else s for s in shape)
            raise InputError(path, f"key {key!r} has shape {got}, expected {want}")
