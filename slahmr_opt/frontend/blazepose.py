"""MediaPipe's BlazePose (full landmark model, with segmentation) on square crops of a frame.

mediapipe is imported here only, when a ``BlazePose`` is made, so that the package imports
without it. Only ``model_complexity=1`` is used: its models ship inside the mediapipe wheel
(``pose_detection.tflite``, ``pose_landmark_full.tflite``); the other complexities download
their model at run time.

Crops are squares of the frame (``SquareCrop``), padded with grey where they leave the image and
resized to a fixed input size, so that one ``Pose`` instance always sees images of one shape and
its results map back to the frame by one scale and offset.
"""

from dataclasses import dataclass

import numpy as np

from slahmr_opt.errors import SlahmrOptError

INSTALL_HINT = (
    "pip install 'slahmr-opt[video]' (MediaPipe 0.10.21 and OpenCV; MediaPipe pins numpy<2), or, "
    "to keep numpy 2: pip install absl-py flatbuffers 'protobuf>=4.25.3,<5' attrs "
    "opencv-python-headless; pip install --no-deps mediapipe==0.10.21"
)
PAD_VALUE = 128
"""Grey used outside the image and over masked-out people."""


class FrontEndUnavailableError(SlahmrOptError):
    """mediapipe (or OpenCV) is missing or cannot run."""


def import_mediapipe():
    """The ``mediapipe`` module; ``FrontEndUnavailableError`` with what to install if it or OpenCV
    is missing."""
    try:
        import cv2  # noqa: F401  (the front end's other half)
        import mediapipe
        from mediapipe.python.solutions import pose  # noqa: F401  (fails on a broken install)
    except Exception as exc:  # protobuf or numpy mismatches surface as many kinds
        raise FrontEndUnavailableError(
            f"the video front end cannot import {getattr(exc, 'name', None) or 'mediapipe'} "
            f"({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        ) from None
    return mediapipe


@dataclass(frozen=True)
class SquareCrop:
    """A square of the frame, in pixels: columns ``x0 .. x0 + side``, rows ``y0 .. y0 + side``.

    ``x0``/``y0`` may be negative and the square may reach past the frame (padded with grey).
    """

    x0: int
    y0: int
    side: int

    @staticmethod
    def around(center_x: float, center_y: float, side: float) -> "SquareCrop":
        side = max(int(round(side)), 8)
        return SquareCrop(int(round(center_x - side / 2)), int(round(center_y - side / 2)), side)

    @staticmethod
    def whole(image_size: tuple[int, int]) -> "SquareCrop":
        """The smallest square holding the whole frame, centred on it."""
        height, width = image_size
        return SquareCrop.around(width / 2, height / 2, max(height, width))

    def extract(self, frame: np.ndarray, size: int) -> np.ndarray:
        """(size, size, 3) uint8 image of this square of ``frame`` (H, W, 3)."""
        import cv2

        height, width = frame.shape[:2]
        x1, y1 = self.x0 + self.side, self.y0 + self.side
        inner = frame[
            max(self.y0, 0) : max(min(y1, height), 0), max(self.x0, 0) : max(min(x1, width), 0)
        ]
        pads = (max(-self.y0, 0), self.side - inner.shape[0] - max(-self.y0, 0),
                max(-self.x0, 0), self.side - inner.shape[1] - max(-self.x0, 0))  # fmt: skip
        if inner.size == 0:
            square = np.full((self.side, self.side, 3), PAD_VALUE, np.uint8)
        elif any(pads):
            square = cv2.copyMakeBorder(inner, *pads, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        else:
            square = inner
        interp = cv2.INTER_AREA if self.side > size else cv2.INTER_LINEAR
        return np.ascontiguousarray(cv2.resize(square, (size, size), interpolation=interp))

    def to_frame(self, uv_normalized: np.ndarray) -> np.ndarray:
        """(..., 2) coordinates normalized to the crop -> frame pixels."""
        return np.asarray([self.x0, self.y0], np.float64) + uv_normalized * self.side


@dataclass
class PoseOutput:
    """One person found by BlazePose.

    Attributes:
        landmarks: (33, 3) ``[u, v, visibility]``, frame pixels.
        segmentation: (S, S) float32 person probability over the crop (S = input size).
        crop: the square the model saw.
    """

    landmarks: np.ndarray
    segmentation: np.ndarray
    crop: SquareCrop


class BlazePose:
    """One ``mediapipe.solutions.pose.Pose``; in video mode it tracks one person across calls.

    Args:
        video: keep the person between calls (detector only when the track is lost);
            False runs the detector on every call.
        input_size: side of the square image handed to mediapipe, pixels.
        min_detection_confidence: BlazePose's detector threshold.
        min_tracking_confidence: BlazePose's landmark-presence threshold (video mode).
    """

    def __init__(
        self,
        video: bool,
        input_size: int,
        min_detection_confidence: float,
        min_tracking_confidence: float,
    ):
        mp = import_mediapipe()
        self.input_size = input_size
        # No smoothing inside mediapipe: its filters work in crop coordinates, and crops move.
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=not video,
            model_complexity=1,
            smooth_landmarks=False,
            enable_segmentation=True,
            smooth_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def run(self, frame: np.ndarray, crop: SquareCrop) -> PoseOutput | None:
        """The person BlazePose finds in ``crop`` of ``frame`` (H, W, 3 RGB), or None."""
        result = self._pose.process(crop.extract(frame, self.input_size))
        if result.pose_landmarks is None:
            return None
        marks = result.pose_landmarks.landmark
        raw = np.array([(m.x, m.y, m.visibility) for m in marks], dtype=np.float64)
        landmarks = np.concatenate([crop.to_frame(raw[:, :2]), raw[:, 2:]], axis=1)
        return PoseOutput(landmarks, result.segmentation_mask, crop)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None


__all__ = ["BlazePose", "FrontEndUnavailableError", "PoseOutput", "SquareCrop", "import_mediapipe"]
