"""The front end on real footage (``../shared/data/videos``): people found, kept apart, and their
keypoints plausible. Measured values (40 tennis frames, 30 walking frames) are in comments."""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from slahmr_opt.body.keypoints import OP25_NAMES
from slahmr_opt.errors import InputError
from slahmr_opt.frontend import detect_people, read_masks_npz, write_front_end
from slahmr_opt.frontend.people import box_iou
from slahmr_opt.inputs.tracks import read_tracks

VIDEOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "videos"
TENNIS, WALKING = VIDEOS / "tennis-static.mp4", VIDEOS / "walking-forest-tracking.mp4"
TENNIS_FRAMES, WALKING_FRAMES = 40, 30
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not TENNIS.is_file() or not WALKING.is_file(),
        reason=f"the shared videos are not at {VIDEOS} (../shared beside the repository)",
    ),
]
J = {name: i for i, name in enumerate(OP25_NAMES)}


@pytest.fixture(scope="module")
def tennis():
    return detect_people(TENNIS, max_frames=TENNIS_FRAMES, min_track_len=10, progress=False)


@pytest.fixture(scope="module")
def walking():
    return detect_people(WALKING, max_frames=WALKING_FRAMES, min_track_len=10, progress=False)


def _main(result) -> int:
    return int(result.tracks.vis_mask.sum(1).argmax())


def _keypoints(result, p: int) -> np.ndarray:
    """(T', 25, 3) keypoints of track p on its detected frames."""
    return result.tracks.kp2d[p][result.tracks.vis_mask[p]].numpy()


def _length(kp: np.ndarray, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(kp[:, J[a], :2] - kp[:, J[b], :2], axis=-1)


def _confident(kp: np.ndarray, *names: str) -> np.ndarray:
    return np.all([kp[:, J[n], 2] > 0.5 for n in names], axis=0)


def test_tennis_people(tennis):
    tracks = tennis.tracks
    assert tracks.kp_format == "op25" and tracks.num_frames == TENNIS_FRAMES
    assert tracks.fps == pytest.approx(29.83) and tracks.image_size == (720, 812)
    # main player 40 of 40 frames, the line judge at the back 39 (found on frame 0)
    assert tracks.num_people >= 2
    main = _main(tennis)
    assert int(tracks.vis_mask[main].sum()) >= TENNIS_FRAMES - 2
    x0, y0, w, h = tracks.bbox[main, 0].tolist()
    assert h > 400 and x0 < 380 < x0 + w  # the player: 515 px tall around u = 390
    assert set(tennis.timings) >= {"decode", "track", "search", "total", "frames_per_second"}


def test_tennis_identity_stable(tennis):
    """One track follows the player through the segment; no other track sits on him."""
    main = _main(tennis)
    kp = _keypoints(tennis, main)
    torso_center = kp[:, [J["RShoulder"], J["LShoulder"], J["RHip"], J["LHip"]], :2].mean(1)
    torso = np.linalg.norm(
        kp[:, [J["RShoulder"], J["LShoulder"]], :2].mean(1)
        - kp[:, [J["RHip"], J["LHip"]], :2].mean(1),
        axis=-1,
    )
    steps = np.linalg.norm(np.diff(torso_center, axis=0), axis=-1) / torso[1:]
    assert steps.max() < 0.15  # 0.05
    boxes = tennis.tracks.bbox.numpy()
    vis = tennis.tracks.vis_mask.numpy()
    for p in range(tennis.tracks.num_people):
        if p == main:
            continue
        both = np.nonzero(vis[p] & vis[main])[0]
        assert all(box_iou(boxes[p, t], boxes[main, t]) < 0.3 for t in both)


def test_tennis_keypoints_in_mask(tennis):
    """Confident keypoints of the player fall on the segmented person."""
    main = _main(tennis)
    kp = _keypoints(tennis, main)
    masks = tennis.masks[tennis.tracks.vis_mask[main].numpy()]
    assert masks.shape[1:] == (180, 203) and masks.dtype == bool
    confident = kp[..., 2] > 0.5
    cells = np.floor(kp[..., :2] * tennis.mask_scale).astype(int)
    cols = cells[..., 0].clip(0, masks.shape[2] - 1)
    rows = cells[..., 1].clip(0, masks.shape[1] - 1)
    inside = masks[np.arange(len(kp))[:, None], rows, cols]
    assert inside[confident].mean() > 0.9  # 0.99
    # the person fills part of the box, not all of it, nor nothing
    x0, y0, w, h = (tennis.tracks.bbox[main, 0].numpy() * tennis.mask_scale).astype(int)
    coverage = tennis.masks[0, y0 : y0 + h, x0 : x0 + w].mean()
    assert 0.25 < coverage < 0.7  # 0.36 to 0.50 over the segment


@pytest.mark.parametrize("video", ["tennis", "walking"])
def test_limb_proportions_steady(video, request):
    """Thigh / shin length ratio varies little over frames (coefficient of variation)."""
    result = request.getfixturevalue(video)
    kp = _keypoints(result, _main(result))
    for side in "LR":
        ok = _confident(kp, f"{side}Hip", f"{side}Knee", f"{side}Ankle")
        assert ok.sum() > 0.8 * len(kp)
        thigh = _length(kp, f"{side}Hip", f"{side}Knee")
        ratio = (thigh / _length(kp, f"{side}Knee", f"{side}Ankle"))[ok]
        # tennis L 0.065, R 0.18 (the racket hides his right shin for a few frames);
        # walking 0.08 both sides
        assert ratio.std() / ratio.mean() < 0.25, side


def test_left_right(tennis, walking):
    """The tennis player faces the camera (his right on the image's left); the walker is seen
    from behind (right on the right); shoulders and hips agree."""
    for result, facing_camera in ((tennis, True), (walking, False)):
        kp = _keypoints(result, _main(result))
        shoulders = kp[:, J["RShoulder"], 0] - kp[:, J["LShoulder"], 0]
        hips = kp[:, J["RHip"], 0] - kp[:, J["LHip"], 0]
        right_on_left = (shoulders < 0).mean()
        assert right_on_left > 0.9 if facing_camera else right_on_left < 0.1  # 1.0 / 0.0
        assert (np.sign(shoulders) == np.sign(hips)).mean() > 0.9  # 1.0


def test_walking_one_person(walking):
    tracks = walking.tracks
    assert tracks.num_people == 1
    assert int(tracks.vis_mask.sum()) >= WALKING_FRAMES - 1
    assert tracks.fps == pytest.approx(23.98, abs=0.01)


def test_written_files_read_back(tennis, tmp_path):
    tracks_path, masks_path = write_front_end(tennis, tmp_path / "front")
    tracks = read_tracks(tracks_path, min_track_len=10)
    assert tracks.track_ids == tennis.tracks.track_ids
    assert tracks.kp2d.shape == tennis.tracks.kp2d.shape
    main = _main(tennis)
    np.testing.assert_allclose(tracks.kp2d[main, :, :, :2], tennis.tracks.kp2d[main, :, :, :2])
    masks = read_masks_npz(masks_path)
    np.testing.assert_array_equal(masks.masks, tennis.masks)
    assert masks.scale == 0.25 and masks.image_size == (720, 812)
    with pytest.raises(FileExistsError):
        write_front_end(tennis, tmp_path / "front")


def test_too_short_tracks_named():
    with pytest.raises(InputError, match=r"min_track_len=20 .*'000': 6"):
        detect_people(TENNIS, max_frames=6, min_track_len=20, progress=False)


def test_walker_mask_is_one_blob(walking):
    """The walker's mask is one blob, in every frame."""
    for mask in walking.masks:
        labels, count = ndimage.label(mask)
        sizes = np.bincount(labels.ravel())[1:]
        assert count >= 1 and sizes.max() > 0.95 * sizes.sum()
