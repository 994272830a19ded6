"""Video decoding for the front end: probe, frame count, bad files and bad frames; and the front
end's answer to a video without people."""

import logging
from pathlib import Path

import numpy as np
import pytest

from slahmr_opt.errors import InputError
from slahmr_opt.files.video import Mp4Writer
from slahmr_opt.frontend import detect_people, probe_video
from slahmr_opt.frontend import video as video_module
from slahmr_opt.frontend.video import VideoFrames

VIDEOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "videos"
TENNIS = VIDEOS / "tennis-static.mp4"


def _write_video(path: Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    with Mp4Writer(path, frames.shape[1:3], fps) as writer:
        for frame in frames:
            writer.write(frame)
        writer.commit()
    return path


@pytest.fixture
def noise_video(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 96, 128, 3), dtype=np.uint8)
    frames[6:] = 40  # and some blank frames
    return _write_video(tmp_path / "noise.mp4", frames)


def test_probe_and_count(noise_video):
    info = probe_video(noise_video)
    assert info.size == (96, 128) and info.fps == pytest.approx(25.0)
    assert info.num_frames == 12
    with VideoFrames(noise_video) as video:
        frames = list(video)
    assert [t for t, _ in frames] == list(range(12))
    assert all(f.shape == (96, 128, 3) and f.dtype == np.uint8 for _, f in frames)
    assert video.bad_frames == []


@pytest.mark.skipif(not TENNIS.is_file(), reason=f"shared video {TENNIS} is absent")
def test_each_frame_once():
    """tennis-static.mp4 is 29.83 fps with a 60 tbr: decoded at a constant rate it doubles."""
    info = probe_video(TENNIS)
    assert info.fps == pytest.approx(29.83) and info.size == (720, 812)
    with VideoFrames(TENNIS) as video:
        count = sum(1 for _ in video)
    assert count == 312


def test_max_frames(noise_video):
    with VideoFrames(noise_video, max_frames=5) as video:
        assert [t for t, _ in video] == [0, 1, 2, 3, 4]


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n")
    with pytest.raises(InputError, match=r"notes\.mp4: cannot read as a video"):
        probe_video(path)
    with pytest.raises(InputError, match=r"notes\.mp4: cannot read as a video"):
        detect_people(path, progress=False)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.mp4: video file not found"):
        detect_people(tmp_path / "missing.mp4", progress=False)


def test_no_person(noise_video):
    with pytest.raises(InputError, match=r"noise\.mp4: no person found in any of its 12 frames"):
        detect_people(noise_video, progress=False)


def test_truncated_file_warns(tmp_path, caplog):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)
    path = _write_video(tmp_path / "full.mp4", frames)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING), VideoFrames(cut, max_bad_fraction=1.0) as video:
        count = sum(1 for _ in video)
    assert 5 < count < 40
    assert "may be truncated" in caplog.text


def test_damaged_bytes_decode(tmp_path):
    """ffmpeg conceals damage inside the stream: every frame still comes out."""
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)
    data = bytearray(_write_video(tmp_path / "ok.mp4", frames).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 500] = bytes(500)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with VideoFrames(damaged) as video:
        assert sum(1 for _ in video) == 20


def _fake_ffmpeg(monkeypatch, sizes: list[int], fail_after: int | None = None, frames=20):
    """Make ``_open_ffmpeg`` yield raw frames of the given byte sizes (4x4 RGB = 48 bytes)."""

    def frames_gen():
        for i, size in enumerate(sizes):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("ffmpeg broke\nConversion failed!")
            yield bytes(size)

    meta = {"size": (4, 4), "fps": 10.0, "duration": frames / 10.0}
    monkeypatch.setattr(video_module, "_open_ffmpeg", lambda path: (frames_gen(), meta))


def test_bad_frame_skipped(monkeypatch, tmp_path, caplog):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"x")
    _fake_ffmpeg(monkeypatch, [48] * 9 + [20] + [48] * 10)
    with caplog.at_level(logging.WARNING), VideoFrames(path) as video:
        frames = dict(video)
    assert len(frames) == 20 and frames[9] is None and frames[10].shape == (4, 4, 3)
    assert video.bad_frames == [9]
    assert "frame 9 has 20 bytes" in caplog.text


def test_too_many_bad_frames(monkeypatch, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"x")
    _fake_ffmpeg(monkeypatch, [48, 10, 10, 10] * 5)
    with pytest.raises(InputError, match=r"v\.mp4: 15 of 20 frames did not decode"):
        with VideoFrames(path) as video:
            list(video)


def test_decoder_failure(monkeypatch, tmp_path, caplog):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"x")
    _fake_ffmpeg(monkeypatch, [48] * 20, fail_after=19)  # one frame of 20 lost: kept going
    with caplog.at_level(logging.WARNING), VideoFrames(path) as video:
        assert len(list(video)) == 19
    assert "decoding stopped after frame 18 (Conversion failed!)" in caplog.text
    _fake_ffmpeg(monkeypatch, [48] * 20, fail_after=5)
    with pytest.raises(InputError, match=r"decoding failed at frame 5 of about 20"):
        with VideoFrames(path) as video:
            list(video)
