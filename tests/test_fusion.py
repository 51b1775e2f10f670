"""The genre decision from the CNN and musicnn's tags: a pure function, tested on made-up
evidence, and the file that carries its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamer.analysis.fusion import GenreFusion, shipped_fusion_path
from streamer.errors import StreamerError

CNN = ("classical", "metal", "reggae", "rock")
TAGS = ("mtt/classical", "msd/metal", "msd/rock", "msd/electronic", "mtt/techno")


def fusion(**changes: object) -> GenreFusion:
    values: dict[str, object] = dict(
        labels=(*CNN, "electronic"),
        cnn_labels=CNN,
        tag_labels=TAGS,
        mapping={
            "classical": ["mtt/classical"],
            "metal": ["msd/metal"],
            "rock": ["msd/rock"],
            "electronic": ["msd/electronic", "mtt/techno"],
        },
        cnn_weight=0.3,
        sharpness=1.0,
        missing_cnn=0.01,
        missing_tags=0.05,
    )
    values.update(changes)
    return GenreFusion(**values)  # type: ignore[arg-type]


def tags(**values: float) -> np.ndarray:
    out = np.full(len(TAGS), 0.02)
    for name, value in values.items():
        out[TAGS.index(name.replace("__", "/"))] = value
    return out


def top(probabilities: np.ndarray, labels: tuple[str, ...]) -> str:
    assert probabilities.sum() == pytest.approx(1.0)
    return labels[int(np.argmax(probabilities))]


UNSURE_CNN = np.array([0.3, 0.2, 0.2, 0.3])


def test_a_genre_only_the_tags_know_wins_on_strong_tags() -> None:
    f = fusion()
    decided = f.fuse(UNSURE_CNN, tags(msd__electronic=0.6, mtt__techno=0.7))
    assert top(decided, f.labels) == "electronic"
    assert f.fuse(UNSURE_CNN, None)[-1] < 0.01  # before the first tag patch: the CNN alone


def test_a_genre_only_the_cnn_knows_wins_where_the_tags_say_nothing() -> None:
    f = fusion()
    cnn = np.array([0.02, 0.02, 0.94, 0.02])  # reggae: musicnn has no tag for it
    assert top(f.fuse(cnn, tags()), f.labels) == "reggae"


def test_on_disagreement_the_weights_decide() -> None:
    cnn = np.array([0.01, 0.04, 0.01, 0.94])  # the CNN: rock; the tags: metal
    evidence = tags(msd__metal=0.5, msd__rock=0.15)
    assert top(fusion(cnn_weight=0.3).fuse(cnn, evidence), fusion().labels) == "metal"
    assert top(fusion(cnn_weight=0.8).fuse(cnn, evidence), fusion().labels) == "rock"
    sharper = fusion(cnn_weight=0.5, sharpness=3.0).fuse(cnn, evidence)
    assert top(sharper, fusion().labels) == "metal"  # sharper tags outweigh the CNN
    assert top(fusion(cnn_weight=0.5).fuse(cnn, evidence), fusion().labels) == "rock"


def test_without_tags_the_decision_is_the_cnns_own() -> None:
    f = fusion(missing_cnn=0.0)
    np.testing.assert_allclose(f.fuse(UNSURE_CNN, None), [*UNSURE_CNN, 0.0])


def test_invalid_numbers_and_unknown_tags_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown tags"):
        fusion(mapping={"rock": ["msd/polka"]})
    with pytest.raises(ValueError, match="start with the CNN"):
        fusion(labels=("electronic", *CNN))
    with pytest.raises(ValueError, match="cnn_weight"):
        fusion(cnn_weight=1.5)


def test_the_file_round_trips_and_bad_files_get_one_line(tmp_path: Path) -> None:
    f = fusion(provenance={"chosen_on": "test"})
    path = tmp_path / "fusion.json"
    path.write_text(json.dumps(f.to_dict()))
    again = GenreFusion.load(path)
    assert again == f
    np.testing.assert_array_equal(again.fuse(UNSURE_CNN, tags()), f.fuse(UNSURE_CNN, tags()))
    path.write_text("{not json")
    with pytest.raises(StreamerError, match="invalid fusion file") as error:
        GenreFusion.load(path)
    assert "\n" not in str(error.value)
    with pytest.raises(StreamerError, match="no such fusion file"):
        GenreFusion.load(tmp_path / "missing.json")
    with pytest.raises(StreamerError, match="other models"):
        f.check(cnn_labels=("a", "b"), tag_labels=TAGS)


def test_the_shipped_decision_fits_the_shipped_networks() -> None:
    from streamer.analysis.model import GenreModel
    from streamer.analysis.tagger import TagAnalyzer, TagModel, shipped_tagger_paths

    shipped = GenreFusion.load(shipped_fusion_path())
    analyzer = TagAnalyzer([TagModel(p) for p in shipped_tagger_paths()], input_rate=22050)
    shipped.check(cnn_labels=GenreModel().labels, tag_labels=analyzer.labels)
    assert "electronic" in shipped.labels[len(shipped.cnn_labels) :]
    assert shipped.provenance["real"]["folds"] >= 2


def test_many_hops_at_once_decide_as_one_by_one() -> None:
    f = fusion()
    rng = np.random.default_rng(0)
    cnn = rng.dirichlet(np.ones(len(CNN)), size=6)
    evidence = rng.uniform(0, 1, size=(6, len(TAGS)))
    evidence[:2] = np.nan  # the first hops of a stream: no tag hop yet
    together = f.fuse_hops(cnn, evidence)
    pairs = zip(cnn, evidence, strict=True)
    alone = [f.fuse(c, None if np.isnan(t).any() else t) for c, t in pairs]
    np.testing.assert_allclose(together, alone)
    np.testing.assert_allclose(together[:2, : len(CNN)], cnn[:2] / (1 + f.missing_cnn))
