"""Face quality: how usable a detected face is for recognition, from what analysis already has
(detection score, box, 5 landmarks, the aligned 112 x 112 crop). No extra model is run.

The score is the product of one factor per signal, each 1 where the signal is good enough and
falling linearly to 0 where it makes a face unusable; so a face weak on several counts scores
lower than one weak on one. Ramps and the default floor: docs/benchmarks-quality.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

# Where each factor starts to fall and where it reaches 0 (docs/benchmarks-quality.md).
DETECTION_RAMP = (0.5, 0.8)  # SCRFD's score: 0.5 is where it stops reporting a face
SIZE_RAMP = (8.0, 40.0)  # shorter side of the box in pixels; the recognizer sees 112
YAW_RAMP = (0.3, 0.8)  # |yaw|: nose's offset across the eye-mouth axis, in axis lengths
PITCH_LOW_RAMP = (0.0, 0.35)  # nose's place along the axis: 0 at the eyes, 1 at the mouth
PITCH_HIGH_RAMP = (0.75, 1.1)
SHARPNESS_RAMP = (0.0, 60.0)  # variance of the Laplacian of the grey aligned crop

# The default floor: faces scoring below it are neither searched nor clustered. The lowest
# LFW View 1 face scores 0.173; the floor keeps a margin of 0.073 below it.
DEFAULT_FLOOR = 0.1


@dataclass(frozen=True)
class FaceQuality:
    score: float  # 0 (unusable) to 1: the product of the factors of the signals below
    face_size: float  # shorter side of the box, pixels of the photo
    yaw: float  # signed; 0 when the nose lies on the line from the eyes to the mouth
    pitch: float  # about 0.55 for a frontal face; lower looking up, higher looking down
    sharpness: float  # variance of the Laplacian of the aligned grey crop

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def _ramp(value: float, start: float, end: float) -> float:
    """0 at start, 1 at end, linear between (clipped)."""
    return float(np.clip((value - start) / (end - start), 0.0, 1.0))


def pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) proxies from the 5 landmarks (eyes, nose, mouth corners): where the nose
    lies against the axis from the eyes' midpoint to the mouth's, in lengths of that axis."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eyes = (points[0] + points[1]) / 2
    axis = (points[3] + points[4]) / 2 - eyes
    length = float(np.hypot(*axis))
    if length < 1e-6:  # landmarks collapsed on one point: no pose can be read
        return 0.0, 0.0
    unit = axis / length
    nose = points[2] - eyes
    pitch = float(nose @ unit) / length
    yaw = float(nose[0] * -unit[1] + nose[1] * unit[0]) / length
    return yaw, pitch


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop: low for blurred or featureless faces."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def score(det_score: float, face_size: float, yaw: float, pitch: float,
          crop_sharpness: float) -> float:
    """The product of the factors; see the ramps above."""
    factors = (
        _ramp(det_score, *DETECTION_RAMP),
        _ramp(face_size, *SIZE_RAMP),
        1.0 - _ramp(abs(yaw), *YAW_RAMP),
        min(_ramp(pitch, *PITCH_LOW_RAMP), 1.0 - _ramp(pitch, *PITCH_HIGH_RAMP)),
        _ramp(crop_sharpness, *SHARPNESS_RAMP),
    )
    return float(np.prod(factors))


def measure(bbox: np.ndarray, landmarks: np.ndarray, det_score: float,
            aligned: np.ndarray) -> FaceQuality:
    """The quality of a face from its box, landmarks, detection score and aligned crop."""
    face_size = float(max(0.0, min(bbox[2] - bbox[0], bbox[3] - bbox[1])))
    yaw, pitch = pose(landmarks)
    crisp = sharpness(aligned)
    return FaceQuality(score(det_score, face_size, yaw, pitch, crisp), face_size, yaw, pitch,
                       crisp)


def below_floor_said(score: float | None, floor: float) -> str:
    """Why a face was left out: "quality 0.0888 is below the floor 0.0889", the score with as
    many decimals as show it below (at 2, 0.09 was "below" a floor of 0.089). The decision is
    the exact score's: one that rounds to the floor is "just below" it."""
    if score is None:
        return f"quality not measured, below the floor {floor}"
    for decimals in (2, 3, 4):
        if round(score, decimals) < floor:
            return f"quality {score:.{decimals}f} is below the floor {floor}"
    return f"quality {score:.4f} is just below the floor {floor}"


def below(quality: float | None, floor: float) -> bool:
    """Whether a face is under the floor; a face stored before quality was measured (None)
    never is, as before."""
    return quality is not None and quality < floor
