"""Face analysis: SCRFD detection at several input sizes, norm_crop alignment, batched ArcFace
(pgface's own copies of insightface's arithmetic: models/scrfd.py, align.py, arcface.py)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgface.errors import (
    ModelPackError,
    OpenFilesError,
    files_run_short,
    out_of_memory,
    stopped_by_ctrl_c,
)
from pgface.imaging import PANORAMA_RATIO
from pgface.models.align import estimate_norms, norm_crop, warp_crop
from pgface.models.arcface import EMBEDDING_SIZE, ArcFace
from pgface.models.packs import ModelPack, recognizer_sha256
from pgface.models.quality import FaceQuality, measure
from pgface.models.scrfd import SCRFD
from pgface.models.sessions import create_session, default_threads


@dataclass
class Face:
    """One detected face. Coordinates are in the pixels of the (EXIF-rotated) photo."""

    bbox: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # 5 x 2: eyes, nose, mouth corners
    det_score: float
    embedding: np.ndarray | None = field(default=None, repr=False)  # 512 floats, unit length
    quality: FaceQuality | None = None  # measured on the aligned crop (models/quality.py)

    @property
    def area(self) -> float:
        return float(max(0.0, self.bbox[2] - self.bbox[0]) * max(0.0, self.bbox[3] - self.bbox[1]))


class FaceAnalyzer:
    """Detector and recognizer of one pack; sessions are created on first use and reused."""

    def __init__(
        self,
        pack: ModelPack,
        providers: Sequence[str],
        threads: int = 0,
        det_sizes: Sequence[int] = (256, 640),
        det_threshold: float = 0.5,
        min_face_size: int = 0,
        batch_size: int = 64,
        cache_dir: Path | None = None,
        batch_detection: bool | None = None,
    ) -> None:
        self.pack = pack
        self.providers = list(providers)
        self.threads = threads or default_threads()
        self.det_sizes = [(int(s), int(s)) for s in sorted(det_sizes)]
        self.det_threshold = det_threshold
        # applied where faces are placed in the photo's own pixels (placement.place): in a
        # reduced decode's, a 534 px face of a large JPEG was 133 px, dropped by 150
        self.min_face_size = min_face_size
        self.batch_size = max(1, batch_size)
        self.cache_dir = cache_dir  # compiled models kept for the next process (OpenVINO)
        self.batch_detection = batch_detection  # None: on a GPU (detects_in_batches)
        self._detector: SCRFD | None = None
        self._recognizer: ArcFace | None = None
        self._warm = False  # warm_up has run: a second call (serve's check, then its app) is free
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.pack.name

    @functools.cached_property
    def recognizer_sha256(self) -> str:
        """The recognizer file's sha256 as this analyzer first read it: what the library knows
        the pack by (the check on opening it, and each store of its faces)."""
        return recognizer_sha256(self.pack)

    @property
    def provider(self) -> str:
        """The execution provider the recognizer actually runs on."""
        return self._load()[1].session.get_providers()[0]

    def _load(self) -> tuple[SCRFD, ArcFace]:
        with self._lock:
            if self._detector is None or self._recognizer is None:
                # While callers overlap (the indexer's workers, concurrent HTTP requests), one
                # detection stream per core, so they detect side by side instead of queueing.
                # The detector takes the letterboxed pixels as they are and normalises them
                # inside its compiled model (sessions.OpenVINOPixelSession).
                with _named(self.pack.detector, "SCRFD detector"):
                    det_session = create_session(
                        self.pack.detector, self.providers, self.threads, static_shapes=True,
                        streams=self.threads, cache_dir=self.cache_dir, pixel_input=True)
                    detector = SCRFD(det_session, det_threshold=self.det_threshold)
                with _named(self.pack.recognizer, "ArcFace recognizer"):
                    rec_session = create_session(self.pack.recognizer, self.providers,
                                                 self.threads, cache_dir=self.cache_dir)
                    self._recognizer = ArcFace(self.pack.recognizer, rec_session)
                self._detector = detector
            return self._detector, self._recognizer

    def warm_up(self) -> None:
        """Load and compile everything now, so that no photo pays for it: one detection (every
        input size), one embedding, and the detector's parallel variant of each size. Call it
        from one thread: first inferences are what OpenVINO's binding could deadlock on."""
        if self._warm:
            return
        detector, _ = self._load()
        larger_than_every_size = self.det_sizes[-1][1] + 60  # so that every input size runs
        self.detect(np.zeros((larger_than_every_size,) * 2 + (3,), dtype=np.uint8))
        self.embed_aligned([np.zeros((112, 112, 3), dtype=np.uint8)])
        detector.compile_sizes(self.det_sizes)
        self._warm = True

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face in a BGR image, largest first."""
        detector, _ = self._load()
        sizes = self.sizes_for(image)
        if not sizes:
            return []
        return self._faces(*detector.detect(image, sizes), image.shape)

    def detect_many(self, images: Sequence[np.ndarray], pool: Executor | None = None
                    ) -> list[list[Face]]:
        """`detect` for many images, batch_size of them per model run of each input size: the
        same faces, in far fewer runs (detects_in_batches says where that pays)."""
        detector, _ = self._load()
        found = detector.detect_many(images, [self.sizes_for(image) for image in images],
                                     self.batch_size, pool)
        return [self._faces(boxes, landmarks, image.shape)
                for (boxes, landmarks), image in zip(found, images, strict=True)]

    @property
    def detects_in_batches(self) -> bool:
        """Whether detection should take many photos per model run: where the detector runs
        on a GPU (each run costs a round trip there), unless the setting says otherwise."""
        if self.batch_detection is not None:
            return self.batch_detection
        detector, _ = self._load()
        return bool(getattr(detector.session, "on_gpu", False))

    def _faces(self, boxes: np.ndarray, landmarks: np.ndarray, shape: tuple[int, ...]
               ) -> list[Face]:
        faces = []
        height, width = shape[:2]
        # A box may reach past the edge for a face cut by it; stored and shown inside the photo.
        if len(boxes):
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        for box, points in zip(boxes, landmarks, strict=True):
            faces.append(
                Face(bbox=box[:4].copy(), landmarks=points.copy(), det_score=float(box[4]))
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def sizes_for(self, image: np.ndarray) -> list[tuple[int, int]]:
        """The detector input sizes worth running on this image.

        The smallest size sees faces that fill the frame; each larger one is only run when the
        image had to be shrunk to fit the size before it (else it would only upscale, at
        several times the cost, and find nothing new). A panorama is seen through inputs of
        its shape (panorama_shape).
        """
        height, width = image.shape[:2]
        shapes = [panorama_shape(size, width, height) for size in self.det_sizes]
        sizes = [shapes[0]]
        for previous, size in zip(shapes, shapes[1:], strict=False):
            inside = _scaled_shape(image.shape[:2], previous)
            if inside[0] < height or inside[1] < width:  # shrunk to fit
                sizes.append(size)
        # A strip so thin that it shrinks to no pixel at a size (a 100000x1 PNG) holds no face
        # the detector could see there, and OpenCV's resize refuses a zero side.
        return [size for size in sizes if min(_scaled_shape(image.shape[:2], size)) >= 1]

    def align(self, image: np.ndarray, face: Face, matrix: np.ndarray | None = None
              ) -> np.ndarray:
        """The recognizer's crop of the face; the face's quality is measured on it here, the
        one place every face's crop is made. matrix: the face's from `alignments`, if known."""
        _, recognizer = self._load()
        size = recognizer.input_size[0]
        crop = (norm_crop(image, face.landmarks, size) if matrix is None
                else warp_crop(image, matrix, size))
        face.quality = measure(face.bbox, face.landmarks, face.det_score, crop)
        return crop

    def alignments(self, faces: Sequence[Face]) -> np.ndarray:
        """The alignment matrices of many faces at once ([N, 2, 3]): what `align` computes
        face by face, to the bit, at a fiftieth of the cost."""
        _, recognizer = self._load()
        if not faces:
            return np.empty((0, 2, 3), dtype=np.float64)
        return estimate_norms(np.stack([f.landmarks for f in faces]), recognizer.input_size[0])

    def embed_aligned(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-length embeddings of aligned crops, one session run per batch."""
        if not crops:  # no models loaded for none (a run of moved files loaded both: +85 MB)
            return np.empty((0, EMBEDDING_SIZE), dtype=np.float32)
        _, recognizer = self._load()
        out = []
        for start in range(0, len(crops), self.batch_size):
            out.append(recognizer.get_feat(list(crops[start : start + self.batch_size])))
        # float64: a damaged recognizer's outputs (8 bytes of its file changed) squared past
        # float32's range, and the face was stored as a zero vector, found by nothing
        vectors = np.vstack(out).astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        no_direction = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
        if no_direction.any():  # the model's fault, not a photo's: every face would be so
            raise ModelPackError(
                f"{self.pack.recognizer}: the recognizer gave {int(no_direction.sum())} of "
                f"{len(vectors)} embeddings that are no direction (not finite, or all zeros): "
                f"its file is damaged, or it is no ArcFace model")
        return (vectors / norms).astype(np.float32)

    def analyze(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Detect in every image, then embed the faces of all of them in shared batches."""
        per_image = [self.detect(image) for image in images]
        self.embed(images, per_image)
        return per_image

    def embed(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> None:
        """Fill in the embedding of every face, batching across images."""
        crops = [self.align(img, f) for img, fs in zip(images, faces, strict=True) for f in fs]
        vectors = self.embed_aligned(crops)
        flat = [f for fs in faces for f in fs]
        for face, vector in zip(flat, vectors, strict=True):
            face.embedding = vector


# A photo PANORAMA_RATIO times longer than wide (or wider than tall) or more is a panorama: a
# square input shrank a 9600 x 630 one to 640 x 42, its faces to 5 px, and found none of them.
# A panorama's input is a size's square stretched 4, 8 or 16 times along the photo's long side:
# its faces are seen as large as in a photo of its height, at that many times the cost; no more
# pixels than 16 squares of 640 (a 10240 x 640 input), and bucketed, so that the detector
# compiles a few shapes, not one per photo.
PANORAMA_STRETCHES = (4, 8, 16)
MAX_PANORAMA_INPUT_PIXELS = 16 * 640 * 640


def panorama_shape(size: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The (width, height) input a detector size takes for an image: its square, or for a
    panorama the square stretched by the smallest of PANORAMA_STRETCHES that holds the
    image's ratio (the largest past 16:1), as far as MAX_PANORAMA_INPUT_PIXELS allows."""
    long, short = max(width, height), min(width, height)
    if short < 1 or long < PANORAMA_RATIO * short:
        return size
    side = size[0]
    fits = [s for s in PANORAMA_STRETCHES if side * side * s <= MAX_PANORAMA_INPUT_PIXELS]
    if not fits:
        return size
    stretch = next((s for s in fits if long <= s * short), fits[-1])
    return (side * stretch, side) if width >= height else (side, side * stretch)


def _scaled_shape(shape: tuple[int, ...], size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the image inside the detector's input: SCRFD's own arithmetic."""
    height, width = shape[0], shape[1]
    im_ratio = float(height) / width
    if im_ratio > float(size[1]) / size[0]:
        return size[1], int(size[1] / im_ratio)
    return int(size[0] * im_ratio), size[0]


@contextmanager
def _named(path: Path, what: str) -> Iterator[None]:
    """A model file that cannot be loaded, or is not what its name says, is the pack's error
    naming the file (it was "unexpected RuntimeError: Exception from src/inference/...: (a
    bug)" while indexing, and the photo's error while searching)."""
    try:
        yield
    except ModelPackError:
        raise
    except Exception as exc:
        if stopped_by_ctrl_c(exc):  # in a runtime's import: "initialization failed"
            raise KeyboardInterrupt from exc
        if out_of_memory(exc):  # the machine's, not the file's ("failed to map segment")
            raise
        short = files_run_short()
        if short:  # the limit's, not the file's ("Cannot load library")
            raise OpenFilesError(f"{short}; {path.name} could not be loaded") from exc
        reason = " ".join(str(exc).split())
        if len(reason) > 300:  # its start and its end, where the runtimes put the reason
            reason = f"{reason[:150]} ... {reason[-150:]}"
        raise ModelPackError(f"{path}: cannot be loaded as the pack's {what} "
                             f"({type(exc).__name__}: {reason})") from exc
