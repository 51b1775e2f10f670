"""Calibrated confidence: the temperature's, the top-label curve's and the shown genre's
curve's arithmetic, their fits and the expected calibration error on made-up hops, a
reliability diagram drawn, and the shipped files' calibrations."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from streamer.analysis.calibration import Calibration, ShownCalibration
from streamer.analysis.fusion import GenreFusion, shipped_fusion_path
from streamer.analysis.model import GenreModel, shipped_model_path
from streamer.errors import StreamerError
from streamer.tracking import SmoothingConfig

calibrate = pytest.importorskip("training.calibrate")

HOPS = np.array([[0.7, 0.2, 0.1], [0.05, 0.9, 0.05], [0.4, 0.35, 0.25]])


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_temperature_one_is_the_decision_itself() -> None:
    assert np.allclose(Calibration().apply(HOPS), HOPS)
    assert np.allclose(Calibration.from_metadata(None).apply(HOPS[0]), HOPS[0])


@pytest.mark.parametrize("temperature", [0.5, 2.0, 7.0])
def test_a_temperature_rescales_the_log_probabilities(temperature: float) -> None:
    calibrated = Calibration(temperature).apply(HOPS)
    assert calibrated.shape == HOPS.shape
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert (np.argsort(calibrated, axis=1) == np.argsort(HOPS, axis=1)).all()  # order kept
    logs = np.log(calibrated)
    # p_cal ∝ p ** (1 / T): log-ratios between genres are divided by T
    assert np.allclose(logs[:, 0] - logs[:, 1], np.log(HOPS[:, 0] / HOPS[:, 1]) / temperature)
    one = Calibration(temperature).apply(HOPS[1])
    assert one.shape == (3,) and np.allclose(one, calibrated[1])
    flatter = calibrated.max(axis=1) < HOPS.max(axis=1)
    assert flatter.all() if temperature > 1 else not flatter.any()


def test_a_temperature_keeps_genres_the_decision_rules_out_and_tiny_ones_alive() -> None:
    calibrated = Calibration(3.0).apply(np.array([1.0, 0.0, 1e-200]))
    assert calibrated[1] == 0.0 and calibrated[2] > 0.0 and np.isfinite(calibrated).all()


@pytest.mark.parametrize("entry", [{"temperature": 0}, {"temperature": "warm"}, {}])
def test_a_calibration_without_a_positive_temperature_is_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="temperature"):
        Calibration.from_metadata(entry)


def test_the_fit_recovers_the_temperature_of_over_confident_hops() -> None:
    rng = np.random.default_rng(3)
    true = softmax(rng.normal(scale=1.5, size=(20000, 10)))  # what the genres really are
    truth = np.array([rng.choice(10, p=row) for row in true])
    over_confident = Calibration(1 / 2.5).apply(true)  # p ** 2.5: a network too sure
    fitted = calibrate.fit_temperature(over_confident, truth)
    assert fitted.temperature == pytest.approx(2.5, rel=0.05)
    before = calibrate.expected_calibration_error(over_confident, truth)
    after = calibrate.expected_calibration_error(fitted.apply(over_confident), truth)
    assert after < 0.02 < 0.1 < before


def test_the_expected_calibration_error_weighs_each_bin_by_its_hops() -> None:
    # six hops at 0.9 (four right), two at 0.6 (one right): |2/3 - 0.9| and |0.5 - 0.6|
    sure, unsure = [0.9, 0.1], [0.6, 0.4]
    probabilities = np.array([sure] * 6 + [unsure] * 2)
    truth = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    expected = (6 * (0.9 - 4 / 6) + 2 * (0.6 - 0.5)) / 8
    assert calibrate.expected_calibration_error(probabilities, truth) == pytest.approx(expected)
    confidence, accuracy, counts = calibrate.reliability(probabilities, truth)
    assert counts.tolist() == [0] * 9 + [2] + [0] * 3 + [6, 0]  # 0.9 -> bin 13 of 15
    assert accuracy[13] == pytest.approx(4 / 6) and confidence[9] == pytest.approx(0.6)
    # a certain hop falls in the last bin, not past it
    counts = calibrate.reliability(np.array([[1.0, 0.0]]), np.array([0]))[2]
    assert len(counts) == calibrate.ECE_BINS and counts[-1] == 1


def test_a_top_label_curve_maps_the_top_and_keeps_the_others_proportions() -> None:
    curve = Calibration(top_label=((0.3, 0.1), (0.5, 0.5), (0.9, 0.95)))
    calibrated = curve.apply(HOPS)
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated.argmax(axis=1) == HOPS.argmax(axis=1)).all()
    assert calibrated[0, 0] == pytest.approx(0.5 + 0.2 * 0.45 / 0.4)  # 0.7 between knots
    assert calibrated[1, 1] == pytest.approx(0.95)  # beyond the last knot: flat
    assert calibrated[0, 1] / calibrated[0, 2] == pytest.approx(2.0)
    # 0.4 maps to 0.3 by the curve, but 0.35 / (0.6 + 0.35) is the least that keeps it first
    assert calibrated[2, 0] == pytest.approx(0.35 / 0.95, abs=1e-8)
    assert calibrated[2, 0] > calibrated[2, 1]
    assert np.allclose(curve.apply(HOPS[2]), calibrated[2])
    assert np.allclose(curve.apply(np.array([1.0, 0.0])), [0.95, 0.05])


@pytest.mark.parametrize(
    "entry",
    [{"temperature": 1, "top_label": [[0.5, 0.9], [0.4, 0.95]]},
     {"temperature": 1, "top_label": [[0.4, 0.9], [0.5, 0.8]]},
     {"temperature": 1, "top_label": [[0.4, 0.9], [0.5, 1.2]]},
     {"temperature": 1, "top_label": [0.4, 0.5]}],
)  # fmt: skip
def test_a_malformed_curve_is_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"knots|top-label"):
        Calibration.from_metadata(entry)


def test_the_curve_calibrates_a_mixture_no_temperature_can() -> None:
    """Hops like the fused decision's: a timid top probability (0.2 to 0.5) that ranks how
    often it is right (20 % to all of them), which no power of it says; the curve does, on
    new hops."""
    rng = np.random.default_rng(3)

    def hops(n: int) -> tuple[np.ndarray, np.ndarray]:
        top = rng.uniform(0.2, 0.5, n)
        rest = rng.dirichlet(np.ones(4), n) * (1 - top)[:, None] * 0.999
        probabilities = np.concatenate([top[:, None], rest], axis=1)
        chance = 0.2 + 0.8 * (top - 0.2) / 0.3
        truth = np.where(rng.uniform(size=n) < chance, 0, 1 + rng.integers(0, 4, n))
        return probabilities, truth

    fit_on, measured = hops(8000), hops(8000)
    curve = calibrate.fit_top_label(*fit_on)
    temperature = calibrate.fit_temperature(*fit_on)
    assert curve.top_label and curve.temperature == temperature.temperature
    after_curve = calibrate.expected_calibration_error(curve.apply(measured[0]), measured[1])
    after_t = calibrate.expected_calibration_error(temperature.apply(measured[0]), measured[1])
    assert after_curve < 0.04 < 0.1 < after_t


def test_the_evidence_is_the_temperatures_output_without_the_curve() -> None:
    both = Calibration(0.5, ((0.3, 0.1), (0.9, 0.6)))
    assert np.allclose(both.evidence(HOPS), Calibration(0.5).apply(HOPS))
    assert not np.allclose(both.apply(HOPS), both.evidence(HOPS))


def test_hops_of_several_right_genres_count_as_right_for_any_of_them() -> None:
    probabilities = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    allowed = np.array([[True, True, False], [True, False, False]])
    assert calibrate.right(probabilities, allowed).tolist() == [True, False]
    assert calibrate.right(probabilities, np.array([1, 1])).tolist() == [False, True]
    assert calibrate.expected_calibration_error(probabilities, allowed) == pytest.approx(
        (abs(1 - 0.6) + abs(0 - 0.7)) / 2
    )


def test_a_reliability_diagram_is_drawn(tmp_path: Path) -> None:
    hops = calibrate.HopDecisions(("a", "b"), np.array([[0.9, 0.1], [0.3, 0.7]]), np.array([0, 0]))
    path = tmp_path / "reliability.png"
    calibrate.save_reliability_diagram(
        [("one", hops, Calibration(2.0)), ("two", hops, Calibration())], path_png=path, title="t"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_shipped_decisions_carry_their_calibrations() -> None:
    model, fusion = GenreModel(), GenreFusion.load(shipped_fusion_path())
    for calibration, file in (
        (model.calibration, shipped_model_path().with_suffix(".json")),
        (fusion.calibration, shipped_fusion_path()),
    ):
        entry = json.loads(file.read_text())["calibration"]
        assert calibration == Calibration.from_metadata(entry) != Calibration()
        assert entry["ece"]["clean"]["calibrated"] < 0.05 < entry["ece"]["clean"]["raw"]
        # the shown genre's curve was fitted for the tracker's defaults (refit it when
        # they change: `streamer-train calibrate-shown`), and helps on held-out mixes
        assert calibration.shown is not None and calibration.shown.smoothing == SmoothingConfig()
        held_out = entry["shown"]["ece"]["held_out"]
        assert held_out["shown"] < held_out["raw"]
    assert fusion.calibration.top_label and not model.calibration.top_label
    again = GenreFusion.load(shipped_fusion_path())
    assert again.sha256 == fusion.sha256
    assert fusion.sha256 != replace(fusion, calibration=Calibration()).sha256


def test_a_broken_calibration_stops_the_load_in_one_line(tmp_path: Path) -> None:
    onnx = Path(shutil.copy(shipped_model_path(), tmp_path / "genre.onnx"))
    metadata = json.loads(shipped_model_path().with_suffix(".json").read_text())
    metadata["calibration"] = {"temperature": -1}
    onnx.with_suffix(".json").write_text(json.dumps(metadata))
    with pytest.raises(StreamerError, match="invalid model metadata") as error:
        GenreModel(onnx)
    assert "\n" not in str(error.value)
    fusion = json.loads(shipped_fusion_path().read_text())
    fusion["calibration"] = {"temperature": float("nan")}
    (tmp_path / "fusion.json").write_text(json.dumps(fusion))
    with pytest.raises(StreamerError, match="invalid fusion file"):
        GenreFusion.load(tmp_path / "fusion.json")


def test_the_cards_calibration_section_is_replaced_not_repeated() -> None:
    card = "# card\n\ntext\n\n## Limits\n\n- one\n"
    new = calibrate.replace_section(card, f"{calibrate.CARD_HEADING}\n\nT = 2\n")
    assert new.index("T = 2") < new.index("## Limits") and new.startswith("# card\n\ntext\n")
    again = calibrate.replace_section(new, f"{calibrate.CARD_HEADING}\n\nT = 3\n")
    assert again == new.replace("T = 2", "T = 3")
    assert calibrate.replace_section("# card\n", "## Calibrated confidence\n").endswith(
        "# card\n\n## Calibrated confidence\n"
    )
    shown = calibrate.replace_section(again, f"{calibrate.SHOWN_HEADING}\n\nK = 5\n")
    assert shown.index("T = 3") < shown.index("K = 5") < shown.index("## Limits")
    assert calibrate.replace_section(shown, f"{calibrate.SHOWN_HEADING}\n\nK = 6\n") == (
        shown.replace("K = 5", "K = 6")
    )


@pytest.mark.parametrize(
    "calibration", [Calibration(1.7), Calibration(top_label=((0.2, 0.3), (0.4, 0.8)))]
)
def test_a_fusion_file_keeps_its_calibration(tmp_path: Path, calibration: Calibration) -> None:
    fusion = replace(GenreFusion.load(shipped_fusion_path()), calibration=calibration)
    (tmp_path / "fusion.json").write_text(json.dumps(fusion.to_dict()))
    assert GenreFusion.load(tmp_path / "fusion.json").calibration == calibration


SHOWN = ShownCalibration(((0.4, 0.3), (0.8, 0.5), (1.0, 0.7)), SmoothingConfig())


def test_the_shown_genres_probability_is_restated_and_the_others_share_the_rest() -> None:
    filtered = np.array([0.05, 0.9, 0.05, 0.0])
    restated = SHOWN.restate(filtered, genre=1)
    assert restated[1] == pytest.approx(0.6)  # 0.9: halfway between 0.5 and 0.7
    np.testing.assert_allclose(restated[[0, 2, 3]], [0.2, 0.2, 0.0])
    # the shown genre need not lead: a challenger may lead it while the display waits
    assert SHOWN.restate(np.array([0.6, 0.4]), genre=1).tolist() == pytest.approx([0.7, 0.3])
    # all the mass on the shown genre: the others share the rest evenly
    assert SHOWN.restate(np.array([1.0, 0.0, 0.0]), genre=0).tolist() == pytest.approx(
        [0.7, 0.15, 0.15]
    )
    with pytest.raises(ValueError, match="shown-genre curve"):
        ShownCalibration(((0.5, 0.9), (0.8, 0.2)), SmoothingConfig())


def test_the_shown_curve_travels_with_the_calibration_and_names_its_smoothing() -> None:
    calibration = Calibration(0.5, ((0.3, 0.2), (0.9, 0.8)), SHOWN)
    entry = json.loads(json.dumps(calibration.to_dict()))
    assert entry["shown"]["smoothing"] == SmoothingConfig().to_dict()
    assert Calibration.from_metadata(entry) == calibration
    other = SmoothingConfig(stay_probability=0.95)
    entry["shown"]["smoothing"] = other.to_dict()
    assert Calibration.from_metadata(entry).shown == replace(SHOWN, smoothing=other)
    del entry["shown"]["knots"]
    with pytest.raises(ValueError, match="knots"):
        Calibration.from_metadata(entry)


def test_the_shown_fit_makes_an_over_sure_display_honest() -> None:
    """A display that says 0.75 to 1.0 and is right half as often as it says."""
    rng = np.random.default_rng(0)
    stated = rng.uniform(0.75, 1.0, 5000)
    correct = rng.random(5000) < stated / 2
    shown = calibrate.fit_shown(stated, correct, smoothing=SmoothingConfig())
    assert calibrate.binned_error(stated, correct) > 0.4
    assert calibrate.binned_error(shown.confidence(stated), correct) < 0.03
    assert np.all(np.diff(shown.confidence(np.linspace(0, 1, 50))) >= 0)


def test_the_shown_fit_bins_every_hop_into_its_quantile_bins() -> None:
    """Ten bins of a hundred hops, each right more often than the last: ten knots, the
    last at the top bin's mean (the largest confidence is no bin of its own)."""
    stated = np.linspace(0.5, 1.0, 1000)
    index = np.arange(1000)
    correct = index % 100 < 10 * (index // 100) + 5
    knots = calibrate.fit_shown(stated, correct, smoothing=SmoothingConfig()).knots
    assert len(knots) == 10
    assert knots[-1] == pytest.approx((stated[900:].mean(), 0.95))
    one = calibrate.fit_shown(np.full(10, 0.8), index[:10] < 5, smoothing=SmoothingConfig())
    assert len(one.knots) == 1 and one.knots[0] == pytest.approx((0.8, 0.5))  # one bin


def test_playing_reads_the_genre_of_a_mixs_truth_at_each_time() -> None:
    from training.mixes import playing

    truth = {"segments": [
        {"start": 0.0, "end": 10.0, "state": "music", "genre": "jazz"},
        {"start": 10.0, "end": 14.0, "state": "not-music", "genre": None},
        {"start": 14.0, "end": 30.0, "state": "music", "genre": "jazz|classical"},
    ]}  # fmt: skip
    times = np.array([3.0, 9.99, 10.0, 14.0, 29.9, 30.0])
    both = {"jazz", "classical"}
    assert playing(truth, times) == [{"jazz"}, {"jazz"}, set(), both, both, set()]


def test_a_shown_genre_is_judged_over_silence_and_our_genres_only() -> None:
    from training.mixes import judged

    labels = ("classical", "jazz", "rock")
    assert judged(frozenset(), labels)  # speech, tones, silence: any genre shown is wrong
    assert judged(frozenset({"jazz", "classical"}), labels)
    assert not judged(frozenset({"other"}), labels)
    assert not judged(frozenset({"electronic"}), labels)  # real, but not the chain's


def test_the_cards_shown_section_tables_each_measured_side() -> None:
    side = {"raw": 0.2, "shown": 0.05, "hops": 100, "mean_confidence": 0.8, "right": 0.6}
    entry = {
        "knots": [[0.5, 0.4], [1.0, 0.8]],
        "fitted_on": "validation: 12 generated mixes, 100 hops showing a genre",
        "ece": {"bins": 15, "held_out_folders": "test", "held_out_mixes": 12,
                "validation": side, "held_out": side},
    }  # fmt: skip
    section = calibrate.shown_section({"fused": entry, "cnn": entry})
    assert section.startswith(calibrate.SHOWN_HEADING) and section.count("| held-out |") == 2
    assert "| real |" not in section and "real development set" not in section
    entry["ece"] |= {"real": side, "real_mixes": 11}
    section = calibrate.shown_section({"fused": entry, "cnn": entry})
    assert section.count("| real | 100 | 60.0 % | 0.80 | 0.200 | 0.050 |") == 2
    assert "11 mixes of the real development set" in section
