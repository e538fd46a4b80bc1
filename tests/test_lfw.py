"""LFW View 1 through pgface's own API: every photo indexed, the shipped threshold is the one
DevTrain chooses, DevTest accuracy, and search rank-1 over the whole View 1 set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import LFW

from pgface import Pgface
from pgface.config import CALIBRATED_THRESHOLDS
from pgface.lfw import Pair, calibrate, central_face_index, evaluate, read_pairs


def pair_similarities(library: Pgface, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
    images = LFW / "images"
    paths = sorted({str((images / p.left).resolve()) for p in pairs}
                   | {str((images / p.right).resolve()) for p in pairs})
    stored = library.photo_faces(paths)
    missing = [p for p in paths if not stored.get(p)]
    assert not missing, f"{len(missing)} photos have no stored face, e.g. {missing[:3]}"

    def embedding(relative: str) -> np.ndarray:
        faces = stored[str((images / relative).resolve())]
        chosen = central_face_index([f.bbox for f in faces], faces[0].photo_width,
                                    faces[0].photo_height)
        return faces[chosen].embedding

    similarities = np.array([float(embedding(p.left) @ embedding(p.right)) for p in pairs])
    return similarities, np.array([p.same for p in pairs])


@pytest.fixture(scope="module")
def dev_train(lfw_library: Pgface) -> tuple[np.ndarray, np.ndarray]:
    return pair_similarities(lfw_library, read_pairs(LFW / "pairsDevTrain.txt"))


@pytest.fixture(scope="module")
def dev_test(lfw_library: Pgface) -> tuple[np.ndarray, np.ndarray]:
    return pair_similarities(lfw_library, read_pairs(LFW / "pairsDevTest.txt"))


def test_every_view1_photo_is_indexed_with_a_face(lfw_library: Pgface) -> None:
    stats = lfw_library.stats()
    assert stats["photos"] == len(list((LFW / "images").rglob("*.jpg"))) == 4992
    assert stats["photos_without_faces"] == 0


def test_shipped_threshold_is_the_one_devtrain_chooses(
    lfw_library: Pgface, dev_train: tuple[np.ndarray, np.ndarray]
) -> None:
    chosen = calibrate(*dev_train)
    assert chosen.accuracy >= 0.99
    assert abs(chosen.threshold - CALIBRATED_THRESHOLDS["buffalo_sc"]) <= 0.02
    assert lfw_library.threshold == CALIBRATED_THRESHOLDS["buffalo_sc"]


def test_devtest_accuracy_at_the_calibrated_threshold(
    lfw_library: Pgface, dev_test: tuple[np.ndarray, np.ndarray]
) -> None:
    result = evaluate(*dev_test, lfw_library.threshold)
    assert result.accuracy >= 0.994, result


def test_search_finds_the_same_person_first(lfw_library: Pgface) -> None:
    """Each photo of the 500 DevTest same-person pairs, searched against all 4,992."""
    images = LFW / "images"
    queries = sorted({q for p in read_pairs(LFW / "pairsDevTest.txt") if p.same
                      for q in (p.left, p.right)})
    hits = 0
    for relative in queries:
        path = (images / relative).resolve()
        result = lfw_library.search(path, top=5)
        photo = lfw_library.load_photo(path)
        face = result.faces[central_face_index([f.bbox for f in result.faces],
                                               photo.width, photo.height)]
        others = [m for m in face.matches if m.path != str(path)]
        if others and Path(others[0].path).parent.name == path.parent.name:
            hits += 1
    assert hits / len(queries) >= 0.99, f"{hits}/{len(queries)}"
