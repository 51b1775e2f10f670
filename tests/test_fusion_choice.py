"""`streamer-train fusion` chooses the decision's numbers by cross-validation over tracks,
guarded by the synthetic split: checked on made-up evidence whose answer is known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from streamer.analysis.model import read_model_info
from streamer.analysis.tagger import shipped_tagger_paths
from training.fusion import (
    ClipEvidence,
    choose,
    read_clips,
    read_sources,
    render_card,
    track_folds,
)

CNN = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
TAGS = tuple(
    f"{path.stem.removeprefix('musicnn-')}/{label}"
    for path in shipped_tagger_paths()
    for label in read_model_info(path).labels
)  # the shipped taggers' labels, as TagAnalyzer joins them


def clip(
    genre: str, track: str, *, cnn_says: str, tags_say: str | None, hops: int = 8
) -> ClipEvidence:
    cnn = np.full((hops, len(CNN)), 0.02)
    cnn[:, CNN.index(cnn_says)] = 0.82
    tags = np.full((hops, len(TAGS)), 0.03)
    tags[0] = np.nan  # the first hop: no tag hop yet
    if tags_say is not None:
        tags[1:, TAGS.index(tags_say)] = 0.6
    return ClipEvidence(f"{track}.wav", frozenset({genre}), track, cnn, tags)


def test_real_tags_win_where_the_cnn_is_wrong_but_the_guard_keeps_the_cnn_in() -> None:
    real = []
    for t in range(10):  # metal the CNN calls rock, the tags metal; electronic it cannot name
        real += [clip("metal", f"m{t}", cnn_says="rock", tags_say="msd/metal") for _ in range(3)]
        real += [clip("electronic", f"e{t}", cnn_says="disco", tags_say="mtt/techno")]
    synthetic = [clip(g, f"s{i}", cnn_says=g, tags_say=None) for i, g in enumerate(CNN * 2)]
    sources = [c.track[0] for c in real]  # two "bands": m and e
    fusion, figures = choose(
        real, synthetic, cnn_labels=CNN, tag_labels=TAGS, folds=2, seed=1, sources=sources
    )
    assert figures["real"]["nested_top1"] == 1.0
    assert figures["real"]["by_source"] == {"sources": 2, "nested_top1": 1.0, "nested_top2": 1.0}
    assert figures["real"]["cnn_alone_top1"] == 0.0
    assert fusion.cnn_weight < 0.5  # the real set asks for the tags
    guard = figures["synthetic"]
    assert guard["cnn_alone_track_accuracy"] == 1.0
    assert guard["fused_track_accuracy"] >= 0.95  # the guard: synthetic reggae etc. kept
    assert guard["grid_points_allowed"] < guard["grid_points"]  # some points were refused
    assert figures["real"]["nested_per_genre"] == {"electronic": [10, 10], "metal": [30, 30]}
    card = render_card(replace(fusion, provenance={"command": "test", **figures}))
    assert "| metal | 30 of 30 | 0 of 30 |" in card and "| the CNN alone | 0.0 % |" in card
    assert "| decision, chosen with whole sources held out (2 packages) | 100.0 % |" in card


def test_every_excerpt_of_a_track_is_in_one_fold() -> None:
    clips = [clip("metal", f"t{i // 3}", cnn_says="metal", tags_say=None) for i in range(30)]
    folds = track_folds(clips, folds=4, seed=0)
    for track in {c.track for c in clips}:
        assert len({f for f, c in zip(folds, clips, strict=True) if c.track == track}) == 1
    assert len(set(folds.tolist())) == 4


def test_manifests_of_both_kinds_are_read_and_other_is_left_out(tmp_path: Path) -> None:
    real = tmp_path / "manifest.csv"
    real.write_text(
        "file,expected,source,track,licence\n"
        "clips/a.wav,jazz|classical,s,Track A [a.ogg] @25%,x\n"
        "clips/c.wav,jazz|classical,s,Track A [a.ogg] @50%,x\nclips/b.wav,other,s,B @25%,x\n"
    )
    either = frozenset({"jazz", "classical"})
    assert read_sources(real) == ["s", "s"]
    assert read_clips(real) == [
        (tmp_path / "clips/a.wav", either, "Track A [a.ogg]"),
        (tmp_path / "clips/c.wav", either, "Track A [a.ogg]"),
    ]
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("path,label,group\nrock/rock.00001.wav,rock,g\n")
    assert read_clips(corpus) == [
        (tmp_path / "rock/rock.00001.wav", frozenset({"rock"}), "rock/rock.00001.wav")
    ]
    assert read_sources(corpus) == ["rock/rock.00001.wav"]
