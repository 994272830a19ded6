"""Validation shared by the input readers: every problem becomes an ``InputError`` naming the file.

Readers never let a raw numpy, json or torch exception reach the user: they open files through
``load_npz``, ``load_json`` and ``load_table`` and check arrays with ``check_shape``,
``check_finite``, ``check_positive`` and ``check_range`` (plausible ranges, naming the limit).
Shape patterns use dimension letters (``("P", "T", 3)``); a ``dims`` dictionary binds each
letter on first use so that several keys of one file must agree.
"""

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slahmr_opt.errors import InputError

log = logging.getLogger(__name__)

ShapePattern = Sequence[int | str]


#: Plausible ranges of values as they enter (the readers refuse more, naming the limit): frame
#: rates (a high-speed camera films at 1000 frames/s) and camera or body translations in metres
#: (10 km: further than any scene a person can be fitted in; SLAM units are of the same order).
MAX_FPS = 1000.0
MAX_TRANSLATION = 1e4

#: What reading a malformed binary file can raise: numpy and zipfile parse untrusted headers
#: and members and raise whatever they meet (``ValueError``, ``zlib.error``, ``MemoryError`` for
#: a header claiming a huge array, ...); every ``Exception`` there becomes one ``InputError``.
READ_ERRORS = (Exception,)


def reason(exc: BaseException) -> str:
    """A one-line reason for a failed read: the exception's text, else what its type means."""
    text = " ".join(str(exc).split())
    if isinstance(exc, EOFError):
        return f"the file ends early{': ' + text if text else ''}"
    if isinstance(exc, MemoryError):
        return f"it claims more data than fits in memory{': ' + text if text else ''}"
    return text or type(exc).__name__


def require_file(path: str | Path, what: str) -> Path:
    """Return ``path`` as a ``Path`` if it is an existing file, else raise ``InputError``."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, f"{what} not found")
    if not path.is_file():
        raise InputError(path, f"{what} is not a file")
    return path


def _open_binary(path: Path, what: str):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(path, f"{what} cannot be opened ({exc})") from None


def load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file without unpickling anything.

    Returns:
        Mapping from key to array.
    """
    require_file(path, what)
    # Open the file ourselves: np.load leaks its handle when the archive is corrupt.
    with _open_binary(path, what) as f:
        try:
            data = np.load(f, allow_pickle=False)
        except READ_ERRORS as exc:
            raise InputError(
                path, f"{what} is not a readable .npz archive ({reason(exc)})"
            ) from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(path, f"{what} holds a single array, expected an .npz archive")
        return {key: _npz_member(data, key, path) for key in data.files}


def _npz_member(data: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return data[key]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise InputError(path, f"key '{key}' cannot be read ({reason(exc)})") from None
        raise InputError(
            path,
            f"key '{key}' holds Python objects ({exc}); store strings as fixed-width "
            "unicode arrays, e.g. np.asarray(list_of_str)",
        ) from None
    except READ_ERRORS as exc:
        raise InputError(path, f"key '{key}' cannot be read ({reason(exc)})") from None


def load_npy(path: Path, what: str) -> np.ndarray:
    """Read one ``.npy`` array without unpickling anything."""
    require_file(path, what)
    with _open_binary(path, what) as f:
        try:
            array = np.load(f, allow_pickle=False)
        except READ_ERRORS as exc:
            raise InputError(path, f"{what} is not a readable .npy array ({reason(exc)})") from None
    if not isinstance(array, np.ndarray):
        raise InputError(path, f"{what} is an archive, expected a single .npy array")
    return array


def load_json(path: Path, what: str) -> Any:
    """Parse a JSON file; decoding problems become ``InputError``."""
    require_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"{what} is not valid JSON ({exc})") from None


def load_table(path: Path, what: str) -> np.ndarray:
    """Read a whitespace-separated numeric text table (``#`` comments allowed).

    Returns:
        (N, C) float64 array.
    """
    require_file(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            table = np.loadtxt(path, dtype=np.float64, comments="#", ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(path, f"{what} is not a numeric text table ({exc})") from None
    if table.size == 0:
        raise InputError(path, f"{what} is empty")
    return table


def as_float(value: Any, path: Path, name: str) -> np.ndarray:
    """Convert ``value`` to a float64 array; non-numeric content becomes ``InputError``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"'{name}' is not numeric ({exc})") from None
    return array


def check_shape(
    array: np.ndarray, pattern: ShapePattern, path: Path, name: str, dims: dict[str, int]
) -> None:
    """Check ``array.shape`` against ``pattern``, binding letters in ``dims`` on first use.

    Args:
        array: the array to check.
        pattern: one entry per axis: an int (exact size) or a letter (size shared by name).
        path: the file, for the message.
        name: the key or field, for the message.
        dims: letter -> size bindings, updated in place.
    """
    expected = "(" + ", ".join(str(p) for p in pattern) + ")"
    if array.ndim != len(pattern):
        raise InputError(path, f"'{name}' has shape {array.shape}, expected {expected}")
    for axis, (size, want) in enumerate(zip(array.shape, pattern, strict=True)):
        if isinstance(want, int):
            if size != want:
                raise InputError(
                    path, f"'{name}' has shape {array.shape}, expected {expected} (axis {axis})"
                )
        elif want in dims and dims[want] != size:
            raise InputError(
                path,
                f"'{name}' has shape {array.shape}, expected {expected} with {want}={dims[want]} "
                "as in the other keys",
            )
        else:
            dims[want] = size


def check_finite(array: np.ndarray, path: Path, name: str) -> None:
    """Raise ``InputError`` if ``array`` holds NaN or infinite values, naming the first one."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            path, f"'{name}' has {int(bad.sum())} NaN/inf values (first at index {first})"
        )


def check_positive(array: np.ndarray, path: Path, name: str) -> None:
    """Raise ``InputError`` unless every entry of ``array`` is finite and > 0."""
    check_finite(array, path, name)
    bad = array <= 0
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(path, f"'{name}' must be > 0, found {array[first]:g} at index {first}")


def check_range(
    array: np.ndarray,
    path: Path | str | None,
    name: str,
    low: float | None = None,
    high: float | None = None,
    what: str = "values",
    unit: str = "",
    why: str = "",
) -> None:
    """Raise ``InputError`` unless every entry of ``array`` lies in ``[low, high]``.

    The message names the key, the most extreme value outside, the limit and (``why``) where the
    limit comes from: ``'kp2d' has coordinates up to 1e+12 px; the limit is 1e+05 (10 x the
    image size)``. Pass magnitudes (``np.abs``) to bound a value on both sides. NaN/inf must
    have been refused before (``check_finite``).

    Args:
        array: the values.
        path: the file, for the message.
        name: the key or field, for the message.
        low, high: the inclusive limits (None: unbounded on that side).
        what: what the values are (``"coordinates"``), for the message.
        unit: appended to numbers (``" px"``).
        why: what the limit is, for the message (``"10 x the image size"``).
    """
    array = np.asarray(array, dtype=np.float64)
    note = f" ({why})" if why else ""
    if high is not None and array.size and array.max() > high:
        raise InputError(path, f"'{name}' has {what} up to {array.max():.4g}{unit}; the limit "
                         f"is {high:.4g}{unit}{note}")  # fmt: skip
    if low is not None and array.size and array.min() < low:
        raise InputError(path, f"'{name}' has {what} down to {array.min():.4g}{unit}; the "
                         f"limit is {low:.4g}{unit}{note}")  # fmt: skip


def as_strings(array: np.ndarray, path: Path, name: str) -> list[str]:
    """Read a 1-D string array (unicode or bytes) as a list of Python strings."""
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise InputError(
            path, f"'{name}' must be a 1-D string array, got dtype {array.dtype} {array.shape}"
        )
    if array.dtype.kind == "S":
        return [s.decode("utf-8", errors="replace") for s in array]
    return [str(s) for s in array]


def as_scalar_string(array: np.ndarray, path: Path, name: str) -> str:
    """Read a 0-d (or one-element) string array as a Python string."""
    if array.size != 1 or array.dtype.kind not in "US":
        raise InputError(path, f"'{name}' must be a string scalar, got {array.dtype} {array.shape}")
    value = array.reshape(-1)[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def as_positive_scalar(array: np.ndarray, path: Path, name: str) -> float:
    """Read a one-element numeric array as a positive finite float."""
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise InputError(
            path, f"'{name}' must be a numeric scalar, got {array.dtype} {array.shape}"
        )
    value = np.asarray(array, dtype=np.float64).reshape(1)
    check_positive(value, path, name)
    return float(value[0])


def check_fps(value: float, path: Path | str | None, name: str = "fps") -> float:
    """``value`` if it is a finite frame rate in ``(0, MAX_FPS]``, else ``InputError``."""
    array = np.asarray([value], dtype=np.float64)
    check_positive(array, path, name)
    check_range(array, path, name, high=MAX_FPS, unit=" frames/s")
    return float(value)


def check_unit_quaternions(quat: np.ndarray, path: Path, name: str) -> np.ndarray:
    """Normalize quaternions, rejecting zero or non-finite ones.

    Args:
        quat: (N, 4) quaternions in any component order.

    Returns:
        (N, 4) unit quaternions in the same order.
    """
    check_finite(quat, path, name)
    norm = np.linalg.norm(quat, axis=-1)
    zero = norm < 1e-8
    if zero.any():
        raise InputError(
            path,
            f"'{name}' has {int(zero.sum())} quaternions of zero norm "
            f"(first at row {int(np.argmax(zero))})",
        )
    off = np.abs(norm - 1.0) > 1e-3
    if off.any():
        log.warning(
            "%s: %d quaternions in '%s' are not unit length; normalizing them",
            path,
            int(off.sum()),
            name,
        )
    return quat / norm[:, None]


def prepare_output(path: Path, overwrite: bool, is_dir: bool = False) -> None:
    """Refuse to replace an existing non-empty output unless ``overwrite`` is set.

    Raises:
        FileExistsError: ``path`` exists, is non-empty and ``overwrite`` is False.
    """
    if is_dir:
        if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
            raise FileExistsError(f"{path}: exists and is not empty; pass overwrite=True")
        path.mkdir(parents=True, exist_ok=True)
        return
    if path.exists() and (path.is_dir() or path.stat().st_size > 0) and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a file path")
    path.parent.mkdir(parents=True, exist_ok=True)


def usual_permissions(path: str | Path) -> None:
    """Give ``path`` a new file's permissions under the umask (``mkstemp`` files are private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write a file through ``write(file_object)`` into a temporary file, then rename it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        usual_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
