from __future__ import annotations

from matplotlib.axes import Axes

from pruning.models.variant import Variant
from pruning.reporting.criteria_report import build_criteria_report, write_plots
from pruning.reporting.plots import SpeedPoint, pareto, plot_pareto
from pruning.results.rows import Row, with_changes, with_fits
from pruning.search.criteria import CriterionResult


def _row(drop, ppl, ms):
    return Row(
        "base" if not drop else f"drop[{','.join(map(str, drop))}]",
        drop,
        4 - len(drop),
        ppl,
        (ppl * 0.9, ppl * 1.1),
        100,
        0.1,
        0.9,
        100,
        speed_ms=ms,
        speed_ratio=ms / 40.0,
        speed_ratio_ci95=(ms / 40.0 - 0.01, ms / 40.0 + 0.01),
    )


ROWS = with_changes(  # as the session passes them: speed changes from the paired ratios
    [
        _row((), 10.0, 40.0),
        _row((0,), 50.0, 30.0),
        _row((1,), 12.0, 30.5),
        _row((2,), 13.0, 29.0),
        _row((3,), 30.0, 31.0),
        _row((1, 2), 16.0, 21.0),
        _row((0, 1), 90.0, 20.5),
        _row((0, 2), 80.0, 20.0),
        _row((0, 3), 95.0, 22.0),
        _row((1, 3), 40.0, 21.5),
        _row((2, 3), 45.0, 22.5),
    ]
)
CRITERIA = [
    CriterionResult("a", (0.9, 0.1, 0.2, 0.5), {1: Variant((1,)), 2: Variant((1, 2))}, 0.5),
    CriterionResult("last", None, {1: Variant((2,)), 2: Variant((1, 2))}, 0.0),
]


def test_pareto_frontier_keeps_only_undominated_points():
    points = [SpeedPoint("a", 1.0, 5.0), SpeedPoint("b", 2.0, 4.0), SpeedPoint("c", 3.0, 6.0)]
    points.append(SpeedPoint("d", 4.0, 1.0))
    assert [p.name for p in pareto(points)] == ["a", "b", "d"]


def test_pareto_frontier_uses_fitted_times_so_noise_crowns_no_variant():
    # Same depth, same fitted time: the measured 95 vs 99 is noise; only perplexity decides.
    points = [
        SpeedPoint("noisy-fast", 95.0, 40.0, 90.0, 100.0, 97.0),
        SpeedPoint("good", 99.0, 35.0, 94.0, 104.0, 97.0),
    ]
    points.append(SpeedPoint("base", 100.0, 30.0, 100.0, 100.0, 100.0))
    assert [p.name for p in pareto(points)] == ["good", "base"]


def test_criteria_report_and_all_plots(tmp_path):
    report = build_criteria_report(ROWS, CRITERIA, 2)
    assert report.header[:3] == ["criterion", "spearman", "kendall"] and report.header[-1] == "seconds"
    assert [c[0] for c in report.cells] == ["a", "last"]
    assert report.assessments[0].regret == {1: 0.0, 2: 0.0}
    assert report.assessments[1].regret[1] > 0 and report.assessments[1].spearman is None
    assert report.assessments[0].scores == CRITERIA[0].scores and report.assessments[1].scores is None
    rows, fits = with_fits(ROWS)
    written = write_plots(tmp_path, rows, CRITERIA, 2, "tiny, corpus, 100 tokens", fits)
    names = {p.name for p in written}
    assert names == {
        "pareto.png",
        "pairs_heatmap.png",
        "criteria_vs_blocks.png",
        "criteria_scores.png",
        "latency_vs_blocks.png",
    }
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_pareto_plot_marks_block_and_sub_layer_variants_apart(tmp_path, monkeypatch):
    labels: list[str] = []
    original = Axes.errorbar

    def record(self, *args, **kwargs):
        labels.append(kwargs.get("label", ""))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", record)
    points = [
        SpeedPoint("base", 100.0, 30.0, 99.0, 101.0, 100.0),
        SpeedPoint("drop[3]", 96.0, 35.0, 94.0, 98.0, 96.5),
        SpeedPoint("drop[attn3]", 98.5, 31.0, 97.0, 100.0, None, "sub-layer"),
    ]
    assert plot_pareto(tmp_path / "p.png", points, "t", "time").is_file()
    assert labels == [
        "block variants (measured, 95% interval)",
        "sub-layer variants (measured, 95% interval)",
    ]
    # without a fitted time, attn3 stands at its interval's slow end (100%): not faster than base
    assert [p.name for p in pareto(points)] == ["drop[3]", "base"]
    assert points[2].x == 100.0 and SpeedPoint("u", 98.5, 31.0).x == 98.5
