"""Every figure table in the docs names the command that prints it, the machine it ran
on and the commit.

A figure table is a Markdown table with a measured value in a cell: a number with a
unit (dB, MB, s, %, GFLOP/s, ...), a ratio (``1.57x``) or a bare number (bounds such as
``>= 50 dB`` are targets, not figures). Its lead - the
text from the nearest heading above it down to the table - must hold

* a command: ``python benchmarks/NAME.py`` (the script must exist) or ``hermes-export
  SUBCOMMAND`` (the subcommand must exist), in code;
* a line ``Measured on <CPU>, ... commit `<sha>` `` naming the CPU (model or vendor) and
  the commit the figures were taken at (checked against the history where the clone
  has it).

Status tables say where figures are instead of carrying them.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "BENCHMARKS.md", "cpp/README.md", "hermes_deploy/weights/README.md")

_UNIT = r"(?:dB|MB|MiB|GB|KB|ms|s|%|GFLOP/s|MP/s|req/s|images/s|fps)"
_FIGURE = re.compile(
    rf"(?<![\w.\-])\d+(?:\.\d+)?\s?{_UNIT}(?![\w/])"  # 33.9 dB, 788 MB, 0.52 s
    r"|(?<![\w.\-])\d+\.\d+x(?!\w)"  # 1.57x
    r"|^[+\-]?\d[\d,]*(?:\.\d+)?(?:\s*/\s*[+\-]?\d[\d,.]*)*\s?[GMK]?$"  # 32.502, 234,614 / 214,357, 69.5 G
)
_HEADING = re.compile(r"^#{1,6} ")
_BENCH = re.compile(r"python3? (benchmarks/[\w.]+\.py)")
_CLI = re.compile(r"hermes-export ([a-z][a-z-]*)")
_MEASURED = re.compile(r"Measured on (?P<machine>.+?)\bcommit `(?P<sha>[0-9a-f]{7,40})`", re.S)
_CPU = re.compile(r"AMD|Intel|EPYC|Xeon|Ryzen|Core|ARM|Graviton|Apple")


@dataclass
class Table:
    doc: str
    line: int  # 1-based line of the table's first row
    lead: str  # the text from the nearest heading above down to the table
    cells: list[str]


def tables(text: str, doc: str = "doc") -> list[Table]:
    lines = text.splitlines()
    found: list[Table] = []
    heading, i, in_fence = 0, 0, False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and _HEADING.match(line):
            heading = i
        elif not in_fence and line.startswith("|"):
            start = i
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            rows = [r for r in lines[start:i] if not re.fullmatch(r"\|[\s|:\-]+\|?", r.strip())]
            cells = [c.strip().strip("*`").strip() for r in rows[1:] for c in r.strip().strip("|").split("|")]
            found.append(Table(doc, start + 1, "\n".join(lines[heading:start]), cells))
            continue
        i += 1
    return found


_BOUND = re.compile(r"(?:>=|<=|[<>\u2264\u2265])\s*\d[\d.]*x?")  # a target or a bound, not a figure


def is_figure_table(table: Table) -> bool:
    return any(_FIGURE.search(_BOUND.sub("", c.replace("**", ""))) for c in table.cells)


def cli_commands() -> set[str]:
    from hermes_deploy.cli.app import app

    names = set()
    for command in app.registered_commands:
        names.add(command.name or command.callback.__name__.replace("_", "-"))
    return names


def _known_commit(sha: str) -> bool | None:
    """True/False where git and the full history are here, None where they are not."""
    try:
        shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=30)
        if shallow.returncode != 0 or shallow.stdout.strip() != "false":
            return None
        res = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=ROOT,
                             capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.returncode == 0


def problems(table: Table, commands: set[str], root: Path = ROOT) -> list[str]:
    where = f"{table.doc}:{table.line}"
    out = []
    code = " ".join(re.findall(r"`([^`]+)`", table.lead) + [
        ln.strip() for ln in table.lead.splitlines() if ln.startswith("    ")])
    scripts = _BENCH.findall(code)
    subcommands = [c for c in _CLI.findall(code)]
    if not scripts and not subcommands:
        out.append(f"{where}: figure table with no command (python benchmarks/... or hermes-export ...) before it")
    out += [f"{where}: {s} does not exist" for s in scripts if not (root / s).is_file()]
    out += [f"{where}: hermes-export has no command {c!r}" for c in subcommands if c not in commands]
    measured = list(_MEASURED.finditer(table.lead))
    if not measured:
        out.append(f"{where}: figure table with no 'Measured on <CPU> ... commit `<sha>`' line before it")
    else:
        last = measured[-1]
        if not _CPU.search(last["machine"]):
            out.append(f"{where}: the 'Measured on' line names no CPU: {last['machine'].strip()!r}")
        if _known_commit(last["sha"]) is False:
            out.append(f"{where}: commit {last['sha']} is not in this repository's history")
    return out


@pytest.mark.parametrize("doc", DOCS)
def test_every_figure_table_names_its_command_machine_and_commit(doc):
    commands = cli_commands()
    text = (ROOT / doc).read_text()
    found = [p for t in tables(text, doc) if is_figure_table(t) for p in problems(t, commands)]
    assert not found, "\n".join(found)


PLANTED = """# Speed

    python benchmarks/bench_cpu.py --onnx d.onnx --threads 2

Measured on AMD EPYC (avx2, fma), 2 threads, at commit `{sha}`.

| backend | s/tile |
|---|---|
| onnxruntime | 0.518 |

## A table somebody pasted

| backend | s/tile |
|---|---|
| OpenVINO | 0.330 |

## Status

| piece | status |
|---|---|
| exporter | done |
"""


def test_the_check_finds_a_planted_table_without_command_or_machine():
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip() or "0000000"
    found = tables(PLANTED.format(sha=sha), "planted.md")
    assert [is_figure_table(t) for t in found] == [True, True, False]
    assert problems(found[0], cli_commands()) == []
    bad = problems(found[1], cli_commands())
    assert len(bad) == 2 and "no command" in bad[0] and "no 'Measured on" in bad[1]


def test_the_check_refuses_a_missing_script_and_an_unknown_subcommand():
    lead = "# X\n\n    python benchmarks/bench_nothing.py\n    hermes-export frobnicate\n\nMeasured on Intel Xeon, commit `abcdef1`."
    bad = problems(Table("planted.md", 9, lead, ["1.0 s"]), cli_commands())
    assert any("bench_nothing.py does not exist" in p for p in bad)
    assert any("no command 'frobnicate'" in p for p in bad)
