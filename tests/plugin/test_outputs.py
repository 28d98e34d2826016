"""What people look at: samples, github-action-benchmark history, and the HTML report in a browser."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# The custom format's example from github-action-benchmark's README ("Examples" of the
# customSmallerIsBetter tool): what the action reads, and what ``valid_entries`` must accept.
DOCUMENTED_EXAMPLE = [
    {"name": "My Custom Smaller Is Better Benchmark - CPU Load", "unit": "Percent", "value": 50},
    {
        "name": "My Custom Smaller Is Better Benchmark - Memory Used",
        "unit": "Megabytes",
        "value": 100,
        "range": "3",
        "extra": "Value for Tooltip: 25\nOptional Num #2: 100\nAnything Else!",
    },
]
REQUIRED = {"name": str, "unit": str, "value": (int, float)}
OPTIONAL = {"range": str, "extra": str}
CHROMIUM = "/usr/bin/chromium"


def valid_entries(data: object) -> list[str]:
    """Why ``data`` is not a list of github-action-benchmark custom entries (empty: it is)."""
    if not isinstance(data, list) or not data:
        return ["not a non-empty JSON list"]
    problems = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            problems.append(f"entry {i} is not an object")
            continue
        for key, kind in REQUIRED.items():
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                problems.append(f"entry {i}: {key!r} missing or not {kind}")
        for key in set(entry) - set(REQUIRED):
            if key not in OPTIONAL or not isinstance(entry[key], OPTIONAL[key]):
                problems.append(f"entry {i}: unknown or mistyped key {key!r}")
    names = [e.get("name") for e in data if isinstance(e, dict)]
    if len(set(names)) != len(names):
        problems.append("names repeat: the action would merge their points")
    return problems


def test_the_validator_accepts_the_documented_example_and_rejects_broken_entries():
    assert valid_entries(DOCUMENTED_EXAMPLE) == []
    assert valid_entries([{"name": "x", "unit": "ms"}])  # no value
    assert valid_entries([{"name": "x", "unit": "ms", "value": "3"}])  # a string value
    assert valid_entries([{"name": "x", "unit": "ms", "value": 1, "range": 3}])  # range must be text
    assert valid_entries([{"name": "x", "unit": "ms", "value": 1}] * 2)  # repeated names


@pytest.fixture
def outputs_run(suite, tmp_path):
    """One full run of the suite with samples, a report and the history files."""
    pytester, args, _ = suite
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("The history of the city begins\n\nIn the spring of that year\nUnused third line\n")
    history = tmp_path / "bench" / "history.json"
    run = [*args, "--prune-report", str(tmp_path / "rep"), "--prune-history-json", str(history)]
    result = pytester.runpytest(*run, "--prune-samples", "2", "--prune-samples-file", str(prompts))
    result.assert_outcomes(passed=15)
    return result, tmp_path / "rep", history


def test_samples_history_and_html_come_with_the_report(outputs_run):
    result, rep, history = outputs_run
    result.stdout.fnmatch_lines(["*samples: 2 prompt(s) x 5 variants, greedy through the KV cache*"])
    data = json.loads((rep / "results.json").read_text())
    samples = data["samples"]
    assert samples["prompts"] == ["The history of the city begins", "In the spring of that year"]
    assert set(samples["texts"]) == {r["id"] for r in data["rows"]}
    assert all(
        len(texts) == 2 and all(isinstance(t, str) for t in texts) for texts in samples["texts"].values()
    )
    md = (rep / "results.md").read_text()
    assert (
        "#### Samples (greedy, up to 32 new tokens)" in md and "Prompt 2: *In the spring of that year*" in md
    )
    smaller = json.loads(history.read_text())
    bigger = json.loads((history.parent / "history-bigger.json").read_text())
    assert valid_entries(smaller) == [] and valid_entries(bigger) == []
    by_name = {e["name"]: e for e in smaller}
    row = next(r for r in data["rows"] if r["id"] == "drop[1]")
    assert (
        by_name["drop[1] perplexity"]["value"] == row["ppl"]
        and by_name["drop[1] perplexity"]["unit"] == "ppl"
    )
    assert by_name["drop[1] prefill"]["value"] == row["speed_ms"] and "range" in by_name["drop[1] prefill"]
    assert by_name["drop[1] decode"]["unit"] == "ms/token" and by_name["base KL"]["value"] == 0.0
    assert {e["name"] for e in bigger} == {f"{r['id']} top-1 agreement" for r in data["rows"]}
    html = (rep / "results.html").read_text()
    assert "<script src" not in html and 'src="http' not in html and 'href="http' not in html
    assert html.count('<img alt="') == len(data["plots"]) and "data:image/png;base64," in html


def test_samples_file_problems_fail_at_start(suite, tmp_path):
    pytester, args, _ = suite
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    result = pytester.runpytest(*args, "--prune-samples-file", str(empty))
    result.stderr.fnmatch_lines([f"*--prune-samples-file: '{empty}' has 0 non-empty lines*"])
    result = pytester.runpytest(*args, "--prune-samples", "-1")
    result.stderr.fnmatch_lines(["*--prune-samples: invalid count '-1'; expected an integer >= 0 (0: off)*"])


def test_the_html_report_works_in_headless_chromium(outputs_run, tmp_path):
    """The page loads without console errors or requests, has one row per variant, sorts by a
    clicked column, and a screenshot of it is not blank. Skipped without Debian's Chromium,
    except in CI (``CI=true``), where ``make test`` installs it and a skip would hide a failure."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI ran without {CHROMIUM}; `make test` installs Debian's chromium")
        pytest.skip(f"no {CHROMIUM}: `make test` installs Debian's chromium (apt-get, as root)")
    from playwright import sync_api

    _, rep, _ = outputs_run
    rows = json.loads((rep / "results.json").read_text())["rows"]
    errors: list[str] = []
    requests: list[str] = []
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None
        )
        page.goto((rep / "results.html").as_uri())
        first = page.locator("#results tbody tr td:first-child").all_inner_texts()
        assert len(first) == len(rows)
        header = page.locator("#results th", has_text="perplexity (↓)")
        header.click()
        ascending = page.locator("#results tbody tr td:first-child").all_inner_texts()
        ppl = {(r["removed"] and ",".join(map(str, r["removed"]))) or "none": r["ppl"] for r in rows}
        assert ascending == sorted(first, key=lambda cell: ppl[cell]) and ascending != first
        header.click()
        assert page.locator("#results tbody tr td:first-child").all_inner_texts() == ascending[::-1]
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == [] and requests == []
    assert _not_blank(shot)


def _not_blank(png: Path) -> bool:
    """Whether the screenshot has more than one colour (matplotlib reads PNGs)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))
    return bool((pixels.reshape(-1, pixels.shape[-1]) != pixels.reshape(-1, pixels.shape[-1])[0]).any())
