"""Labelled audio: discovery, splits that never leak, a feature cache, and patches.

Tracks come from a GTZAN-style folder (``root/<genre>/<file>``) or a CSV/JSON manifest
(path, label, optional group and any other columns). Splits put every track, and every
group (artist, groove family...), on one side only; patches are cut after splitting, never
before, so no two sides share audio. Features are cached on disk keyed by the FeatureSpec
and the file's content, so a second run does not decode again. A bad file is reported with
its reason and skipped; it never aborts a run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.features import BatchExtractor, FeatureSpec
from streamer.capture.file import AUDIO_EXTENSIONS, read_audio
from streamer.errors import StreamerError
from streamer.files import write_atomically

SIDES = ("train", "valid", "test")


@dataclass(frozen=True)
class Track:
    """One labelled file. `key` is its path relative to the dataset root (split files use it)."""

    path: Path
    label: str
    key: str
    group: str
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Skipped:
    """A file left out, and why."""

    path: str
    reason: str


@dataclass
class Dataset:
    tracks: list[Track]
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return sorted({t.label for t in self.tracks})


def load_dataset(source: str | Path) -> Dataset:
    """A folder in GTZAN layout, or a manifest file (``.csv`` or ``.json``)."""
    source = Path(source)
    if source.is_dir():
        return discover_folder(source)
    if source.suffix.lower() in (".csv", ".json") and source.is_file():
        return read_manifest(source)
    raise StreamerError(
        f"{source}: not a dataset: give a folder laid out as root/<genre>/<file> "
        "or a .csv/.json manifest with path and label columns"
    )


def discover_folder(root: Path) -> Dataset:
    """Every audio file in ``root/<label>/``; other files are reported as skipped."""
    tracks, skipped = [], []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(p for p in label_dir.rglob("*") if p.is_file()):
            key = path.relative_to(root).as_posix()
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                skipped.append(
                    Skipped(key, f"not an audio file extension ({path.suffix or 'none'})")
                )
                continue
            tracks.append(Track(path=path, label=label_dir.name, key=key, group=key))
    if not tracks:
        raise StreamerError(f"{root}: no audio files in root/<genre>/ folders")
    return Dataset(tracks, skipped)


def read_manifest(path: Path) -> Dataset:
    """Rows with ``path`` and ``label``, optional ``group``; other columns are kept as meta.

    Relative paths are resolved against the manifest's folder.
    """
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text())
    else:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    tracks, skipped = [], []
    for number, row in enumerate(rows, start=1):
        if not row.get("path") or not row.get("label"):
            skipped.append(Skipped(f"{path.name}:{number}", "row without path or label"))
            continue
        file = (path.parent / row["path"]).resolve()
        key = str(row["path"])
        if file.suffix.lower() not in AUDIO_EXTENSIONS:
            skipped.append(Skipped(key, f"not an audio file extension ({file.suffix or 'none'})"))
            continue
        meta = {k: str(v) for k, v in row.items() if k not in ("path", "label", "group")}
        group = str(row.get("group") or key)
        tracks.append(Track(path=file, label=str(row["label"]), key=key, group=group, meta=meta))
    return Dataset(tracks, skipped)


# --- splits ------------------------------------------------------------------------------


@dataclass
class Split:
    train: list[Track]
    valid: list[Track]
    test: list[Track]
    dropped: int = 0
    description: dict[str, Any] = field(default_factory=dict)

    def sides(self) -> dict[str, list[Track]]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def summary(self) -> dict[str, Any]:
        return {
            **self.description,
            **{f"{side}_tracks": len(tracks) for side, tracks in self.sides().items()},
            **{
                f"{side}_groups": len({t.group for t in tracks})
                for side, tracks in self.sides().items()
            },
            "dropped_tracks": self.dropped,
        }

    def to_json(self) -> str:
        """The split as lists of track keys: reusable with `read_split_file`."""
        return json.dumps({s: [t.key for t in ts] for s, ts in self.sides().items()}, indent=1)


def split_by_group(
    tracks: Iterable[Track],
    *,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
    test_only: tuple[str, str] | None = None,
    by_track: bool = False,
) -> Split:
    """Assign whole groups to train, valid or test, per label, reproducibly from `seed`.

    Each group goes to one side; groups are drawn per label (the group's most common
    label) so every label is represented on each side when it has enough groups.

    ``test_only=(column, value)`` makes a condition the test side instead, e.g.
    ``("held_out", "1")`` for the corpus's held-out grooves rendered with a soundfont no
    other clip uses: the tracks meeting it are the test side, their groups never appear
    in train or valid (other tracks of those groups are dropped and counted), and valid is
    drawn from the remaining groups. `test_fraction` is then unused.

    ``by_track=True`` treats every track as its own group: a random clip split, in which
    tracks of one groove share sides. It measures what knowing the groove is worth, beside
    the figure that holds groups out; it is never the headline figure.
    """
    tracks = list(tracks)
    group_of = (lambda t: t.key) if by_track else (lambda t: t.group)
    test: list[Track] = []
    test_groups: set[str] = set()
    if test_only is not None:
        column, value = test_only
        test = [t for t in tracks if t.meta.get(column) == value]
        if not test:
            raise StreamerError(f"no track has {column}={value}: nothing to test on")
        test_groups = {group_of(t) for t in test}
        test_fraction = 0.0
    by_group: dict[str, list[Track]] = defaultdict(list)
    for track in tracks:
        if group_of(track) not in test_groups:
            by_group[group_of(track)].append(track)
    groups_of_label: dict[str, list[str]] = defaultdict(list)
    for group, members in sorted(by_group.items()):
        label = Counter(t.label for t in members).most_common(1)[0][0]
        groups_of_label[label].append(group)
    rng = np.random.default_rng(seed)
    sides: dict[str, list[Track]] = {"train": [], "valid": [], "test": test}
    for label in sorted(groups_of_label):
        groups = list(rng.permutation(groups_of_label[label]))
        n_test = _share(len(groups), test_fraction)
        n_valid = _share(len(groups) - n_test, valid_fraction / (1 - test_fraction))
        for index, group in enumerate(groups):
            side = "test" if index < n_test else "valid" if index < n_test + n_valid else "train"
            sides[side] += by_group[group]
    dropped = len(tracks) - sum(len(members) for members in sides.values())
    description = {
        "method": "by track (random), per label" if by_track else "by group, per label",
        "seed": seed,
        "valid_fraction": valid_fraction,
        "test_fraction": test_fraction,
        "test_only": list(test_only) if test_only else None,
        "test_groups": sorted({t.group for t in sides["test"]}),
    }
    return Split(sides["train"], sides["valid"], sides["test"], dropped, description)


def _share(n: int, fraction: float) -> int:
    """Groups for a side: at least one when there are three or more to share."""
    if n < 3 or fraction <= 0:
        return 0
    return max(1, round(n * fraction))


def read_split_file(source: str | Path, tracks: Iterable[Track]) -> Split:
    """A fixed split: a JSON ``{"train": [...], "valid": [...], "test": [...]}`` of track keys,
    or a folder with ``train*.txt``, ``valid*.txt`` and ``test*.txt`` (one key a line, as the
    fault-filtered GTZAN split is distributed). Tracks not listed are left out."""
    source = Path(source)
    if source.is_dir():
        listed = {}
        for side in SIDES:
            files = sorted(source.glob(f"{side}*.txt"))
            if len(files) != 1:
                raise StreamerError(f"{source}: expected exactly one {side}*.txt file")
            listed[side] = [line.strip() for line in files[0].read_text().splitlines()]
    else:
        listed = json.loads(source.read_text())
    by_key = {t.key: t for t in tracks}
    sides: dict[str, list[Track]] = {}
    missing = []
    seen: set[str] = set()
    for side in SIDES:
        keys = [k for k in listed.get(side, []) if k]
        if seen.intersection(keys):
            raise StreamerError(f"{source}: {sorted(seen.intersection(keys))[0]} is on two sides")
        seen.update(keys)
        missing += [k for k in keys if k not in by_key]
        sides[side] = [by_key[k] for k in keys if k in by_key]
    description = {"method": "fixed split file", "file": source.name, "missing": missing}
    dropped = len(by_key) - sum(len(v) for v in sides.values())
    return Split(sides["train"], sides["valid"], sides["test"], dropped, description)


# --- features ----------------------------------------------------------------------------

Transform = Callable[[np.ndarray], np.ndarray]


class FeatureCache:
    """Log-mel frames of files, cached as ``.npy`` under a key of spec, content and variant.

    The spec key ignores the normalisation statistics (they are computed from these very
    features). A variant names a waveform transform applied before extraction (for example
    a seeded room simulation), so augmented features are cached too.
    """

    def __init__(self, root: str | Path, spec: FeatureSpec) -> None:
        self.spec = spec
        unnormalised = {k: v for k, v in spec.to_dict().items() if not k.startswith("norm_")}
        spec_key = hashlib.sha256(json.dumps(unnormalised, sort_keys=True).encode()).hexdigest()
        self.root = Path(root) / spec_key[:16]
        self.root.mkdir(parents=True, exist_ok=True)
        self._extractor = BatchExtractor(spec)
        self.hits = 0
        self.misses = 0

    def logmel(
        self, path: Path, *, variant: str = "clean", transform: Transform | None = None
    ) -> np.ndarray:
        """Frames ``(n_frames, n_mels)`` as float32; raises StreamerError for a bad file."""
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        cached = self.root / f"{content}-{variant}.npy"
        if cached.exists():
            self.hits += 1
            return np.load(cached)
        self.misses += 1
        y = read_audio(path, sample_rate=self.spec.sample_rate)
        if transform is not None:
            y = transform(y)
        frames = self._extractor.logmel(y).astype(np.float32)
        buffer = io.BytesIO()
        np.save(buffer, frames)
        write_atomically(cached, buffer.getvalue())
        return frames


def cut_patches(logmel: np.ndarray, *, patch_frames: int, hop_frames: int) -> np.ndarray:
    """Patches ``(n, patch_frames, n_mels)`` every `hop_frames`; none if the track is short."""
    n = (logmel.shape[0] - patch_frames) // hop_frames + 1
    if n <= 0:
        return np.empty((0, patch_frames, logmel.shape[1]), dtype=logmel.dtype)
    starts = np.arange(n) * hop_frames
    return np.stack([logmel[s : s + patch_frames] for s in starts])
