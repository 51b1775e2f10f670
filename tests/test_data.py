"""Training data: discovery, splits that never leak, fixed split files, the feature cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from streamer.analysis.features import FeatureSpec
from streamer.errors import StreamerError
from training.data import (
    FeatureCache,
    Track,
    cut_patches,
    discover_folder,
    load_dataset,
    read_manifest,
    read_split_file,
    split_by_group,
)


def make_tracks(n_labels: int = 3, groups_per_label: int = 8, per_group: int = 3) -> list[Track]:
    tracks = []
    for label in range(n_labels):
        for group in range(groups_per_label):
            for index in range(per_group):
                key = f"g{label}/{group}-{index}.wav"
                font = "held" if index == 0 else "seen"
                tracks.append(
                    Track(Path(key), f"genre{label}", key, f"family{label}-{group}", {"sf": font})
                )
    return tracks


def test_groups_and_tracks_stay_on_one_side() -> None:
    tracks = make_tracks()
    split = split_by_group(tracks, valid_fraction=0.2, test_fraction=0.25, seed=3)
    sides = split.sides()
    groups = {side: {t.group for t in ts} for side, ts in sides.items()}
    keys = {side: {t.key for t in ts} for side, ts in sides.items()}
    assert not groups["train"] & groups["test"]
    assert not groups["train"] & groups["valid"]
    assert not groups["valid"] & groups["test"]
    assert sum(len(k) for k in keys.values()) == len(tracks)
    for side in sides:  # every label on every side
        assert {t.label for t in sides[side]} == {"genre0", "genre1", "genre2"}
    assert len(groups["test"]) == 3 * 2  # 25 % of 8 groups per label
    again = split_by_group(tracks, valid_fraction=0.2, test_fraction=0.25, seed=3)
    assert again.to_json() == split.to_json()
    assert split_by_group(tracks, seed=4).to_json() != split.to_json()


def test_a_split_by_track_shares_groups_but_never_tracks() -> None:
    tracks = make_tracks()
    split = split_by_group(tracks, valid_fraction=0.2, test_fraction=0.25, seed=3, by_track=True)
    sides = split.sides()
    keys = {side: [t.key for t in ts] for side, ts in sides.items()}
    every = [key for side_keys in keys.values() for key in side_keys]
    assert sorted(every) == sorted(t.key for t in tracks)  # each track once
    assert len(keys["test"]) == 3 * 6  # 25 % of 24 tracks per label
    groups = {side: {t.group for t in ts} for side, ts in sides.items()}
    assert groups["train"] & groups["test"]  # the clips of one groove now share sides
    assert split.description["method"].startswith("by track")


def test_test_only_condition_is_the_test_side_and_its_groups_leave_training() -> None:
    tracks = make_tracks()  # index 0 of every group has sf=held
    held_groups = {"family0-1", "family1-5", "family2-2"}
    tracks = [
        Track(t.path, t.label, t.key, t.group, {"held": str(int(t.group in held_groups))})
        if t.key.endswith(("-0.wav", "-1.wav")) or t.group not in held_groups
        else t
        for t in tracks
    ]
    split = split_by_group(tracks, valid_fraction=0.2, seed=0, test_only=("held", "1"))
    assert {t.group for t in split.test} == held_groups
    assert all(t.meta.get("held") == "1" for t in split.test)
    assert not held_groups & {t.group for t in split.train + split.valid}
    assert split.dropped == 3  # the third track of each held group lacks the condition
    assert split.valid and {t.label for t in split.valid} == {"genre0", "genre1", "genre2"}
    with pytest.raises(StreamerError, match="no track has held=2"):
        split_by_group(tracks, test_only=("held", "2"))


def test_patches_are_cut_after_the_split() -> None:
    logmel = np.arange(100 * 4, dtype=np.float32).reshape(100, 4)
    patches = cut_patches(logmel, patch_frames=30, hop_frames=20)
    assert patches.shape == (4, 30, 4)  # starts 0, 20, 40, 60
    assert np.array_equal(patches[1], logmel[20:50])
    assert cut_patches(logmel[:10], patch_frames=30, hop_frames=20).shape == (0, 30, 4)


def test_fixed_split_file_json_and_txt_folder(tmp_path: Path) -> None:
    tracks = make_tracks(1, 3, 1)
    keys = [t.key for t in tracks]
    (tmp_path / "split.json").write_text(
        json.dumps({"train": keys[:1], "valid": [], "test": [keys[2], "missing.wav"]})
    )
    split = read_split_file(tmp_path / "split.json", tracks)
    assert [t.key for t in split.train] == keys[:1] and [t.key for t in split.test] == [keys[2]]
    assert split.dropped == 1 and split.description["missing"] == ["missing.wav"]
    folder = tmp_path / "ff"
    folder.mkdir()
    for side, chosen in (("train", keys[1:]), ("valid", []), ("test", keys[:1])):
        (folder / f"{side}_filtered.txt").write_text("\n".join(chosen) + "\n")
    split = read_split_file(folder, tracks)
    assert [t.key for t in split.train] == keys[1:] and [t.key for t in split.test] == keys[:1]
    (folder / "test_filtered.txt").write_text(keys[1] + "\n")
    with pytest.raises(StreamerError, match="on two sides"):
        read_split_file(folder, tracks)


def test_discovery_and_manifest(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for genre in ("jazz", "rock"):
        (root / genre).mkdir(parents=True)
        soundfile.write(root / genre / "a.wav", np.zeros(100), 22050)
    (root / "rock" / "cover.jpg").write_bytes(b"\xff\xd8")
    dataset = discover_folder(root)
    assert [t.key for t in dataset.tracks] == ["jazz/a.wav", "rock/a.wav"]
    assert dataset.labels == ["jazz", "rock"]
    assert [(s.path, s.reason.split(" (")[0]) for s in dataset.skipped] == [
        ("rock/cover.jpg", "not an audio file extension")
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,group,soundfont\ndata/jazz/a.wav,jazz,swing,fluid\n,rock,,\n")
    loaded = read_manifest(manifest)
    assert loaded.tracks[0].group == "swing" and loaded.tracks[0].meta == {"soundfont": "fluid"}
    assert loaded.tracks[0].path == (root / "jazz" / "a.wav").resolve()
    assert len(loaded.skipped) == 1
    with pytest.raises(StreamerError, match="not a dataset"):
        load_dataset(tmp_path / "nothing.txt")


def test_feature_cache_decodes_once_per_content(tmp_path: Path) -> None:
    spec = FeatureSpec(n_mels=32, n_mfcc=13)
    audio = tmp_path / "a.wav"
    soundfile.write(audio, np.random.default_rng(0).standard_normal(22050) * 0.1, 22050)
    cache = FeatureCache(tmp_path / "cache", spec)
    first = cache.logmel(audio)
    second = cache.logmel(audio)
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(first, second)
    fitted = spec.with_normalization(np.zeros(32), np.ones(32))
    normalised = FeatureCache(tmp_path / "cache", fitted)
    normalised.logmel(audio)
    assert normalised.hits == 1  # normalisation statistics do not change the cache key
    soundfile.write(audio, np.zeros(22050), 22050)
    cache.logmel(audio)
    assert cache.misses == 2
    assert cache.logmel(audio, variant="loud", transform=lambda y: y + 0.5).max() > first.max()
