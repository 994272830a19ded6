"""Per-frame person masks: the union of everybody BlazePose segments, on a coarse grid.

Masks ``.npz`` format (version 1), read with ``np.load(allow_pickle=False)``::

    key             shape        dtype    meaning
    masks           (T, h, w)    bool     True where a person is, frame t of the video
    scale           ()           float    mask cells per image pixel, 1 / factor (e.g. 0.25)
    image_size      (2,)         int      [H, W] of the video frames, pixels
    format_version  ()           int      1

A cell is True when roughly a quarter of it or more is person (``MIN_CELL_COVER``), so masks
err on the side of people. Cell ``(i, j)`` covers image pixels ``[j / scale, (j + 1) / scale)`` x
``[i / scale, (i + 1) / scale)``; ``h = ceil(H scale)``, ``w = ceil(W scale)``. Image pixel
``(u, v)`` (continuous, pixel edges at integers) falls in cell ``(floor(v scale),
floor(u scale))``. A frame that did not decode, or where nobody was found, is all False.
People the tracker did not find (too small, hidden) are not masked.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import load_npz, prepare_output, write_atomic
from slahmr_opt.frontend.blazepose import SquareCrop

FORMAT_VERSION = 1
MASK_KEYS = ("masks", "scale", "image_size", "format_version")
SEGMENTATION_THRESHOLD = 0.5
"""A crop pixel is a person where BlazePose's probability exceeds this."""
MIN_CELL_COVER = 0.25
"""A mask cell is a person when about this share of it is (thin limbs stay in the mask)."""


@dataclass
class PersonMasks:
    """Person masks of T frames (format in the module docstring).

    Attributes:
        masks: (T, h, w) bool.
        scale: mask cells per image pixel.
        image_size: ``(H, W)`` of the frames.
    """

    masks: np.ndarray
    scale: float
    image_size: tuple[int, int]


def mask_grid_shape(image_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """``(h, w)`` of the mask grid of frames ``image_size = (H, W)``."""
    height, width = image_size
    return math.ceil(height * scale - 1e-9), math.ceil(width * scale - 1e-9)


def paste_segmentation(grid: np.ndarray, probability: np.ndarray, crop: SquareCrop, scale: float):
    """OR a crop's segmentation into a frame's mask grid, in place.

    Args:
        grid: (h, w) bool mask of the frame.
        probability: (S, S) person probability over ``crop``.
        crop: the square of the frame that ``probability`` covers.
        scale: mask cells per image pixel.
    """
    import cv2

    # Person pixels at the crop's resolution, then their share per cell: averaged first when
    # the crop is much finer than the grid, so that thin limbs do not fall between the samples
    # of the linear warp.
    cover = (probability > SEGMENTATION_THRESHOLD).astype(np.float32)
    k = crop.side * scale / cover.shape[0]  # grid cells per crop pixel
    if k < 0.5:
        target = max(int(round(cover.shape[0] * k)), 1)
        cover = cv2.resize(cover, (target, target), interpolation=cv2.INTER_AREA)
        k = crop.side * scale / target
    # crop pixel a (centre a + 0.5) sits at image x0 + (a + 0.5) side / S, i.e. at grid
    # column (x0 + (a + 0.5) side / S) scale - 0.5 in OpenCV's pixel-centre convention.
    warp = np.array([[k, 0.0, crop.x0 * scale + 0.5 * k - 0.5],
                     [0.0, k, crop.y0 * scale + 0.5 * k - 0.5]])  # fmt: skip
    h, w = grid.shape
    out = cv2.warpAffine(cover, warp, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    grid |= out >= MIN_CELL_COVER


def write_masks_npz(path: str | Path, masks: PersonMasks, overwrite: bool = False) -> Path:
    """Write person masks (format in the module docstring), compressed.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is False.
        ValueError: the path does not end in ``.npz`` or the grid does not match the size.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: a masks file must end in .npz")
    expected = mask_grid_shape(masks.image_size, masks.scale)
    if masks.masks.ndim != 3 or masks.masks.shape[1:] != expected:
        raise ValueError(f"masks {masks.masks.shape} do not match (T, *{expected})")
    arrays = {
        "masks": masks.masks.astype(bool),
        "scale": np.asarray(float(masks.scale)),
        "image_size": np.asarray(masks.image_size, dtype=np.int64),
        "format_version": np.asarray(FORMAT_VERSION),
    }
    prepare_output(path, overwrite)
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays))
    return path


def read_masks_npz(path: str | Path) -> PersonMasks:
    """Read a masks ``.npz`` (format in the module docstring).

    Raises:
        InputError: unreadable file, missing or unknown keys, wrong shapes or dtypes.
    """
    path = Path(path)
    data = load_npz(path, "masks file")
    if sorted(data) != sorted(MASK_KEYS):
        raise InputError(path, f"masks file keys are {sorted(data)}, expected {list(MASK_KEYS)}")
    if int(data["format_version"]) != FORMAT_VERSION:
        raise InputError(path, f"format_version {data['format_version']} is not supported")
    masks, scale, size = data["masks"], data["scale"], data["image_size"]
    if masks.dtype != bool or masks.ndim != 3:
        raise InputError(path, f"'masks' must be (T, h, w) bool, got {masks.dtype} {masks.shape}")
    if size.shape != (2,) or size.dtype.kind not in "iu" or not (size > 0).all():
        raise InputError(path, f"'image_size' must be two positive integers, got {size}")
    if scale.shape != () or not 0 < float(scale) <= 1:
        raise InputError(path, f"'scale' must be a number in (0, 1], got {scale}")
    image_size = (int(size[0]), int(size[1]))
    expected = mask_grid_shape(image_size, float(scale))
    if masks.shape[1:] != expected:
        raise InputError(path, f"'masks' grid {masks.shape[1:]} does not match {expected}")
    return PersonMasks(masks, float(scale), image_size)


__all__ = [
    "PersonMasks",
    "mask_grid_shape",
    "paste_segmentation",
    "read_masks_npz",
    "write_masks_npz",
]
