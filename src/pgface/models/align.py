"""Face alignment: the similarity transform that puts the five landmarks where ArcFace expects
them, and the 112 x 112 crop it gives.

As insightface 2.1's `utils/face_align.norm_crop` computes it (MIT licence), with
scikit-image's Umeyama estimate (BSD licence) inlined, the same operations on the same dtypes,
so that crops, and so embeddings, are the same to the last bit.
"""

from __future__ import annotations

import cv2
import numpy as np

# Where ArcFace's training crops have the eyes, the nose tip and the mouth corners (112 x 112).
ARCFACE_LANDMARKS = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


def norm_crop(image: np.ndarray, landmark: np.ndarray, image_size: int = 112) -> np.ndarray:
    """The aligned IMAGE_SIZE x IMAGE_SIZE crop of the face with these 5 landmarks."""
    matrix = estimate_norm(landmark, image_size)
    return cv2.warpAffine(image, matrix, (image_size, image_size), borderValue=0.0)


def estimate_norm(landmark: np.ndarray, image_size: int = 112) -> np.ndarray:
    """2 x 3 matrix taking the landmarks to ArcFace's places at this crop size."""
    if landmark.shape != (5, 2):
        raise ValueError(f"5 landmarks (x, y) are needed, got shape {landmark.shape}")
    if image_size % 112 == 0:
        ratio, diff_x = float(image_size) / 112.0, 0.0
    elif image_size % 128 == 0:
        ratio = float(image_size) / 128.0
        diff_x = 8.0 * ratio
    else:
        raise ValueError(f"crop size {image_size} is not a multiple of 112 or 128")
    dst = ARCFACE_LANDMARKS * ratio
    dst[:, 0] += diff_x
    return umeyama(landmark, dst)[0:2, :]


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3 x 3 similarity transform (rotation, uniform scale, translation) that best takes
    SRC to DST in least squares (Umeyama, PAMI 1991); all NaN when the points are degenerate."""
    num, dim = src.shape
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_demean = src - src_mean
    dst_demean = dst - dst_mean
    a = dst_demean.T @ src_demean / num  # Eq. (38)
    d = np.ones((dim,), dtype=np.float64)  # Eq. (39)
    if np.linalg.det(a) < 0:
        d[dim - 1] = -1
    t = np.eye(dim + 1, dtype=np.float64)
    u, s, v = np.linalg.svd(a)
    # Eq. (40) and (43); the rank as numpy's matrix_rank computes it from the same SVD.
    tol = s.max() * np.max(a.shape) * np.finfo(float).eps
    rank = np.count_nonzero(s > tol)
    if rank == 0:
        return np.nan * t
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(v) > 0:
            t[:dim, :dim] = u @ v
        else:
            kept = d[dim - 1]
            d[dim - 1] = -1
            t[:dim, :dim] = u @ np.diag(d) @ v
            d[dim - 1] = kept
    else:
        t[:dim, :dim] = u @ np.diag(d) @ v
    scale = 1.0 / src_demean.var(axis=0).sum() * (s @ d)  # Eq. (41) and (42)
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean.T)
    t[:dim, :dim] *= scale
    return t
