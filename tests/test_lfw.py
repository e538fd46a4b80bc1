"""LFW View 1 through pgface's own API: every photo indexed, the shipped threshold is the one
DevTrain chooses, DevTest accuracy, and search rank-1 over the whole View 1 set."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LFW

from pgface import Pgface
from pgface.config import CALIBRATED_THRESHOLDS
from pgface.lfw import (
    calibrate,
    evaluate,
    pair_similarities,
    rank1,
    read_pairs,
    same_pair_photos,
    without_label_errors,
)


@pytest.fixture(scope="module")
def dev_train(lfw_library: Pgface) -> tuple[np.ndarray, np.ndarray]:
    return pair_similarities(lfw_library, LFW / "images", read_pairs(LFW / "pairsDevTrain.txt"))


@pytest.fixture(scope="module")
def dev_test(lfw_library: Pgface) -> tuple[np.ndarray, np.ndarray]:
    return pair_similarities(lfw_library, LFW / "images", read_pairs(LFW / "pairsDevTest.txt"))


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
    """Each photo of the 500 DevTest same-person pairs, its stored central face searched
    against all 4,992 (Pgface.search_face: the search by photo below takes a sample)."""
    queries = same_pair_photos(read_pairs(LFW / "pairsDevTest.txt"))
    assert len(queries) > 800  # 1,000 photos in 500 pairs; some are in several pairs
    literal, labelled = rank1(lfw_library, LFW / "images", queries, by_photo=False)
    # As LFW labels them: a person found in the background of another's photo counts as a miss.
    assert literal.rate >= 0.96, literal.misses
    # Against LFW's labelled faces only, without its mislabelled pairs (docs/calibration.md).
    assert labelled.queries == len(without_label_errors(queries)) < literal.queries
    assert labelled.rate >= 0.99, labelled.misses


def test_a_photo_searched_again_ranks_as_its_stored_face(lfw_library: Pgface) -> None:
    """Every 8th query photo read, analysed and searched as a user's search is: the same
    first matches as its stored face's search, so the rank-1 above is the photo search's."""
    queries = same_pair_photos(read_pairs(LFW / "pairsDevTest.txt"))[::8]
    assert len(queries) > 100
    by_photo = rank1(lfw_library, LFW / "images", queries)
    by_face = rank1(lfw_library, LFW / "images", queries, by_photo=False)
    for photo, face in zip(by_photo, by_face, strict=True):
        assert photo.queries == face.queries and photo.hits == face.hits
        assert [miss[:2] for miss in photo.misses] == [miss[:2] for miss in face.misses]
