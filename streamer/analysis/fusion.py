"""One genre decision from two networks: the genre CNN and musicnn's taggers.

The CNN knows the ten genres as General MIDI renderings taught them; musicnn's taggers
know real recordings but speak in Last.fm and MagnaTagATune tags and have no reggae. The
decision is a mixture of two distributions over the decision's genres (the CNN's, then
the genres only tags know, such as ``electronic``):

* the CNN's probabilities, with ``missing_cnn`` given to each genre it lacks, renormalised;
* the tags' view: a genre's evidence is the largest of its mapped tags (``mapping``),
  ``missing_tags`` for a genre no tag names, raised to ``sharpness`` and normalised.

``fused = cnn_weight * cnn + (1 - cnn_weight) * tags``; before the first tag patch of a
stream (about 3.1 s) the CNN decides alone. A handful of numbers, no network trained on
synthetic labels: the synthetic corpus must not overrule what musicnn learnt from real
music. `streamer-train fusion` chooses them on real recordings by cross-validation over
tracks, with the synthetic held-out split as a guard, and writes ``models/fusion.json``.

`calibration` is the fused decision's temperature and top-label curve
(`streamer.analysis.calibration`), fitted by `streamer-train calibrate`; the chain applies it
to the decision, `fuse` does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.calibration import Calibration
from streamer.errors import StreamerError
from streamer.files import deciding_sha256, read_document, reading_document

FUSION_FORMAT = "streamer-fusion"


def shipped_fusion(cnn_labels: Sequence[str]) -> GenreFusion | None:
    """The shipped decision, if it was made for a CNN of `cnn_labels` (the shipped CNN);
    None for another model, which then decides alone."""
    fusion = GenreFusion.load(shipped_fusion_path())
    return fusion if fusion.fits(cnn_labels) else None


def shipped_fusion_path() -> Path:
    """The shipped decision, ``fusion.json`` beside the shipped genre model."""
    from streamer.analysis.model import shipped_model_path

    return shipped_model_path().parent / "fusion.json"


@dataclass(frozen=True)
class GenreFusion:
    """The parameters of the decision, and the decision itself (`fuse`).

    Parameters
    ----------
    labels : sequence of str
        The decision's genres: every CNN label, in the CNN's order, then tag-only genres.
    cnn_labels : sequence of str
        The genre CNN's labels.
    tag_labels : sequence of str
        The taggers' labels, ``"model/tag"`` (`streamer.analysis.tagger.TagAnalyzer`).
    mapping : mapping of str to sequence of str
        Genre -> the tags whose largest probability is its tag evidence.
    cnn_weight, sharpness, missing_cnn, missing_tags : float
        See the module docstring.
    provenance : mapping
        How the numbers were chosen and what they scored (kept in the file, not used).
    calibration : Calibration
        The fused decision's calibration (``"calibration"`` in the file; none without).

    Examples
    --------
    >>> fusion = GenreFusion(
    ...     labels=("metal", "rock", "electronic"), cnn_labels=("metal", "rock"),
    ...     tag_labels=("msd/metal", "msd/rock", "msd/electronic"),
    ...     mapping={"metal": ["msd/metal"], "rock": ["msd/rock"],
    ...              "electronic": ["msd/electronic"]},
    ...     cnn_weight=0.5, sharpness=1.0, missing_cnn=0.0, missing_tags=0.05)
    >>> fusion.fuse(np.array([0.2, 0.8]), None).round(2).tolist()  # no tags yet: the CNN
    [0.2, 0.8, 0.0]
    >>> fusion.fuse(np.array([0.2, 0.8]), np.array([0.9, 0.05, 0.05])).round(2).tolist()
    [0.55, 0.43, 0.02]
    """

    labels: tuple[str, ...]
    cnn_labels: tuple[str, ...]
    tag_labels: tuple[str, ...]
    mapping: Mapping[str, tuple[str, ...]]
    cnn_weight: float
    sharpness: float
    missing_cnn: float
    missing_tags: float
    provenance: Mapping[str, Any] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)

    def __post_init__(self) -> None:
        for name in ("labels", "cnn_labels", "tag_labels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        mapping = {genre: tuple(tags) for genre, tags in self.mapping.items()}
        object.__setattr__(self, "mapping", mapping)
        problems = []
        if self.labels[: len(self.cnn_labels)] != self.cnn_labels:
            problems.append("labels must start with the CNN's labels, in its order")
        if len(set(self.labels)) != len(self.labels):
            problems.append("labels must be distinct")
        unknown = sorted({t for tags in mapping.values() for t in tags} - set(self.tag_labels))
        if unknown:
            problems.append(f"unknown tags {unknown}")
        if set(mapping) - set(self.labels):
            problems.append(
                f"mapping names genres not in labels: {sorted(set(mapping) - set(self.labels))}"
            )
        if not 0.0 <= self.cnn_weight <= 1.0 or self.sharpness <= 0:
            problems.append("need 0 <= cnn_weight <= 1 and sharpness > 0")
        if self.missing_cnn < 0 or self.missing_tags < 0:
            problems.append("missing_cnn and missing_tags must not be negative")
        if problems:
            raise ValueError("invalid GenreFusion: " + "; ".join(problems))
        index = {tag: i for i, tag in enumerate(self.tag_labels)}
        columns = [[index[t] for t in mapping.get(genre, ())] for genre in self.labels]
        object.__setattr__(self, "_columns", columns)

    def fuse(self, cnn: np.ndarray, tags: np.ndarray | None) -> np.ndarray:
        """The decision's probabilities ``(n_labels,)`` from one hop's evidence.

        `cnn`: the CNN's probabilities ``(n_cnn_labels,)``; `tags`: the latest tag hop's
        probabilities ``(n_tag_labels,)``, or None before the first one.
        """
        rows = None if tags is None else np.asarray(tags)[None]
        one: np.ndarray = self.fuse_hops(np.asarray(cnn)[None], rows)[0]
        return one

    def fuse_hops(self, cnn: np.ndarray, tags: np.ndarray | None) -> np.ndarray:
        """`fuse` for many hops at once: ``(n, n_cnn_labels)`` and ``(n, n_tag_labels)``,
        where a row of NaN (or ``tags=None``) means no tag hop yet; ``(n, n_labels)``."""
        cnn = np.asarray(cnn, dtype=np.float64)
        extra = np.full((len(cnn), len(self.labels) - len(self.cnn_labels)), self.missing_cnn)
        from_cnn = np.concatenate([cnn, extra], axis=1)
        from_cnn /= from_cnn.sum(axis=1, keepdims=True)
        if tags is None:
            return from_cnn
        values = np.asarray(tags, dtype=np.float64)
        columns: list[list[int]] = self._columns  # type: ignore[attr-defined]
        evidence = np.stack(
            [
                values[:, c].max(axis=1) if c else np.full(len(values), self.missing_tags)
                for c in columns
            ],
            axis=1,
        )
        from_tags = np.maximum(evidence, 1e-12) ** self.sharpness
        from_tags /= from_tags.sum(axis=1, keepdims=True)
        fused = self.cnn_weight * from_cnn + (1.0 - self.cnn_weight) * from_tags
        tagged = np.logical_not(np.isnan(values).any(axis=1))
        decided: np.ndarray = np.where(tagged[:, None], fused, from_cnn)
        return decided

    @property
    def sha256(self) -> str:
        """A digest of the numbers, labels and calibration (not of the provenance): what
        decides what the chain shows."""
        return deciding_sha256(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FUSION_FORMAT,
            "format_version": 1,
            "labels": list(self.labels),
            "cnn_labels": list(self.cnn_labels),
            "tag_labels": list(self.tag_labels),
            "mapping": {genre: list(tags) for genre, tags in self.mapping.items()},
            "cnn_weight": self.cnn_weight,
            "sharpness": self.sharpness,
            "missing_cnn": self.missing_cnn,
            "missing_tags": self.missing_tags,
            "provenance": dict(self.provenance),
            "calibration": self.calibration.to_dict(),
        }

    @classmethod
    def load(cls, path: str | Path) -> GenreFusion:
        """Read a fusion file; a one-line error if it is missing or wrong."""
        path = Path(path)
        redo = "run `streamer-train fusion` again, or give --no-tagger"
        with reading_document(path, kind="fusion", redo=redo):
            data = read_document(path, format=FUSION_FORMAT)
            return cls(
                labels=data["labels"],
                cnn_labels=data["cnn_labels"],
                tag_labels=data["tag_labels"],
                mapping=data["mapping"],
                cnn_weight=float(data["cnn_weight"]),
                sharpness=float(data["sharpness"]),
                missing_cnn=float(data["missing_cnn"]),
                missing_tags=float(data["missing_tags"]),
                provenance=data.get("provenance", {}),
                calibration=Calibration.from_metadata(data.get("calibration")),
            )

    def fits(self, cnn_labels: Sequence[str]) -> bool:
        """Whether the numbers were chosen for a CNN of these labels."""
        return tuple(cnn_labels) == self.cnn_labels

    def check(self, *, cnn_labels: Sequence[str], tag_labels: Sequence[str]) -> None:
        """Refuse to decide from networks other than the ones the numbers were chosen for."""
        if not self.fits(cnn_labels) or tuple(tag_labels) != self.tag_labels:
            raise StreamerError(
                "the fusion file was made for other models (their labels differ): "
                "run `streamer-train fusion` again, or give --no-tagger"
            )
