"""Docs that cannot rot: the options reference, runnable snippets, parsing commands, live links.

- ``docs/options.md`` is generated from the plugin's option table and must equal it;
- every Python block in the README and the guides runs (real model specs replaced by tiny
  random ones of the same shape of API; block indices in the docs are valid for both);
- every shell command in them parses: pytest's own parser, with the plugin, reads its options
  (so an unknown option or a bad plan string fails), ``make`` targets exist, scripts exist;
- every relative link resolves;
- the README stays short and free of commit hashes and dates; each results page quotes its
  report's fingerprint and a reproduce command.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from zygote import Zygote

from pruning.plugin.reference import options_reference
from pruning.reporting.provenance import report_fingerprint_line

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs").glob("*.md"))
RESULTS = sorted((ROOT / "docs" / "results").glob("*/README.md"))
PAGES = [
    ROOT / "README.md",
    ROOT / "CHANGELOG.md",
    *GUIDES,
    ROOT / "docs" / "results" / "README.md",
    *RESULTS,
]
USER_PAGES = [ROOT / "README.md", *GUIDES]  # the pages that must not carry commits or dates

BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HASH_OR_DATE = re.compile(r"\b[0-9a-f]{7,40}\b|20[0-9]{2}-[0-9]{2}-[0-9]{2}")
# Real models in the docs, and the tiny random model each snippet runs on instead.
TINY = {"smollm2-135m": "random:tiny-llama", "gemma3-270m": "random:tiny-gemma3"}
# Commands a shell block may hold besides make, pytest and python (nothing to parse in them).
PLAIN_COMMANDS = {"cd", "cp", "export", "git", "gh", "lm_eval", "ls", "mkdir", "pip", "time"}


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def blocks(page: Path, language: str) -> Iterator[str]:
    """The code blocks of ``page`` in ``language``."""
    for lang, body in BLOCK.findall(page.read_text(encoding="utf-8")):
        if lang == language:
            yield body


def shell_commands(body: str) -> Iterator[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks left out."""
    for line in body.replace("\\\n", " ").splitlines():
        if line.strip() and not line.strip().startswith("#"):
            yield line.strip()


def pytest_args(command: str) -> list[str] | None:
    """What a ``pytest`` or ``make bench`` command hands pytest (None: neither runs pytest).

    Other commands are checked here: ``make`` targets exist, ``python`` runs a module that
    imports or a script that exists, anything else is a known plain command."""
    words = shlex.split(command, comments=True)
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value before the command
        words = words[1:]
    head, rest = words[0], words[1:]
    if head == "pytest":
        return rest
    if head == "make":
        targets = [w for w in rest if "=" not in w]
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        for target in targets:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), f"no make target {target!r}"
        bench = [w.partition("=")[2] for w in rest if w.startswith("BENCH_ARGS=")]
        return ["benchmarks", *shlex.split(" ".join(bench))] if "bench" in targets else None
    if head in ("python", "python3"):
        if rest[0] == "-m":
            assert importlib.util.find_spec(rest[1]) is not None, f"no module {rest[1]!r}"
        else:
            assert (ROOT / rest[0]).is_file(), f"no script {rest[0]!r}"
        return None
    assert head in PLAIN_COMMANDS, f"unknown command {head!r} (add it to PLAIN_COMMANDS if it is one)"
    return None


def _commands() -> list[tuple[str, str]]:
    return [(_id(page), c) for page in PAGES for body in blocks(page, "bash") for c in shell_commands(body)]


def _snippets() -> list[tuple[str, str]]:
    return [(_id(page), body) for page in [ROOT / "README.md", *GUIDES] for body in blocks(page, "python")]


def test_the_options_reference_is_generated_from_the_option_table() -> None:
    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    assert page == options_reference(), "docs/options.md is stale: run `make docs`"


@pytest.mark.parametrize(("page", "command"), _commands())
def test_every_shell_command_in_the_docs_parses(page: str, command: str, pytester: pytest.Pytester) -> None:
    args = pytest_args(command)
    if args is not None:
        pytester.parseconfig(*args)  # UsageError on an unknown option or a bad value (plan, number)


def test_a_broken_command_fails_to_parse(pytester: pytest.Pytester) -> None:
    with pytest.raises(pytest.UsageError, match="invalid unit list"):
        pytester.parseconfig(*pytest_args('pytest benchmarks/ --prune-plan "drop:1;;x"') or [])
    with pytest.raises(pytest.UsageError):
        pytester.parseconfig(*pytest_args("make bench BENCH_ARGS='--prune-plann sequential'") or [])
    with pytest.raises(AssertionError, match="no make target"):
        pytest_args("make benchmark")


def run_snippet(zygote: Zygote, code: str, folder: Path, data_dir: Path) -> tuple[int, str]:
    """Run ``code`` as ``python snippet.py`` in ``folder``, in a process forked by the zygote (it
    starts from the same imports each time, and nothing a snippet registers outlives it); its exit
    code and its output (stdout and stderr)."""
    script = folder / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PRUNING_DATA_DIR": str(data_dir)}
    with (folder / "snippet.out").open("w+", encoding="utf-8") as out:
        command = [sys.executable, str(script)]
        child = zygote.popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder)
        try:
            status = child.wait(600)
        except subprocess.TimeoutExpired:
            child.kill()
            raise AssertionError(f"the snippet ran past 600 s:\n{code}") from None
        out.seek(0)
        return status, out.read()


@pytest.mark.parametrize(("page", "code"), _snippets())
def test_every_python_snippet_in_the_docs_runs(
    page: str, code: str, tmp_path: Path, zygote: Zygote, data_dir: Path
) -> None:
    """Each block runs as a user's script would, in a fresh copy of an interpreter (a block that
    registers a criterion must not leak it into this process or another block), in a temporary
    folder (an export writes there)."""
    for real, tiny in TINY.items():
        code = code.replace(f'"{real}"', f'"{tiny}"')
    status, output = run_snippet(zygote, code, tmp_path, data_dir)
    assert status == 0, f"a python block of {page} failed:\n{code}\n{output[-3000:]}"


def test_a_broken_snippet_fails(tmp_path: Path, zygote: Zygote, data_dir: Path) -> None:
    with pytest.raises(AssertionError, match="failed"):
        test_every_python_snippet_in_the_docs_runs(
            "x.md", 'from pruning import load_model\nload_model("nope:x")', tmp_path, zygote, data_dir
        )
    registering = 'from pruning.search.criteria import CRITERIA\nCRITERIA.register("mine")(len)\nprint("ok")'
    assert run_snippet(zygote, registering, tmp_path, data_dir) == (0, "ok\n")
    assert run_snippet(zygote, registering, tmp_path, data_dir)[0] == 0  # the first left nothing behind
    assert run_snippet(zygote, "import sys\nsys.exit(3)", tmp_path, data_dir)[0] == 3


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.partition("#")[0]).resolve()
        assert path.exists(), f"{_id(page)} links to {target}, which does not exist"


@pytest.mark.parametrize("page", USER_PAGES, ids=_id)
def test_user_pages_name_no_commit_and_no_date(page: Path) -> None:
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if "sha256" not in line:
            assert not HASH_OR_DATE.search(line), f"{_id(page)}:{number}: {line}"


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_every_study_has_a_page_listed_in_the_results_index() -> None:
    index = (ROOT / "docs" / "results" / "README.md").read_text(encoding="utf-8")
    studies = sorted(p for p in (ROOT / "docs" / "results").iterdir() if p.is_dir())
    assert studies, "no study under docs/results"
    for study in studies:
        assert (study / "README.md").is_file(), f"{_id(study)} has no README.md"
        assert f"({study.name}/README.md)" in index, f"docs/results/README.md does not list {study.name}"


@pytest.mark.parametrize("page", RESULTS, ids=_id)
def test_a_results_page_quotes_its_fingerprint_and_a_reproduce_command(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "## Reproduce" in text and any(blocks(page, "bash")), f"{_id(page)} has no reproduce command"
    if (page.parent / "results.json").is_file():
        assert report_fingerprint_line(page.parent) in text, (
            f"{_id(page)} does not quote its results.json's fingerprint: "
            f"python -m pruning.reporting.provenance {_id(page.parent)}"
        )


def test_the_readme_table_is_the_published_default_run() -> None:
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / "scripts" / "readme_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.readme_table(ROOT / "docs" / "results" / "smollm2-sequential")
    assert table in (ROOT / "README.md").read_text(encoding="utf-8"), (
        "README.md's table is not docs/results/smollm2-sequential's: "
        "python scripts/readme_table.py docs/results/smollm2-sequential"
    )


def test_the_coverage_study_is_the_committed_script_s_on_the_committed_population() -> None:
    """``coverage.json``'s two headline numbers, the paired interval's and the perplexity
    interval's coverage over the default design's window sets, lie in 92-97%, are what the
    committed script computes from the committed population, and the page and the measurement
    guide quote them."""
    spec = importlib.util.spec_from_file_location("paired_coverage", ROOT / "scripts" / "paired_coverage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    study = ROOT / "docs" / "results" / "paired-coverage"
    data = json.loads((study / "coverage.json").read_text(encoding="utf-8"))
    assert data["method"] == "window_t" and data["draws"] >= 500 and data["size"] == 8
    pop, tokens = module.load(study / "population" / "results.json")
    headline = module.headline(pop, tokens, data["size"], data["draws"])
    assert headline == {k: data[k] for k in ("default_design_coverage", "ppl_ci_coverage")}
    assert headline["default_design_coverage"] == data["spread"]["window_t"]["pooled"]
    for value in headline.values():
        assert 0.92 <= value <= 0.97
        quoted = f"**{100 * value:.1f}%**"
        assert quoted in (study / "README.md").read_text(encoding="utf-8")
    assert f"**{100 * headline['default_design_coverage']:.1f}%**" in (
        ROOT / "docs" / "measurement.md"
    ).read_text(encoding="utf-8")
