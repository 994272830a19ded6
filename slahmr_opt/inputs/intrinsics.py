"""Pinhole intrinsics ``[fx, fy, cx, cy]``: SLAHMR's default, ``intrinsics.txt`` files, rescaling.

``intrinsics.txt`` (the file SLAHMR's ``run_slam.py --intrins_path`` reads with ``np.loadtxt``):
whitespace-separated, ``#`` comments allowed, either one row for every frame or one row per frame,
each row ``fx fy cx cy`` or ``fx fy cx cy W H`` (W, H: the image width and height in pixels the
intrinsics refer to). Without a file, SLAHMR's default is ``F = 0.5 * (H + W)``, ``cx = W / 2``,
``cy = H / 2`` (``research/slahmr.md`` section 3.3).
"""

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import (
    check_finite,
    check_positive,
    check_range,
    load_table,
    prepare_output,
    write_atomic,
)

log = logging.getLogger(__name__)

IntrinsicsSource = str | Path | Sequence[float] | np.ndarray | Tensor
"""A path to an ``intrinsics.txt`` file, or ``[fx, fy, cx, cy]`` values of shape (4,) or (T, 4)."""


def check_image_size(size, path: str | Path | None) -> tuple[int, int]:
    """Validate an image size ``(height, width)`` of two positive integers."""
    try:
        height, width = (float(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(path, f"image size must be (height, width), got {size!r}") from None
    if not (height > 0 and width > 0 and height.is_integer() and width.is_integer()):
        raise InputError(path, f"image size must be two positive integers, got {size!r}")
    return int(height), int(width)


def default_intrinsics(image_size: tuple[int, int], num_frames: int) -> Tensor:
    """SLAHMR's default intrinsics for an unknown camera.

    Args:
        image_size: ``(height, width)`` in pixels.
        num_frames: T.

    Returns:
        (T, 4) float32 ``[F, F, W/2, H/2]`` with ``F = 0.5 * (H + W)``.
    """
    height, width = image_size
    focal = 0.5 * (height + width)
    row = torch.tensor([focal, focal, width / 2, height / 2], dtype=torch.float64)
    return row.expand(num_frames, 4).to(torch.float32).clone()


def read_intrinsics_txt(path: str | Path) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read an ``intrinsics.txt`` file.

    Returns:
        (N, 4) float64 ``[fx, fy, cx, cy]`` (N = 1 or one row per frame) and the image size
        ``(height, width)`` if the file has W H columns, else None.

    Raises:
        InputError: unreadable file, wrong column count, non-positive focal lengths, W/H that
            differ between rows.
    """
    path = Path(path)
    table = load_table(path, "intrinsics file")
    if table.shape[1] not in (4, 6):
        raise InputError(
            path, f"intrinsics rows have {table.shape[1]} columns, expected 'fx fy cx cy [W H]'"
        )
    intrins = table[:, :4]
    check_focal(intrins, path, "intrinsics")
    if table.shape[1] == 4:
        return intrins, None
    sizes = np.unique(table[:, 4:6], axis=0)
    if len(sizes) != 1:
        raise InputError(path, f"rows give different image sizes W H: {sizes.tolist()[:4]}")
    width, height = sizes[0]
    return intrins, check_image_size((height, width), path)


def check_focal(intrins: np.ndarray, path: str | Path | None, name: str) -> None:
    """Check (N, 4) ``[fx, fy, cx, cy]``: finite, focal lengths > 0."""
    check_finite(intrins, path, name)
    check_positive(intrins[:, :2], path, f"{name} focal length")


FOCAL_RANGE = 100
"""Focal lengths up to this many image sizes (``max(H, W)``): a field of view of 0.6 degrees,
narrower than any telephoto lens on a camera filming people."""


def check_intrinsics_range(
    intrins: np.ndarray, image_size: tuple[int, int], path: str | Path | None
) -> None:
    """Check (N, 4) ``[fx, fy, cx, cy]`` for images of ``image_size``: focal lengths up to
    ``FOCAL_RANGE`` image sizes, the principal point within one image size of the image
    (``-W <= cx <= 2 W``, likewise ``cy``).

    Raises:
        InputError: a value is out of range (names the file, the value and the limit).
    """
    height, width = image_size
    side = max(height, width)
    check_range(intrins[:, :2], path, "intrinsics focal length", high=FOCAL_RANGE * side,
                unit=" px", why=f"{FOCAL_RANGE} x the image size {side}")  # fmt: skip
    for column, name, size in ((2, "cx", width), (3, "cy", height)):
        check_range(intrins[:, column], path, f"intrinsics {name}", low=-size, high=2 * size,
                    unit=" px", why=f"within one image size ({size} px) of the image")  # fmt: skip


def resolve_intrinsics(
    intrinsics: IntrinsicsSource | None,
    num_frames: int,
    image_size: tuple[int, int] | None,
    camera_path: str | Path | None,
) -> tuple[Tensor, tuple[int, int]]:
    """Turn the user's intrinsics (file, values or nothing) into per-frame intrinsics.

    Args:
        intrinsics: ``intrinsics.txt`` path, (4,) or (T, 4) values, or None for SLAHMR's default.
        num_frames: T, the number of camera frames.
        image_size: ``(height, width)`` given by the caller, or None.
        camera_path: the camera file, named in messages about the image size.

    Returns:
        (T, 4) float32 intrinsics and the image size. When an intrinsics file records a size other
        than ``image_size``, its values are rescaled to ``image_size``.

    Raises:
        InputError: the image size is unknown, or the intrinsics are malformed or of the wrong
            length.
    """
    if isinstance(intrinsics, str | Path):
        values, file_size = read_intrinsics_txt(intrinsics)
        source = Path(intrinsics)
        if image_size is None:
            image_size = file_size
        elif file_size is not None:
            values = rescale_intrinsics(values, file_size, image_size, source)
    elif intrinsics is not None:
        source = None
        values = np.asarray(torch.as_tensor(intrinsics, dtype=torch.float64)).reshape(-1, 4)
        check_focal(values, None, "intrinsics argument")
    if image_size is None:
        raise InputError(
            camera_path,
            "image size unknown: pass image_size=(height, width), or an intrinsics file with "
            "'fx fy cx cy W H' columns",
        )
    image_size = check_image_size(image_size, camera_path)
    if intrinsics is None:
        return default_intrinsics(image_size, num_frames), image_size
    if len(values) not in (1, num_frames):
        raise InputError(
            source,
            f"{len(values)} rows of intrinsics for {num_frames} camera frames of "
            f"{camera_path}; give one row or one per frame",
        )
    values = np.broadcast_to(values, (num_frames, 4))
    check_intrinsics_range(values, image_size, source or camera_path)
    return torch.as_tensor(values.copy(), dtype=torch.float32), image_size


def rescale_intrinsics(
    intrins: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int], path: str | Path
) -> np.ndarray:
    """Rescale intrinsics given for images of ``from_size`` to images of ``to_size``.

    Like SLAHMR (``intrins * img_w / width``), one factor from the widths; the aspect ratios must
    agree to within a pixel.

    Args:
        intrins: (N, 4) ``[fx, fy, cx, cy]``.
        from_size: ``(height, width)`` the file refers to.
        to_size: ``(height, width)`` of the images the keypoints live in.
        path: the file, for messages.

    Returns:
        (N, 4) rescaled intrinsics.
    """
    if tuple(from_size) == tuple(to_size):
        return intrins
    scale = to_size[1] / from_size[1]
    if abs(from_size[0] * scale - to_size[0]) > 1.0:
        raise InputError(
            path,
            f"camera file is for images of (H, W) = {tuple(from_size)}, which cannot be "
            f"rescaled to image_size {tuple(to_size)} (different aspect ratio)",
        )
    log.info("%s: rescaling intrinsics from %s to %s", path, tuple(from_size), tuple(to_size))
    return intrins * scale


def write_intrinsics_txt(
    path: str | Path,
    intrins: Tensor | np.ndarray,
    image_size: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an ``intrinsics.txt``: one row if every frame agrees, else one row per frame.

    Args:
        path: output file.
        intrins: (T, 4) or (4,) ``[fx, fy, cx, cy]`` in pixels.
        image_size: ``(height, width)``; when given, rows end with ``W H``.
        overwrite: replace an existing non-empty file.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    values = np.asarray(torch.as_tensor(intrins, dtype=torch.float64)).reshape(-1, 4)
    if np.all(values == values[:1]):
        values = values[:1]
    if image_size is not None:
        height, width = check_image_size(image_size, None)
        values = np.concatenate([values, np.tile([[width, height]], (len(values), 1))], axis=1)
    header = "fx fy cx cy" + (" W H" if image_size is not None else "")
    prepare_output(path, overwrite)
    write_atomic(path, lambda f: np.savetxt(f, values, fmt="%.10g", header=header))
    return path
