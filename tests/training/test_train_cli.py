"""`hermes-export train` as a user meets it: the README synopsis and the closing lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hermes_deploy.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"


def _train_synopsis() -> str:
    """The `hermes-export train` entry of README's command-line block, continuation lines included."""
    block = README.read_text().split("## Command line", 1)[1].split("```", 2)[1]
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("hermes-export train"))
    entry = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        entry.append(line)
    return " ".join(line.split("#", 1)[0] for line in entry)


def _train_options() -> dict[str, object]:
    command = typer.main.get_command(app).commands["train"]
    return {opt: param for param in command.params for opt in param.opts}


def test_readme_train_synopsis_states_the_cli_defaults():
    """Every `[--flag value]` in README's synopsis is the typer command's default, so the
    two cannot drift apart again (README said --steps 2200 while the default was 1200)."""
    synopsis = _train_synopsis()
    stated = re.findall(r"\[(--?[\w-]+) ([^\]\s|]+)\]", synopsis)
    assert stated, synopsis
    options = _train_options()
    wrong = []
    for flag, value in stated:
        assert flag in options, f"README's train synopsis names {flag}, which the command lacks"
        default = options[flag].default
        if default is None:  # an automatic default, shown as `auto`
            ok = value == "auto"
        else:
            ok = type(default)(value) == default
        if not ok:
            wrong.append(f"{flag}: README {value}, CLI {default}")
    assert not wrong, wrong
    # the router stage runs after the requested steps: the synopsis must say so
    assert "--router-steps" in dict(stated), synopsis


@pytest.mark.slow
def test_train_reports_each_stage_loss_and_no_nan(tmp_path):
    """The closing line compares like with like: stage 1's first and last loss, then the
    router's, each labelled; with validation off it says so instead of printing nan."""
    args = ["train", "--steps", "2", "--router-steps", "2", "--batch", "1", "--lr-patch", "8",
            "--val-every", "0", "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = result.output
    assert re.search(r"stage 1: 2 steps, loss \d+\.\d+ -> \d+\.\d+", summary), summary
    assert re.search(r"router: 2 steps, loss \d+\.\d+ -> \d+\.\d+", summary), summary
    assert "nan" not in summary.lower(), summary


def test_weights_recipe_commands_still_mean_what_they_did(tmp_path, monkeypatch):
    """The shipped model's recipe (hermes_deploy/weights/README.md) parses to the figures it
    was made with: 1200 stage-1 steps, then a 250-step router stage."""
    import shlex

    import hermes_deploy.training as training
    from hermes_deploy.training.train import TrainResult, resolve_router_steps

    recipe = (README.parent / "hermes_deploy" / "weights" / "README.md").read_text()
    commands = [shlex.split(line.strip())[1:] for line in recipe.splitlines()
                if line.strip().startswith("hermes-export train")]
    assert len(commands) == 2, commands
    seen = []
    nothing = TrainResult(checkpoint="-", steps=0, seconds=0.0, val_psnr=0.0, val_gain=0.0)
    monkeypatch.setattr(training, "train", lambda cfg: seen.append(cfg) or nothing)
    for args in commands:
        out = args.index("-o")
        args[out + 1] = str(tmp_path / args[out + 1])
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    stage1, stage2 = seen
    assert (stage1.steps, stage1.batch, stage1.lr_patch, stage1.lr, stage1.seed) == (1200, 16, 40, 1e-3, 0)
    assert stage2.steps == 0 and stage2.init and resolve_router_steps(stage2) == 250
