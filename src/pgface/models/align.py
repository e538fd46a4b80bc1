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
    return warp_crop(image, estimate_norm(landmark, image_size), image_size)


def warp_crop(image: np.ndarray, matrix: np.ndarray, image_size: int = 112) -> np.ndarray:
    """The IMAGE_SIZE x IMAGE_SIZE crop a 2 x 3 alignment matrix (estimate_norm) gives."""
    return cv2.warpAffine(image, matrix, (image_size, image_size), borderValue=0.0)


def estimate_norm(landmark: np.ndarray, image_size: int = 112) -> np.ndarray:
    """2 x 3 matrix taking the landmarks to ArcFace's places at this crop size."""
    if landmark.shape != (5, 2):
        raise ValueError(f"5 landmarks (x, y) are needed, got shape {landmark.shape}")
    return umeyama(landmark, arcface_points(image_size))[0:2, :]


def arcface_points(image_size: int) -> np.ndarray:
    """Where the five landmarks go in a crop of this size."""
    if image_size % 112 == 0:
        ratio, diff_x = float(image_size) / 112.0, 0.0
    elif image_size % 128 == 0:
        ratio = float(image_size) / 128.0
        diff_x = 8.0 * ratio
    else:
        raise ValueError(f"crop size {image_size} is not a multiple of 112 or 128")
    dst = ARCFACE_LANDMARKS * ratio
    dst[:, 0] += diff_x
    return dst


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


def estimate_norms(landmarks: np.ndarray, image_size: int = 112) -> np.ndarray:
    """`estimate_norm` of many faces at once: [N, 5, 2] landmarks -> [N, 2, 3] matrices, the
    same to the bit. One face at a time, a dozen small numpy calls made alignment cost 0.26 ms
    a face, most of a GPU pipeline's CPU time after decoding (docs/benchmarks-indexing.md)."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(f"N x 5 landmarks (x, y) are needed, got shape {landmarks.shape}")
    return umeyama_many(landmarks, arcface_points(image_size))[:, 0:2, :]


def umeyama_many(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`umeyama` of each of N point sets src [N, P, 2] to the same dst [P, 2]: [N, 3, 3], the
    same operations in the same order on the same dtypes, so the same to the bit."""
    count, num, dim = src.shape
    src_mean = src.mean(axis=1)
    dst_mean = dst.mean(axis=0)
    src_demean = src - src_mean[:, None, :]
    dst_demean = dst - dst_mean
    a = np.matmul(dst_demean.T[None], src_demean) / num
    d = np.ones((count, dim), dtype=np.float64)
    d[np.linalg.det(a) < 0, dim - 1] = -1
    t = np.broadcast_to(np.eye(dim + 1, dtype=np.float64), (count, dim + 1, dim + 1)).copy()
    u, s, v = np.linalg.svd(a)
    tol = s.max(axis=1) * max(a.shape[1:]) * np.finfo(float).eps
    rank = np.count_nonzero(s > tol[:, None], axis=1)
    # u @ diag(d) @ v, written as column scaling (the same products, exactly)
    rotation = (u * d[:, None, :]) @ v
    deficient = rank == dim - 1
    turn = deficient & (np.linalg.det(u) * np.linalg.det(v) > 0)
    rotation[turn] = (u @ v)[turn]
    flip = deficient & ~turn
    if flip.any():
        flipped = d.copy()
        flipped[:, dim - 1] = -1
        rotation[flip] = ((u * flipped[:, None, :]) @ v)[flip]
    t[:, :dim, :dim] = rotation
    with np.errstate(divide="ignore", invalid="ignore"):  # rank-0 sets: NaN below, as alone
        scale = 1.0 / src_demean.var(axis=1).sum(axis=1) * np.matmul(s[:, None, :],
                                                                      d[:, :, None])[:, 0, 0]
    t[:, :dim, dim] = dst_mean - scale[:, None] * np.matmul(t[:, :dim, :dim],
                                                            src_mean[:, :, None])[:, :, 0]
    t[:, :dim, :dim] *= scale[:, None, None]
    t[rank == 0] = np.nan
    return t
