"""`streamer-train calibrate`: fit the decisions' calibrations and measure them.

The chain's decision is the shipped fusion of the CNN and musicnn's tags (11 genres), or,
with ``--no-tagger``, the CNN alone (10). Each gets its map
(`streamer.analysis.calibration.Calibration`), fitted on a validation side and stored with
what it calibrates: ``"calibration"`` in ``fusion.json`` and in ``genre.json``. The CNN
alone, a softmax, gets one temperature (the smallest negative log-likelihood of every hop's
decision against its clip's genre); the fused decision, a mixture, such a temperature and
then a top-label curve (an isotonic regression of "the top genre is right" on the tempered
top probability), because no temperature calibrates it even on the hops it is fitted on.

The validation side must be as hard as the held-out split: clips of groove families no
epoch trained on (the fit's validation families), rendered with training soundfonts. Clips
of training families are right far more often (91 % of the CNN's hops against 74 %), and
a map fitted on them is over-confident on any music the CNN has not learnt.

The evidence is the runtime's own: every clip goes through `streamer tag`'s chain
(`training.fusion.collect`), and each hop's CNN probabilities and tag hop are kept (and
cached, keyed by the networks and the clips). The figures are the expected calibration
error (`ECE_BINS` equal-width bins on the top-1 probability, per hop) before and after, and
a reliability diagram per condition, on the held-out split clean and through the fixed room
chain (`training.augment.evaluation_room`, as `streamer-train evaluate` measures it).

`streamer-train calibrate-shown` then fits what the display shows: the tracker's filtered
probability of the genre it shows is restated by the isotonic regression of "the shown
genre is the one playing" on it (`streamer.analysis.calibration.ShownCalibration`), over
quantile bins of the hops that show a genre in generated mixes (`training.mixes`) of the
same validation families, run through `streamer tag`'s chain with its default options; it
is measured on mixes of the held-out families and drawn in ``reliability-shown.png``. It
belongs to the decision's map and to the tracker's parameters: `calibrate` drops it (fit it
again after), and the chain ignores it under other smoothing options.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from streamer.analysis.calibration import Calibration, ShownCalibration
from streamer.analysis.fusion import GenreFusion, shipped_fusion_path
from streamer.analysis.model import DEFAULT_MODEL, GenreModel, metadata_path
from streamer.analysis.tagger import TagModel, shipped_tagger_paths
from streamer.capture.file import read_audio
from streamer.chain import GenreChain, TrackedHop
from streamer.cli.options import build_chain, default_analysis
from streamer.errors import StreamerError
from streamer.files import write_atomically
from streamer.offline.tagging import tag_file
from streamer.tracking import SmoothingConfig
from training.augment import evaluation_room
from training.fusion import ClipEvidence, _pct, _scored_rows, collect, read_clips
from training.mixes import judged, load_truth, mix_files, playing

ECE_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)
CONDITIONS = ("clean", "room")
DECISIONS = ("fused", "cnn")


@dataclass(frozen=True)
class HopDecisions:
    """Every hop's decision over `labels` and what is right for its clip.

    ``truth`` is the index of the clip's genre per hop ``(hops,)``, or, for a real
    excerpt that may be one of several (``classical|jazz``), which genres are right
    ``(hops, labels)``, booleans; every function here takes either.
    """

    labels: tuple[str, ...]
    probabilities: np.ndarray  # (hops, labels)
    truth: np.ndarray  # (hops,) or (hops, labels)


def right(probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Whether each hop's top genre is right (`HopDecisions.truth` in either form)."""
    top = probabilities.argmax(axis=1)
    if truth.ndim == 2:
        allowed: np.ndarray = truth[np.arange(len(top)), top]
        return allowed
    same: np.ndarray = top == truth
    return same


def decisions(clips: Sequence[ClipEvidence], *, fusion: GenreFusion, decision: str) -> HopDecisions:
    """The hops of `clips` as the fused decision or the CNN alone would decide them; a clip
    whose genre the decision does not know (electronic for the CNN) is left out."""
    labels = fusion.labels if decision == "fused" else fusion.cnn_labels
    rows, truth = [], []
    for clip in clips:
        known = [g for g in clip.expected if g in labels]
        if not known:
            continue
        rows.append(fusion.fuse_hops(clip.cnn, clip.tags) if decision == "fused" else clip.cnn)
        allowed = np.isin(labels, known)
        truth.append(np.repeat(allowed[None], len(clip.cnn), axis=0))
    return HopDecisions(labels, np.concatenate(rows), np.concatenate(truth))


def negative_log_likelihood(
    probabilities: np.ndarray, truth: np.ndarray, calibration: Calibration
) -> float:
    """Mean ``-log p_cal(a right genre)`` over hops."""
    calibrated = calibration.apply(probabilities)
    if truth.ndim == 2:
        chance = (calibrated * truth).sum(axis=1)
    else:
        chance = calibrated[np.arange(len(truth)), truth]
    return float(-np.log(np.maximum(chance, 1e-300)).mean())


def fit_temperature(probabilities: np.ndarray, truth: np.ndarray) -> Calibration:
    """The temperature in `TEMPERATURE_BOUNDS` of the smallest NLL (searched on log T)."""
    low, high = np.log(TEMPERATURE_BOUNDS)
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(probabilities, truth, Calibration(np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return Calibration(float(np.exp(found.x)))


def fit_top_label(probabilities: np.ndarray, truth: np.ndarray) -> Calibration:
    """The temperature (`fit_temperature`), then the top-label curve: the isotonic
    regression of "the top genre is right" on the tempered top probability, as knots
    (linear between them, as the regression predicts)."""
    temperature = fit_temperature(probabilities, truth)
    tempered = temperature.evidence(probabilities)
    knots = isotonic_knots(tempered.max(axis=1), right(tempered, truth))
    return Calibration(temperature.temperature, knots)


FITS: dict[str, Callable[[np.ndarray, np.ndarray], Calibration]] = {
    "fused": fit_top_label,
    "cnn": fit_temperature,
}
"""How each decision is calibrated (see the module docstring)."""


def describe(calibration: Calibration) -> str:
    """A calibration in a few words, for legends and the card."""
    if calibration.top_label:
        return f"T = {calibration.temperature:.2f}, curve of {len(calibration.top_label)} knots"
    return f"T = {calibration.temperature:.2f}"


def reliability(
    probabilities: np.ndarray, truth: np.ndarray, *, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of the top-1 probability: mean confidence, accuracy and hops
    (NaN confidence and accuracy in an empty bin)."""
    return binned(probabilities.max(axis=1), right(probabilities, truth), bins=bins)


def binned(
    confidence: np.ndarray, correct: np.ndarray, *, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`reliability` of any stated confidences and whether each was right."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
    return mean_confidence, accuracy, counts


def expected_calibration_error(
    probabilities: np.ndarray, truth: np.ndarray, *, bins: int = ECE_BINS
) -> float:
    """``sum over bins of (hops in bin / hops) * |accuracy - mean confidence|``."""
    return binned_error(probabilities.max(axis=1), right(probabilities, truth), bins=bins)


def binned_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """`expected_calibration_error` of any stated confidences and whether each was right."""
    confidence, accuracy, counts = binned(confidence, correct, bins=bins)
    full = counts > 0
    return float((counts[full] * np.abs(accuracy[full] - confidence[full])).sum() / counts.sum())


def save_reliability_diagram(
    panels: Sequence[tuple[str, HopDecisions, Calibration]], *, path_png: Path, title: str
) -> None:
    """One panel per decision: accuracy against confidence per bin, raw and calibrated,
    with the diagonal a calibrated decision follows and each curve's ECE."""
    draw_reliability(
        [
            (
                name,
                [
                    ("raw", *_top_right(hops.probabilities, hops.truth)),
                    (
                        describe(calibration),
                        *_top_right(calibration.apply(hops.probabilities), hops.truth),
                    ),
                ],
            )
            for name, hops, calibration in panels
        ],
        path_png=path_png,
        title=title,
        axis="top-1 probability",
    )


def _top_right(probabilities: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return probabilities.max(axis=1), right(probabilities, truth)


def draw_reliability(
    panels: Sequence[tuple[str, Sequence[tuple[str, np.ndarray, np.ndarray]]]],
    *,
    path_png: Path,
    title: str,
    axis: str,
) -> None:
    """Panels of curves ``(label, confidence, correct)``: accuracy against confidence
    per bin (the first curve drawn dashed, the others solid), the diagonal a calibrated
    confidence follows, each curve's ECE."""
    fig = Figure(figsize=(5.0 * len(panels), 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    for ax, (name, curves) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
        for i, (label, stated, correct) in enumerate(curves):
            marker, line = ("o", "--") if i == 0 else ("s", "-")
            confidence, accuracy, counts = binned(stated, correct)
            ece = binned_error(stated, correct)
            full = counts > 0
            (drawn,) = ax.plot(confidence[full], accuracy[full], line, alpha=0.6)
            # a bin's marker area is its share of the hops: the ECE weighs bins so
            share = counts[full] / counts.sum()
            ax.scatter(confidence[full], accuracy[full], s=12 + 600 * share, marker=marker,
                       color=drawn.get_color(), label=f"{label}: ECE {ece:.3f}")  # fmt: skip
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{axis} (mean of each of {ECE_BINS} bins; area: its hops)")
        ax.set_ylabel("fraction of hops right")
        ax.set_title(f"{name}: {len(curves[0][1])} hops")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.savefig(path_png, dpi=100)


def room_copies(clips: Sequence[tuple[Path, frozenset[str], str]], *, folder: Path,
                sample_rate: int) -> list[tuple[Path, frozenset[str], str]]:  # fmt: skip
    """The clips through `evaluation_room`, written once into `folder` (float WAV)."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path, expected, track in clips:
        copy = folder / f"{path.parent.name}-{path.stem}.wav"
        if not copy.is_file():
            audio = evaluation_room(read_audio(path, sample_rate=sample_rate),
                                    sample_rate=sample_rate)  # fmt: skip
            sf.write(copy, audio, sample_rate, subtype="FLOAT")
        copies.append((copy, expected, track))
    return copies


def cached_evidence(
    clips: Sequence[tuple[Path, frozenset[str], str]], chain: GenreChain, *, cache: Path,
    key: str, progress: Callable[[int, int], None],
) -> list[ClipEvidence]:  # fmt: skip
    """`collect`, kept in ``cache/KEY-*.npy`` per networks and clip list, so a second run
    (another plot, another fit) does not run the networks again."""
    assert chain.tagger is not None
    shas = [chain.analyzer.model.info.sha256, *(t.info.sha256 for t in chain.tagger.taggers)]
    names = [str(path) for path, _, _ in clips]
    digest = hashlib.sha256(json.dumps([shas, names]).encode()).hexdigest()[:16]
    stem = cache / f"{key}-{digest}"
    files = {name: stem.with_name(f"{stem.name}-{name}.npy") for name in ("cnn", "tags", "hops")}
    if not all(f.is_file() for f in files.values()):
        evidence = collect(clips, chain, progress=progress)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(files["cnn"], np.concatenate([c.cnn for c in evidence]))
        np.save(files["tags"], np.concatenate([c.tags for c in evidence]))
        np.save(files["hops"], np.array([len(c.cnn) for c in evidence]))
    cnn, tags = np.load(files["cnn"]), np.load(files["tags"])
    ends = np.cumsum(np.load(files["hops"]))
    return [
        ClipEvidence(path.name, expected, track, c, t)
        for (path, expected, track), c, t in zip(
            clips, np.split(cnn, ends[:-1]), np.split(tags, ends[:-1]), strict=True
        )
    ]


def run_calibrate(
    *,
    validation: Path,
    held_out: Path,
    out: Path,
    cache: Path,
    every: int = 1,
    realset: Path | None = None,
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
) -> dict[str, Any]:
    """Fit both calibrations on `validation`, measure them on `held_out` (every `every`th
    clip, clean and through the room: the networks take seconds a clip) and, given its
    manifest, on the real development set (an excerpt right when the top genre is one of
    those it expects), write them into ``out/genre.json`` and ``out/fusion.json``, the
    diagrams ``out/reliability-*.png`` and the cards' calibration section; returns the
    figures."""
    model = GenreModel(out / "genre.onnx")
    fusion = GenreFusion.load(out / shipped_fusion_path().name)
    chain = GenreChain(model, taggers=[TagModel(p) for p in shipped_tagger_paths()])
    assert chain.tagger is not None
    fusion.check(cnn_labels=model.labels, tag_labels=chain.tagger.labels)
    rate = model.spec.sample_rate
    held = read_clips(held_out)[::every]
    sets = {
        "validation": read_clips(validation),
        "clean": held,
        "room": room_copies(held, folder=cache / "room", sample_rate=rate),
    }
    if realset is not None:
        sets["real"] = read_clips(realset)
    evidence = {
        name: cached_evidence(
            clips,
            chain,
            cache=cache,
            key=name,
            progress=lambda d, t, name=name: progress(name, d, t),
        )
        for name, clips in sets.items()
    }
    hops = {
        (name, decision): decisions(clips, fusion=fusion, decision=decision)
        for name, clips in evidence.items()
        for decision in DECISIONS
    }
    families = sorted({row.get("group", "") for row in _scored_rows(validation)} - {""})
    figures: dict[str, Any] = {}
    for decision in DECISIONS:
        fitted = hops["validation", decision]
        calibration = FITS[decision](fitted.probabilities, fitted.truth)
        ece = {}
        for name in ("validation", *CONDITIONS, *(["real"] if realset else [])):
            h = hops[name, decision]
            ece[name] = {
                "raw": expected_calibration_error(h.probabilities, h.truth),
                "calibrated": expected_calibration_error(
                    calibration.apply(h.probabilities), h.truth
                ),
                "hops": len(h.truth),
                "accuracy": float(right(h.probabilities, h.truth).mean()),
            }
        figures[decision] = {
            **calibration.to_dict(),
            "fitted_on": f"{validation.parent.name}/{validation.name}: "
            f"{len(evidence['validation'])} clips, {len(fitted.truth)} hops, "
            f"{len(fitted.labels)} genres; "
            + (
                "NLL temperature, then the isotonic regression of the top genre being right "
                "on its tempered probability"
                if calibration.top_label
                else "NLL of each hop's decision against its clip's genre"
            )
            + " (streamer-train calibrate)",
            "ece": {"bins": ECE_BINS, "per": "hop", "held_out_every": every, **ece},
            "families": families,
        }
    write_calibration(metadata_path(model.path), figures["cnn"])
    write_calibration(out / shipped_fusion_path().name, figures["fused"])
    section = card_section(figures)
    for card in (out / "README.md", out / "fusion.md"):
        if card.is_file():
            write_atomically(card, replace_section(card.read_text(), section).encode())
    for condition in CONDITIONS:
        save_reliability_diagram(
            [
                (
                    title,
                    hops[condition, decision],
                    Calibration.from_metadata(figures[decision]),
                )
                for title, decision in (
                    ("the decision (CNN and tags)", "fused"),
                    ("the CNN alone (--no-tagger)", "cnn"),
                )
            ],
            path_png=out / f"reliability-{condition}.png",
            title=f"held-out split, {condition}: {len(evidence[condition])} clips",
        )
    return figures


SHOWN_PNG = "reliability-shown.png"


def shown_hops(
    chain: GenreChain, mixes: Sequence[Path], *, progress: Callable[[int, int], None]
) -> tuple[np.ndarray, np.ndarray]:
    """Every hop of `mixes` (with their truth) that shows a genre, through `chain` as
    `streamer tag` runs it but with the tracker's own confidence: that confidence, and
    whether the shown genre is one playing (`training.mixes.playing`; never over speech,
    tones or silence). A real track of none of the chain's genres is left out."""
    saved, chain.shown = chain.shown, None
    confidence: list[float] = []
    correct: list[bool] = []
    try:
        for done, wav in enumerate(mixes):
            hops: list[TrackedHop] = []
            tag_file(wav, chain=chain, on_hop=hops.append)
            times = np.array([tracked.update.time for tracked in hops])
            for tracked, genres in zip(hops, playing(load_truth(wav), times), strict=True):
                if tracked.update.top is not None and judged(genres, chain.labels):
                    confidence.append(tracked.update.confidence)
                    correct.append(tracked.update.top in genres)
            progress(done + 1, len(mixes))
    finally:
        chain.shown = saved
    return np.array(confidence), np.array(correct)


SHOWN_BINS = 10
"""Quantile bins of the tracker's confidence that `fit_shown` regresses over."""


def fit_shown(
    confidence: np.ndarray, correct: np.ndarray, *, smoothing: SmoothingConfig,
    bins: int = SHOWN_BINS,
) -> ShownCalibration:  # fmt: skip
    """The isotonic regression of "the shown genre is right" on the tracker's confidence,
    over `bins` quantile bins of it (each bin's mean confidence and accuracy, weighed by
    its hops). Not over every hop: the hops of one mix are alike, and a regression on
    each follows their noise (on 12 mixes, 78 knots, exact on their own hops and 0.09
    off on other mixes; over 10 bins, 0.08)."""
    edges = np.unique(np.quantile(confidence, np.linspace(0, 1, bins + 1)))
    # The top edge is the largest confidence: it closes the last bin, not one of its own.
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, max(len(edges) - 2, 0))
    counts = np.bincount(which)
    full = counts > 0
    mean_confidence = np.bincount(which, weights=confidence)[full] / counts[full]
    accuracy = np.bincount(which, weights=correct.astype(np.float64))[full] / counts[full]
    knots = isotonic_knots(mean_confidence, accuracy, weights=counts[full])
    return ShownCalibration(knots, smoothing)


def isotonic_knots(
    stated: np.ndarray, correct: np.ndarray, *, weights: np.ndarray | None = None
) -> tuple[tuple[float, float], ...]:
    """The knots of the isotonic regression of `correct` (or a fraction right) on `stated`
    (linear between them, as the regression predicts)."""
    curve = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    curve.fit(stated, correct.astype(np.float64), sample_weight=weights)
    return tuple(zip(curve.X_thresholds_.tolist(), curve.y_thresholds_.tolist(), strict=True))


def run_calibrate_shown(
    *,
    mixes: Sequence[Path],
    held_out: Sequence[Path],
    real: Sequence[Path] = (),
    model: Path = DEFAULT_MODEL,
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
) -> dict[str, Any]:
    """Fit the shown genre's curve of both decisions (the fusion, and the CNN alone) with
    `streamer tag`'s default options on the generated mixes in the `mixes` folders,
    measure it on those in the `held_out` folders (and on the `real` folders' mixes of
    the real development set, if any), add it to their ``"calibration"``
    entries (``fusion.json`` beside the shipped decision, the model's metadata), draw
    ``reliability-shown.png`` beside the model and write the cards' section; returns the
    figures."""
    files = {
        name: [wav for folder in folders for wav in mix_files(folder)]
        for name, folders in (("validation", mixes), ("held_out", held_out), ("real", real))
        if folders
    }
    figures: dict[str, Any] = {}
    panels = []
    for decision, title in (("fused", "the decision (CNN and tags)"),
                            ("cnn", "the CNN alone (--no-tagger)")):  # fmt: skip
        chain = build_chain(GenreModel(model), default_analysis(tagger=decision == "fused"))
        sides = {
            name: shown_hops(chain, wavs,
                             progress=lambda d, t, s=f"{decision} {name}": progress(s, d, t))
            for name, wavs in files.items()
        }  # fmt: skip
        shown = fit_shown(*sides["validation"], smoothing=chain.tracker.config)
        ece = {
            name: {
                "raw": binned_error(stated, correct),
                "shown": binned_error(shown.confidence(stated), correct),
                "hops": len(correct),
                "mean_confidence": float(stated.mean()),
                "right": float(correct.mean()),
            }
            for name, (stated, correct) in sides.items()
        }
        held_stated, held_correct = sides["held_out"]
        curves = [("the tracker's", held_stated, held_correct),
                  ("restated", shown.confidence(held_stated), held_correct)]  # fmt: skip
        panels.append((title, curves))
        path = shipped_fusion_path() if decision == "fused" else metadata_path(model)
        entry = json.loads(path.read_text()).get("calibration")
        if entry is None:
            raise StreamerError(f"{path}: no decision calibration; run `calibrate` first")
        entry["shown"] = {
            **shown.to_dict(),
            "fitted_on": f"{', '.join(f.name for f in mixes)}: {len(files['validation'])} "
            f"generated mixes, {len(sides['validation'][1])} hops showing a genre",
            "ece": {
                "bins": ECE_BINS,
                "held_out_folders": ", ".join(f.name for f in held_out),
                "held_out_mixes": len(files["held_out"]),
                "real_mixes": len(files.get("real", [])),
                **ece,
            },
        }
        write_calibration(path, entry)
        figures[decision] = entry["shown"]
    draw_reliability(
        panels,
        path_png=model.parent / SHOWN_PNG,
        title=f"the shown genre's confidence: {len(files['held_out'])} mixes of held-out families",
        axis="confidence shown",
    )
    section = shown_section(figures)
    for card in (model.parent / "README.md", shipped_fusion_path().with_suffix(".md")):
        if card.is_file():
            write_atomically(card, replace_section(card.read_text(), section).encode())
    return figures


def shown_section(figures: dict[str, Any]) -> str:
    """The model cards' section on what the display shows, from `run_calibrate_shown`."""
    rows = [
        f"| {title} | {name.replace('_', '-')} | {ece['hops']} | {_pct(ece['right'])} "
        f"| {ece['mean_confidence']:.2f} | {ece['raw']:.3f} | {ece['shown']:.3f} |"
        for decision, title in (("fused", "decision"), ("cnn", "CNN alone (--no-tagger)"))
        for name in ("validation", "held_out", "real")
        if name in figures[decision]["ece"]
        for ece in [figures[decision]["ece"][name]]
    ]
    fused, cnn = figures["fused"], figures["cnn"]
    return "\n".join(
        [
            SHOWN_HEADING,
            "",
            "What a display shows beside the genre, `update.confidence`, is the tracker's "
            "smoothed probability of the genre it shows, restated by a curve "
            f"(`calibration.shown`: {len(fused['knots'])} knots for the decision, "
            f'{len(cnn["knots"])} for the CNN alone), the isotonic regression of "the shown '
            f'genre is the one playing" on it over {SHOWN_BINS} quantile bins of the hops that '
            "show a genre. Fitted by "
            f"`streamer-train calibrate-shown` on {fused['fitted_on']} (the validation "
            "families above; `python -m training.mixes DIR --side validation`), with the "
            "tracker's default parameters, which it records: under other smoothing options "
            f"it does not apply. Measured on {fused['ece']['held_out_mixes']} generated mixes "
            f"of the held-out families ({fused['ece']['held_out_folders']}; `--side test`)"
            + real_mixes(fused["ece"])
            + f", expected calibration error in {ECE_BINS} bins (hops of one mix are alike: "
            "with a few dozen tracks, a few points of it are noise):",
            "",
            "| decision | mixes | hops shown | shown genre playing | mean smoothed "
            "| ECE smoothed | ECE restated |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"![{SHOWN_PNG}]({SHOWN_PNG})",
            "",
        ]
    )


SHOWN_HEADING = "## The shown genre's confidence"


def real_mixes(ece: dict[str, Any]) -> str:
    """The card's words for the real mixes the shown curve was measured on, if any."""
    if not ece.get("real_mixes"):
        return ""
    return (
        f" and on {ece['real_mixes']} mixes of the real development set's excerpts "
        "(`python -m training.mixes DIR --realset ...`; a shown genre is right when the "
        "excerpt expects it, and tracks of none of our genres are left out)"
    )


def write_calibration(path: Path, calibration: dict[str, Any]) -> None:
    """Set the ``"calibration"`` entry of a model's metadata or a fusion file, the rest kept
    as it is (the ONNX file's sha256 and the fusion's numbers do not change)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StreamerError(f"{path}: cannot read it ({error})") from None
    data["calibration"] = calibration
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())


CARD_HEADING = "## Calibrated confidence"


def card_section(figures: dict[str, Any]) -> str:
    """The model cards' calibration section (``README.md``, ``fusion.md``), from `figures`."""
    names = [n for n in ("validation", *CONDITIONS, "real") if n in figures["fused"]["ece"]]
    rows = [
        f"| {title} | {name} | {ece[name]['hops']} | {_pct(ece[name]['accuracy'])} "
        f"| {ece[name]['raw']:.3f} | {ece[name]['calibrated']:.3f} |"
        for decision, title in (
            ("fused", "decision (fusion.json)"),
            ("cnn", "CNN alone (genre.json)"),
        )
        for ece in [figures[decision]["ece"]]
        for name in names
    ]
    fused = Calibration.from_metadata(figures["fused"])
    real = (
        " and on the real development set's excerpts (a hop right when its top genre is one "
        "the excerpt expects; weak labels)"
        if "real" in names
        else ""
    )
    return "\n".join(
        [
            CARD_HEADING,
            "",
            "Each hop's decision is calibrated (`streamer/analysis/calibration.py`). The "
            f"decision (`fusion.json`), a mixture of the CNN and the tags' view: {describe(fused)}"
            ": a temperature, p ** (1 / T) renormalised (the smallest negative "
            'log-likelihood), then the isotonic regression of "the top genre is right" on '
            "the tempered top probability, which maps the top genre's probability and scales "
            "the others to share the rest. A temperature alone does not calibrate the mixture: "
            "it leaves it 0.11 off on the very hops it was fitted on. The CNN alone "
            f"(`genre.json`, `--no-tagger`): T = {figures['cnn']['temperature']:.3f}. Both were "
            f"fitted on {figures['fused']['fitted_on'].split(';')[0]}: new clips (another seed) "
            "of the 30 groove families the CNN's fit kept for validation (no epoch trained on "
            "them) and of four electronic families, rendered with training soundfonts "
            "(`streamer-train calibrate`). Clips of the families it trained on are right far "
            "more often than music it has not learnt (91 % of the CNN's hops against 73 %), "
            "and a map fitted on them is over-confident on anything new. The order of the "
            "genres, so every vote and segment, is unchanged. The tracker smooths the "
            "temperature's output (the curve would let a flickering decision move its "
            "filter); `streamer tag`'s JSON keeps each hop's calibrated decision.",
            "",
            "The validation side's families: "
            + (", ".join(figures["fused"].get("families", [])) or "not recorded")
            + ". Made by `streamer-train corpus OUT --groups FAMILIES --clips-per-genre 24 "
            "--seconds 15 --seed 2029` with the five training soundfonts (`--soundfont`, each "
            "but TimGM6mb), the electronic ones with `--genres electronic`, one manifest.",
            "",
            f"Expected calibration error ({ECE_BINS} equal-width bins of the top-1 probability, "
            "per hop; 0 is perfectly calibrated) on the validation hops, on the held-out split "
            f"({held_out_clips(figures)}, clean and through the room chain){real}:",
            "",
            "| decision | hops of | hops | right | ECE raw | ECE calibrated |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            "![reliability-clean.png](reliability-clean.png)",
            "![reliability-room.png](reliability-room.png)",
            "",
        ]
    )


def replace_section(card: str, section: str) -> str:
    """`card` with its section of the heading `section` starts with replaced by `section`,
    or `section` put before its limits (at the end without them)."""
    heading = section.split("\n", 1)[0]
    start = card.find(heading)
    if start >= 0:
        end = card.find("\n## ", start + len(heading))
        card = card[:start] + (card[end + 1 :] if end >= 0 else "")
    limits = card.find("## Limits")
    if limits < 0:
        return card.rstrip("\n") + "\n\n" + section
    return card[:limits] + section + "\n" + card[limits:]


def held_out_clips(figures: dict[str, Any]) -> str:
    every = figures["cnn"]["ece"]["held_out_every"]
    return "all its clips" if every == 1 else f"every {every}th of its clips"
