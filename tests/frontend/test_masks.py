"""Person masks: crop segmentation -> frame grid (against a slow per-cell version), the masks
``.npz`` round trip and its errors, and crops of frames."""

import numpy as np
import pytest
from scipy import ndimage

from slahmr_opt.errors import InputError
from slahmr_opt.frontend.blazepose import PAD_VALUE, SquareCrop
from slahmr_opt.frontend.masks import (
    PersonMasks,
    mask_grid_shape,
    paste_segmentation,
    read_masks_npz,
    write_masks_npz,
)


def _slow_paste(shape, probability, crop: SquareCrop, scale: float) -> np.ndarray:
    """Each grid cell takes the crop pixel under its centre (nearest sample)."""
    size = probability.shape[0]
    grid = np.zeros(shape, dtype=bool)
    for i in range(shape[0]):
        for j in range(shape[1]):
            u, v = (j + 0.5) / scale, (i + 0.5) / scale  # image position of the cell centre
            a = int(np.floor((u - crop.x0) * size / crop.side))
            b = int(np.floor((v - crop.y0) * size / crop.side))
            if 0 <= a < size and 0 <= b < size:
                grid[i, j] = probability[b, a] > 0.5
    return grid


@pytest.mark.parametrize(
    "crop, size",
    [(SquareCrop(40, 20, 64), 64), (SquareCrop(-30, 50, 200), 100), (SquareCrop(100, -8, 48), 96)],
)
def test_paste_matches_slow(crop, size):
    rng = np.random.default_rng(0)
    # a blocky probability map: large regions, so resampling differs only at their edges
    blocks = rng.uniform(0, 1, (8, 8)).astype(np.float32)
    probability = np.kron(blocks, np.ones((size // 8, size // 8), np.float32))
    shape = mask_grid_shape((160, 200), 0.25)
    grid = np.zeros(shape, dtype=bool)
    paste_segmentation(grid, probability, crop, 0.25)
    slow = _slow_paste(shape, probability, crop, 0.25)
    assert grid.sum() > 0
    # they differ only next to an edge of the slow map: cells partly covered count here
    around = np.ones((3, 3), bool)
    edges = ndimage.binary_dilation(slow, around) & ndimage.binary_dilation(~slow, around)
    assert not ((grid != slow) & ~edges).any()
    # nothing outside the crop
    rows, cols = np.nonzero(grid)
    assert cols.min() >= np.floor(crop.x0 * 0.25) and rows.min() >= np.floor(crop.y0 * 0.25)
    assert cols.max() < np.ceil((crop.x0 + crop.side) * 0.25)
    assert rows.max() < np.ceil((crop.y0 + crop.side) * 0.25)


def test_paste_thin_limb_survives_downsampling():
    """A stripe 0.65 cells wide, split over two cells, in a crop 8x finer than the grid still
    marks cells."""
    probability = np.zeros((384, 384), np.float32)
    probability[:, 190:195] = 1.0  # 5 crop pixels = 2.6 image pixels of a 200-pixel crop
    grid = np.zeros(mask_grid_shape((400, 400), 0.25), dtype=bool)
    paste_segmentation(grid, probability, SquareCrop(100, 100, 200), 0.25)
    assert grid.any(axis=1)[30:70].all()


def test_grid_shape():
    assert mask_grid_shape((720, 812), 0.25) == (180, 203)
    assert mask_grid_shape((1088, 1920), 0.25) == (272, 480)
    assert mask_grid_shape((541, 960), 0.25) == (136, 240)


def test_masks_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    masks = PersonMasks(rng.uniform(size=(5, 30, 40)) > 0.7, 0.25, (120, 160))
    path = write_masks_npz(tmp_path / "masks.npz", masks)
    back = read_masks_npz(path)
    np.testing.assert_array_equal(back.masks, masks.masks)
    assert back.scale == 0.25 and back.image_size == (120, 160)
    with pytest.raises(FileExistsError):
        write_masks_npz(path, masks)
    with pytest.raises(ValueError, match="do not match"):
        write_masks_npz(tmp_path / "bad.npz", PersonMasks(masks.masks, 0.5, (120, 160)))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"masks": np.zeros((2, 30, 40), np.uint8)}, "must be \\(T, h, w\\) bool"),
        ({"scale": np.asarray(2.0)}, "'scale' must be a number in \\(0, 1\\]"),
        ({"image_size": np.asarray([120.0, 160.0])}, "'image_size' must be two positive"),
        ({"masks": np.zeros((2, 31, 40), bool)}, "grid \\(31, 40\\) does not match \\(30, 40\\)"),
        ({"extra": np.asarray(1)}, "masks file keys"),
    ],
)
def test_bad_masks_file(tmp_path, change, message):
    arrays = {
        "masks": np.zeros((2, 30, 40), bool),
        "scale": np.asarray(0.25),
        "image_size": np.asarray([120, 160]),
        "format_version": np.asarray(1),
    }
    arrays.update(change)
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message):
        read_masks_npz(path)


def test_crop_extract_and_back():
    frame = np.arange(60 * 80 * 3, dtype=np.uint32).reshape(60, 80, 3).astype(np.uint8)
    crop = SquareCrop(-10, 20, 50)  # leaves the frame on the left and at the bottom
    image = crop.extract(frame, 50)
    assert image.shape == (50, 50, 3)
    np.testing.assert_array_equal(image[0, 10:], frame[20, 0:40])
    assert (image[:, :10] == PAD_VALUE).all() and (image[40:] == PAD_VALUE).all()
    # normalized crop coordinates map back to frame pixels
    np.testing.assert_allclose(crop.to_frame(np.array([0.5, 0.5])), (15.0, 45.0))
    scaled = crop.extract(frame, 100)
    assert scaled.shape == (100, 100, 3)
