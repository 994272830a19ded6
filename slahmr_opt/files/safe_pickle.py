"""Restricted unpickling of untrusted files: joblib pickles, plain pickles and object ``.npy``.

The field's tools write their outputs as pickles: PHALP and WHAM with ``joblib.dump`` (often
zlib-compressed), TRAM with ``np.save`` of a dict (an object array). ``pickle.load`` on such a file
runs whatever callables its ``REDUCE`` opcodes name, so a downloaded or shared file could run
code. Here every global a pickle asks for goes through ``find_class`` and only an allow-list of
data constructors is returned:

* numpy arrays, dtypes and scalars;
* plain builtins (``set``, ``frozenset``, ``slice``, ``complex``, ``bytearray``, ``dict``,
  ``list``) and ``collections.OrderedDict``;
* ``collections.defaultdict`` (WHAM dumps one), read back as a plain ``dict``: its default factory
  is never called;
* joblib's ``NumpyArrayWrapper`` (its array bytes follow it in the stream; joblib >= 1.6 routes
  the nested pickle of an object array through the same restricted ``find_class``);
* with ``torch_tensors=True``: tensors pickled by ``pickle``/``np.save``, whose storages are
  re-read with ``torch.load(weights_only=True)`` instead of torch's own unrestricted loader.

Anything else (``os.system``, ``builtins.eval``, a class of the tool that wrote the file) is
refused with an ``InputError`` naming the file and the global; nothing it names is called.

``load_npz_objects`` reads an ``.npz`` whose members may be pickled objects (TRACE saves
``np.savez(path, outputs=dict, ...)``) member by member through the same restricted unpickler,
never through ``np.load(allow_pickle=True)``.
"""

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler
from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import READ_ERRORS, reason, require_file

NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2
}
#: Plain data constructors (sets, slices, ...), as pickled by builtins and numpy.
SAFE_BUILTINS = {
    t.__name__: t for t in (object, set, frozenset, slice, complex, bytearray, dict, list)
}


def _plain_dict(*_factory) -> dict:
    """Stand-in for ``collections.defaultdict``: a plain dict (the factory is dropped, uncalled)."""
    return {}


def _numpy_dtype_class(name: str):
    """numpy >= 2 pickles dtypes as ``numpy.dtypes.Float32DType`` etc.: admit those classes."""
    import numpy.dtypes

    cls = getattr(numpy.dtypes, name, None)
    if isinstance(cls, type) and issubclass(cls, np.dtype):
        return cls
    return None


def _tensor_from_storage_bytes(data: bytes):
    """Stand-in for ``torch.storage._load_from_bytes``, which calls ``torch.load`` unrestricted."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def _torch_globals() -> dict[tuple[str, str], Any]:
    import torch
    import torch._utils

    return {
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _tensor_from_storage_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }


class RestrictedUnpickler(NumpyUnpickler):
    """joblib's unpickler (reads plain pickles too) with an allow-list ``find_class``.

    Subclasses may admit more by overriding ``extra_global`` (return None to refuse).
    """

    def __init__(self, file, what: str, torch_tensors: bool = False, encoding: str = "ASCII"):
        super().__init__("", file, ensure_native_byte_order=True)
        self.encoding = encoding
        self.what = what
        self.allowed = _torch_globals() if torch_tensors else {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in NUMPY_GLOBALS:
            return super().find_class(module, name)
        if module in ("__builtin__", "builtins") and name in SAFE_BUILTINS:
            return SAFE_BUILTINS[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("collections", "defaultdict"):
            return _plain_dict
        if module == "joblib.numpy_pickle" and name == "NumpyArrayWrapper":
            return NumpyArrayWrapper
        if module == "numpy.dtypes" and _numpy_dtype_class(name) is not None:
            return _numpy_dtype_class(name)
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        found = self.extra_global(module, name)
        if found is not None:
            return found
        raise pickle.UnpicklingError(
            f"global {module}.{name} is not allowed in a {self.what} (only numpy arrays and "
            "plain Python data are read from pickles; nothing was executed)"
        )

    def extra_global(self, module: str, name: str) -> Any:
        return None


def load_pickle(
    path: str | Path,
    what: str,
    torch_tensors: bool = False,
    unpickler: type[RestrictedUnpickler] = RestrictedUnpickler,
    encoding: str = "ASCII",
) -> Any:
    """Read a pickle or ``joblib.dump`` file (any joblib compression) with the restricted unpickler.

    Args:
        path: the file.
        what: what the file is, for messages ("PHALP pickle").
        torch_tensors: also admit torch tensors (storages are read with ``weights_only=True``).
        unpickler: a ``RestrictedUnpickler`` subclass admitting more globals.
        encoding: how Python 2 ``str`` objects are decoded (``"latin1"`` for numpy arrays).

    Raises:
        InputError: the file is missing, not a pickle, or needs a global that is not allowed.
    """
    path = require_file(path, what)
    try:
        with open(path, "rb") as raw:
            with _validate_fileobject_and_memmap(raw, str(path), None) as (f, _):
                if isinstance(f, str):  # joblib < 0.10 layout with companion .npy files
                    raise InputError(path, f"{what} uses joblib's pre-0.10 layout; re-save it")
                return unpickler(f, what, torch_tensors, encoding).load()
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise InputError(path, f"cannot read as a {what}: {reason(exc)}") from None


def _read_npy(f, what: str, torch_tensors: bool) -> Any:
    """One ``.npy`` stream: numeric arrays by numpy, object arrays by the restricted unpickler."""
    version = np.lib.format.read_magic(f)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read_header(f)
    if not dtype.hasobject:
        f.seek(0)
        return np.load(f, allow_pickle=False)
    array = RestrictedUnpickler(f, what, torch_tensors, "latin1").load()
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise pickle.UnpicklingError(f"the .npy payload is not the {shape} array its header says")
    return array.item() if array.shape == () else array


def load_npy_object(path: str | Path, what: str, torch_tensors: bool = False) -> Any:
    """Read an ``.npy`` file written by ``np.save`` of any object (dict, list, array).

    Numeric arrays are read by numpy without unpickling; object arrays (``np.save(path, dict)``)
    go through the restricted unpickler. A 0-d object array is unwrapped to its object.

    Raises:
        InputError: the file is missing, not an ``.npy`` file, or its pickle is refused.
    """
    path = require_file(path, what)
    try:
        with open(path, "rb") as f:
            return _read_npy(f, what, torch_tensors)
    except READ_ERRORS as exc:
        raise InputError(path, f"cannot read as a {what} (.npy): {reason(exc)}") from None


def load_npz_objects(path: str | Path, what: str, torch_tensors: bool = False) -> dict[str, Any]:
    """Read every member of an ``.npz`` archive, unpickling object members with the allow-list.

    ``np.savez(path, outputs=some_dict)`` stores ``outputs`` as a pickled 0-d object array;
    here it comes back as the dict (0-d object arrays are unwrapped, as in ``load_npy_object``).
    Numeric members are plain arrays, read without unpickling.

    Returns:
        Mapping from member name (without ``.npy``) to its array or object.

    Raises:
        InputError: the file is missing, not a zip archive, or a member's pickle is refused.
    """
    path = require_file(path, what)
    out: dict[str, Any] = {}
    key = ""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                key = name[: -len(".npy")] if name.endswith(".npy") else name
                with archive.open(name) as member:
                    # Zip members seek slowly and not at all when compressed: read to memory.
                    out[key] = _read_npy(io.BytesIO(member.read()), what, torch_tensors)
    except zipfile.BadZipFile as exc:
        raise InputError(path, f"{what} is not an .npz archive ({reason(exc)})") from None
    except READ_ERRORS as exc:
        raise InputError(
            path, f"cannot read as a {what} (.npz member {key!r}): {reason(exc)}"
        ) from None
    return out
