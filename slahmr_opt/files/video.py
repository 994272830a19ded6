"""Input frames (a video, an image folder, or none) and an H.264 mp4 writer.

Frames are read in increasing order only, so a long video is decoded once, front to back, and
never held in memory. Video decoding and encoding go through ``imageio-ffmpeg`` (it ships an
ffmpeg binary with libx264); images are read with Pillow.

The writer encodes into a hidden temporary file next to the output and renames it only when
every frame is written, so an interrupted or failed render never leaves an mp4 that looks
complete.
"""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import usual_permissions

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def ffmpeg_frames(path: str | Path):
    """imageio-ffmpeg's raw RGB frame generator (its first item is the metadata dict).

    Each decoded frame comes out once (``-fps_mode passthrough``): ffmpeg's default for raw
    output is a constant rate at the stream's tbr, which duplicates frames (tennis-static.mp4,
    29.83 fps with a tbr of 60, would come out as 627 frames instead of 312) and would put the
    wrong frame under each result frame.
    """
    import imageio_ffmpeg

    return imageio_ffmpeg.read_frames(
        str(path), pix_fmt="rgb24", output_params=["-fps_mode", "passthrough"]
    )


def _ffmpeg_problem(exc: Exception) -> str:
    """The last line of an imageio-ffmpeg error (ffmpeg's own summary), not the whole log."""
    lines = [s.strip() for s in str(exc).strip().splitlines() if s.strip()]
    return lines[-1] if lines else type(exc).__name__


class FrameReader:
    """Frames of a video or an image folder, read in increasing index order.

    Frame ``i`` is the ``i``-th decoded video frame, or the ``i``-th image of the folder in
    sorted file-name order.
    """

    def __init__(self, video: str | Path | None = None, images: str | Path | None = None):
        if (video is None) == (images is None):
            raise ValueError("give exactly one of video and images")
        self.path = Path(video if video is not None else images)
        self._images: list[Path] | None = None
        self._frames: Iterator[bytes] | None = None
        self._next_index = 0
        self.size: tuple[int, int] | None = None  # (height, width) once known
        if images is not None:
            self._images = self._list_images(self.path)
        else:
            self._open_video()

    @staticmethod
    def _list_images(folder: Path) -> list[Path]:
        if not folder.is_dir():
            raise InputError(folder, "image folder not found")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(folder, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return files

    def _open_video(self) -> None:
        if not self.path.is_file():
            raise InputError(self.path, "video file not found")
        self._frames = ffmpeg_frames(self.path)
        try:
            meta = next(self._frames)
        except (OSError, RuntimeError, StopIteration) as exc:
            raise InputError(
                self.path, f"cannot read as a video ({_ffmpeg_problem(exc)})"
            ) from None
        width, height = meta["size"]
        self.size = (int(height), int(width))

    @property
    def num_frames(self) -> int | None:
        """Number of frames when known without decoding (image folders), else None."""
        return None if self._images is None else len(self._images)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W, 3) uint8 RGB; indices must not decrease between calls.

        Raises:
            InputError: the frame does not exist or cannot be decoded.
        """
        if index < self._next_index:
            raise ValueError(f"frames are read in order: {index} after {self._next_index - 1}")
        if self._images is not None:
            self._next_index = index + 1
            return self._read_image(index)
        while self._next_index <= index:
            raw = self._next_video_frame(index)
            self._next_index += 1
        H, W = self.size
        if len(raw) != H * W * 3:
            raise InputError(self.path, f"frame {index} is truncated ({len(raw)} bytes)")
        return np.frombuffer(raw, dtype=np.uint8).reshape(H, W, 3)

    def _next_video_frame(self, wanted: int) -> bytes:
        try:
            return next(self._frames)
        except StopIteration:
            raise InputError(
                self.path, f"has {self._next_index} frames; frame {wanted} is needed"
            ) from None
        except (OSError, RuntimeError) as exc:
            raise InputError(
                self.path, f"cannot decode frame {self._next_index} ({_ffmpeg_problem(exc)})"
            ) from None

    def _read_image(self, index: int) -> np.ndarray:
        if index >= len(self._images):
            raise InputError(self.path, f"has {len(self._images)} images; image {index} is needed")
        path = self._images[index]
        try:
            with Image.open(path) as im:
                frame = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise InputError(path, f"cannot read this image ({exc})") from None
        if self.size is None:
            self.size = frame.shape[:2]
        elif frame.shape[:2] != self.size:
            raise InputError(
                path, f"is {frame.shape[1]}x{frame.shape[0]}, the first image "
                f"{self.size[1]}x{self.size[0]}; all images must have one size"
            )  # fmt: skip
        return frame

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Mp4Writer:
    """Write RGB frames to an H.264 mp4 (yuv420p), renamed into place on ``commit``.

    Use as a context manager: leaving it without ``commit()`` (an error, Ctrl-C) deletes the
    temporary file and leaves ``path`` untouched.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, quality: float = 7):
        """``size`` is ``(height, width)``, both even (yuv420p halves the chroma planes)."""
        import imageio_ffmpeg

        H, W = size
        if H % 2 or W % 2:
            raise ValueError(f"mp4 frames need even dimensions, got {W}x{H}")
        self.path = Path(path)
        self.size = (H, W)
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".partial.mp4"
        )
        os.close(fd)
        self._tmp = Path(tmp)
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp),
            (W, H),
            fps=fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=quality,
            macro_block_size=2,
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],
        )
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if frame.shape != (*self.size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a {(*self.size, 3)} uint8 frame, got {frame.shape}")
        self._gen.send(np.ascontiguousarray(frame))
        self.frames_written += 1

    def commit(self) -> Path:
        """Finish the file and move it to ``path``."""
        self._gen.close()
        self._gen = None
        usual_permissions(self._tmp)
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._gen is not None:
            try:
                self._gen.close()
            except (OSError, RuntimeError):
                pass  # the partial file is deleted anyway
            self._gen = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None or self._gen is not None:
            self.abort()


def read_video_frames(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames of a (small) video as (N, H, W, 3) uint8 RGB, and its frame rate."""
    gen = ffmpeg_frames(path)
    meta = next(gen)
    W, H = meta["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(H, W, 3) for raw in gen]
    return np.stack(frames) if frames else np.zeros((0, H, W, 3), np.uint8), float(meta["fps"])
