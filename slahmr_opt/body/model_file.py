"""Safe reading of body model files (SMPL-layout .pkl, SMPL-H/SMPL-X .npz) into plain numpy.

Body model .pkl files come from users. ``pickle.load`` on them would run whatever their reduce
calls say, so they are read with a restricted unpickler that admits only numpy array and scipy
sparse matrix reconstruction. SMPL's official files store some arrays as chumpy objects: those
are mapped back to the numpy array they wrap (their ``x``), or refused with a message.
"""

import copyreg
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from slahmr_opt.errors import InputError
from slahmr_opt.files.safe_pickle import RestrictedUnpickler, load_pickle

log = logging.getLogger(__name__)

SMPL_LAYOUT_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                    "kintree_table", "f")  # fmt: skip
CONVERT_HINT = (
    "convert it to a pickle of plain numpy arrays (load it once where chumpy is installed, "
    "replace every chumpy object by np.array(obj), and pickle the dict again)"
)

_SPARSE_CLASSES = {
    "csc_matrix": scipy.sparse.csc_matrix,
    "csr_matrix": scipy.sparse.csr_matrix,
    "coo_matrix": scipy.sparse.coo_matrix,
    "csc_array": scipy.sparse.csc_array,
    "csr_array": scipy.sparse.csr_array,
    "coo_array": scipy.sparse.coo_array,
}
_SPARSE_MODULES = ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse.csr", "scipy.sparse.coo",
                   "scipy.sparse._csc", "scipy.sparse._csr", "scipy.sparse._coo")  # fmt: skip


class _ChumpyStub:
    """Stands in for any chumpy class while unpickling; keeps the pickled state only."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ state)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        self.state = state if isinstance(state, dict) else {}


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` limited to the classes the unpickler admitted."""
    if base is not object or not (cls is _ChumpyStub or cls in _SPARSE_CLASSES.values()):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r} from {base!r}")
    return copyreg._reconstructor(cls, base, state)


class _BodyModelUnpickler(RestrictedUnpickler):
    """Also admits scipy sparse matrices and stands chumpy objects in with ``_ChumpyStub``."""

    def extra_global(self, module: str, name: str) -> Any:
        if module in _SPARSE_MODULES and name in _SPARSE_CLASSES:
            return _SPARSE_CLASSES[name]
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        return None


def _to_plain(value: Any, key: str, path: Path) -> Any:
    """Chumpy stubs -> their numpy array, scipy sparse -> dense numpy; others unchanged."""
    if isinstance(value, _ChumpyStub):
        x = value.state.get("x")
        if not isinstance(x, np.ndarray):
            raise InputError(path, f"key {key!r} is a chumpy expression, not an array; "
                             f"{CONVERT_HINT}")  # fmt: skip
        return x
    if scipy.sparse.issparse(value):
        return np.asarray(value.toarray())
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
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"cannot read as a body model .npz: {exc}") from exc
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
