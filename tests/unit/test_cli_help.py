"""Every command's --help is written for users: what it does, and examples that are valid command lines."""

from __future__ import annotations

import importlib
import shlex

import pytest

from engine.cli import COMMANDS, EXAMPLES, build_parser
from engine.cli import main as cli
from engine.commands.help_text import examples_of


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_code:
        cli([*argv, "--help"])
    assert exit_code.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_help_says_what_it_does_and_shows_its_examples(capsys, name) -> None:
    module = importlib.import_module(f"engine.commands.{name}")
    text = help_of(capsys, name)
    assert f"usage: fld-engine {name}" in text
    assert " ".join(module.DESCRIPTION.split()[:6]) in " ".join(text.split())
    examples = examples_of(module.EXAMPLES)
    assert len(examples) >= 1
    assert "\nexamples:\n" in text
    for example in examples:
        assert f"  {example}" in text
        assert example.startswith(f"fld-engine {name}")


def test_the_top_level_help_lists_every_command_with_examples(capsys) -> None:
    text = help_of(capsys)
    for name in COMMANDS:
        assert f"\n    {name} " in text
    assert "fld-engine run --input photos/ --output corpus/" in text
    assert "FLD_ENGINE_STATE" in text


@pytest.mark.parametrize("argv", [(), *[(name,) for name in COMMANDS], ("config", "show")])
def test_no_help_text_is_an_implementation_note(capsys, argv) -> None:
    text = help_of(capsys, *argv)
    assert "engine/commands" not in text and "register(" not in text and "``" not in text


def every_example() -> list[str]:
    modules = [importlib.import_module(f"engine.commands.{name}") for name in COMMANDS]
    return examples_of(EXAMPLES) + [e for module in modules for e in examples_of(module.EXAMPLES)]


@pytest.mark.parametrize("example", every_example())
def test_every_example_is_a_valid_command_line(example) -> None:
    words = shlex.split(example)
    assert words[0] == "fld-engine"
    args = build_parser().parse_args(words[1:])
    assert callable(args.func)
