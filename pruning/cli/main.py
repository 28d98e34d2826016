"""``pruning compare OLD NEW`` and ``pruning show REPORT``: saved reports, no model run.

``compare`` prints the two runs side by side, applies the gates ``--benchmark-compare`` applies
(``pruning.results.gates``, with the same ``--prune-*`` thresholds) with OLD as the baseline,
and exits 0 when NEW passes, 1 on a regression, 2 when the runs cannot be compared (another
model, corpus or protocol: the reason is printed) or an input is unusable. Another machine or
scoring is said, not refused, as in the plugin.

``show`` prints a report's table and notes; with ``--out DIR`` it also writes the table files,
plots and ``results.html`` there again, with this version's rendering.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pruning.cli.reports import ReportError, SavedReport, load_report
from pruning.plugin.parsers import percent
from pruning.reporting.report import Outcome, write_report
from pruning.reporting.summary import comparison
from pruning.reporting.tables import rank_lines, render_text, table
from pruning.results.gates import Thresholds, Verdict, judge
from pruning.results.rows import with_fits
from pruning.results.runlog import RunLog

PASS, REGRESSION, UNUSABLE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    """The command's options; the thresholds are the plugin's, with its defaults."""
    top = argparse.ArgumentParser(prog="pruning", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare = commands.add_parser("compare", help="compare two saved reports and gate NEW against OLD")
    compare.add_argument("old", type=Path, metavar="OLD", help="the baseline: results.json or its folder")
    compare.add_argument("new", type=Path, metavar="NEW", help="the run judged: results.json or its folder")
    default = Thresholds()
    compare.add_argument(
        "--prune-ppl-fail",
        type=percent,
        metavar="PCT",
        default=default.ppl_fail_pct,
        help=f"fail when perplexity rises more than PCT%% over OLD (default: {default.ppl_fail_pct:g})",
    )
    compare.add_argument(
        "--prune-speedup-fail",
        type=percent,
        metavar="PCT",
        default=default.speedup_fail_pct,
        help="fail when a speedup interval lies wholly more than PCT%% below OLD's (default: 10)",
    )
    compare.add_argument(
        "--prune-max-ppl-increase",
        type=percent,
        metavar="PCT",
        default=None,
        help="fail any variant more than PCT%% above NEW's unpruned model (default: off)",
    )
    show = commands.add_parser("show", help="print a saved report's table; --out DIR renders its files again")
    show.add_argument("report", type=Path, metavar="REPORT", help="results.json or its folder")
    show.add_argument(
        "--out", type=Path, metavar="DIR", help="write results.{md,csv,json,html} and plots to DIR"
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        if args.command == "compare":
            t = Thresholds(args.prune_ppl_fail, args.prune_speedup_fail, args.prune_max_ppl_increase)
            return compare(load_report(args.old), load_report(args.new), t)
        return show(load_report(args.report), args.out)
    except ReportError as exc:
        print(f"pruning: {exc}", file=sys.stderr)
        return UNUSABLE


def compare(old: SavedReport, new: SavedReport, t: Thresholds) -> int:
    """Print the comparison and the gates' verdict; returns the exit status."""
    verdict = judge(
        new.rows, t, new.run_fingerprint, (old.fingerprint, old.rows), f"gates compared against {old.source}"
    )
    print(f"OLD {old.source}\nNEW {new.source}")
    if verdict.refused:
        print(
            f"pruning: REFUSED: the runs are not comparable; {new.source} differs from {old.source}:",
            file=sys.stderr,
        )
        for line in verdict.refused:
            print(f"  {line}", file=sys.stderr)
        return UNUSABLE
    print(render_text(*comparison(old.rows, new.rows)))
    for note in verdict.notes:
        if note:
            print(f"pruning: {note}")
    return _verdict(verdict)


def _verdict(verdict: Verdict) -> int:
    if verdict.failures:
        print(f"pruning: {len(verdict.failures)} regression gate(s) FAILED:", file=sys.stderr)
        for failure in verdict.failures:
            print(f"  {failure}", file=sys.stderr)
        return REGRESSION
    print("pruning: no regression: every gate passed")
    return PASS


def show(report: SavedReport, out: Path | None) -> int:
    """Print ``report``'s table and rank notes; with ``out``, write its files there."""
    sequential = all(len(r.variant.units) <= 1 for r in report.rows)
    fp = report.fingerprint
    print(f"{report.source}: {fp.get('model')} on {fp.get('corpus')}, plan {report.plan}")
    print(render_text(*table(report.rows, sequential)))
    for line in rank_lines(report.rows):
        print(line)
    if out is None:
        return PASS
    if out.resolve() == report.source.parent.resolve():
        raise ReportError(
            f"--out {str(out)!r} is the report's own folder; expected another folder (nothing is overwritten)"
        )
    out.mkdir(parents=True, exist_ok=True)
    rows, fits = with_fits(report.rows)
    note = f"re-rendered from {report.source}; gates not run"
    verdict = Verdict(Thresholds(), note, [], [], [])
    outcome = Outcome(
        rows, report.run_fingerprint, report.plan, fits, {}, RunLog(), None, verdict, samples=report.samples
    )
    for path in write_report(out, outcome):
        print(f"pruning: wrote {path}")
    return PASS
