"""Sequential video decoding for the front end: ``probe_video`` and ``VideoFrames``.

Frames are decoded once, front to back, by ``imageio-ffmpeg`` (``files.video``) and
never held all in memory. Frame ``t`` is the ``t``-th frame the decoder outputs, each frame once
(``-fps_mode passthrough``: no duplicates to fill a constant rate); ffmpeg conceals
damaged data inside a stream (the frame decodes with artefacts and the count stays), so what can
go wrong here is:

- the file is not a video: ``InputError`` naming it;
- a frame comes out with the wrong number of bytes: it is yielded as ``None`` (the front end
  marks nobody detected there) with a warning; more than ``max_bad_fraction`` of such frames
  is an ``InputError``;
- ffmpeg fails part-way: the frames so far are kept, with a warning (the same rule applies to
  the share of frames lost against the metadata's estimate);
- the file is truncated: fewer frames than ``duration x fps`` promise, a warning.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.files.video import ffmpeg_frames

log = logging.getLogger(__name__)

MAX_BAD_FRACTION = 0.1
"""Largest share of frames that may fail to decode before the video is refused."""


def _ffmpeg_message(exc: Exception) -> str:
    lines = [s.strip() for s in str(exc).strip().splitlines() if s.strip()]
    return lines[-1] if lines else type(exc).__name__


def _open_ffmpeg(path: Path):
    """The raw-frame generator of imageio-ffmpeg (each frame once) and its metadata dict."""
    frames = ffmpeg_frames(path)
    meta = next(frames)
    return frames, meta


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    Attributes:
        path: the file.
        fps: frames per second (ffmpeg's stream rate), > 0.
        size: ``(height, width)`` of decoded frames, pixels (rotation applied).
        num_frames: ``round(duration x fps)``, an estimate (decoding may give a few more or
            fewer); 0 when the container gives no duration.
    """

    path: Path
    fps: float
    size: tuple[int, int]
    num_frames: int


def _info_from_meta(path: Path, meta: dict) -> VideoInfo:
    width, height = meta["size"]
    fps = float(meta.get("fps") or 0.0)
    if not fps > 0:
        raise InputError(path, "the video stream records no frame rate")
    duration = float(meta.get("duration") or 0.0)
    return VideoInfo(path, fps, (int(height), int(width)), int(round(duration * fps)))


def _open(path: Path):
    if not path.is_file():
        raise InputError(path, "video file not found")
    try:
        frames, meta = _open_ffmpeg(path)
    except (OSError, RuntimeError, StopIteration, KeyError) as exc:
        raise InputError(path, f"cannot read as a video ({_ffmpeg_message(exc)})") from None
    return frames, _info_from_meta(path, meta)


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, frame size and estimated frame count of a video, without decoding it.

    Raises:
        InputError: missing file, not a video, or no frame rate.
    """
    frames, info = _open(Path(path))
    frames.close()
    return info


class VideoFrames:
    """Decoded frames of a video, in order: iterate for ``(t, frame or None)``.

    ``frame`` is (H, W, 3) uint8 RGB, or None for a frame that did not decode (see the module
    docstring). Use as a context manager or call ``close``. After iteration, ``num_decoded`` and
    ``bad_frames`` tell what happened.
    """

    def __init__(
        self,
        path: str | Path,
        max_frames: int | None = None,
        max_bad_fraction: float = MAX_BAD_FRACTION,
    ):
        self.path = Path(path)
        self._frames, self.info = _open(self.path)
        self.max_frames = max_frames
        self.max_bad_fraction = max_bad_fraction
        self.bad_frames: list[int] = []
        self.num_decoded = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None]]:
        height, width = self.info.size
        nbytes = height * width * 3
        t = 0
        while self.max_frames is None or t < self.max_frames:
            try:
                raw = next(self._frames)
            except StopIteration:
                break
            except (OSError, RuntimeError) as exc:
                log.warning(
                    "%s: decoding stopped after frame %d (%s)",
                    self.path,
                    t - 1,
                    _ffmpeg_message(exc),
                )
                self._lost_after(t)
                break
            if len(raw) != nbytes:
                log.warning("%s: frame %d has %d bytes, expected %d; skipped",
                            self.path, t, len(raw), nbytes)  # fmt: skip
                self.bad_frames.append(t)
                yield t, None
            else:
                yield t, np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            t += 1
        self.num_decoded = t
        self._check(t)

    def _lost_after(self, t: int) -> None:
        expected = self.info.num_frames
        if self.max_frames is not None:
            expected = min(expected, self.max_frames) if expected else self.max_frames
        lost = max(expected - t, 0)
        if expected and lost > self.max_bad_fraction * expected:
            raise InputError(
                self.path, f"decoding failed at frame {t} of about {expected}; the file is damaged"
            )

    def _check(self, count: int) -> None:
        bad = len(self.bad_frames)
        if bad and bad > self.max_bad_fraction * count:
            raise InputError(
                self.path,
                f"{bad} of {count} frames did not decode (more than "
                f"{self.max_bad_fraction:.0%}); first bad frames {self.bad_frames[:5]}",
            )
        expected = self.info.num_frames
        if self.max_frames is None and expected and count < expected - max(2, 0.02 * expected):
            log.warning(
                "%s: decoded %d frames, the container promises about %d (duration x fps); the "
                "file may be truncated",
                self.path,
                count,
                expected,
            )

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None

    def __enter__(self) -> "VideoFrames":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["MAX_BAD_FRACTION", "VideoFrames", "VideoInfo", "probe_video"]
