"""The override rule, checked per command: every named option and every `--set` key reaches the config, in the
order preset < --config file < --set < named option (`reasonlab.config.resolve_config`).

A command is stopped right after it saved its run's config.yaml (`Run.create`), or, for a command that writes
no run, right after it resolved its config; nothing trains. Used by the `test_*_cli_options.py` files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from reasonlab.runs import Run

# options that are not config keys of any command: how the config is built, and what happens to an existing run
NOT_CONFIG = {"--help", "--preset", "--config", "--set", "--resume", "--overwrite"}


class Stopped(Exception):
    """Raised where the command has its config (`config`: as saved in config.yaml, or as resolved)."""

    def __init__(self, config: dict[str, Any]):
        super().__init__("stopped after the config")
        self.config = config


@dataclass(frozen=True)
class Case:
    """One option: the words that give it, where its value lands in the config, that value, and the same value
    as `--set KEY=VALUE` (None: the option has no --set twin, e.g. a value built from two options)."""

    args: tuple[str, ...]
    path: str
    expected: Any
    set_text: str | None = ""

    def set_args(self) -> list[str]:
        return ["--set", self.set_text or f"{self.path}={as_set_value(self.expected)}"]


def as_set_value(value: Any) -> str:
    """A value as one `--set` word (YAML flow style: [4, 5], true, 0.3)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def stop_at_saved_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Run.create` saves config.yaml as usual, then stops the command with the saved mapping."""
    create = Run.create.__func__  # type: ignore[attr-defined]

    def create_then_stop(cls: type[Run], root: Any, name: str, config: Any = None, **options: Any) -> Run:
        run = create(cls, root, name, config, **options)
        run.close_trackers()  # a --report-to case starts real trackers: their writer threads end here
        raise Stopped(yaml.safe_load((Path(run.dir) / "config.yaml").read_text()))

    monkeypatch.setattr(Run, "create", classmethod(create_then_stop))


def stop_at_resolved_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """For commands that write no run: stop with the config `resolve_config` returned."""
    import reasonlab.config as config_module

    resolve = config_module.resolve_config

    def resolve_then_stop(*args: Any, **options: Any) -> Any:
        raise Stopped(resolve(*args, **options).model_dump(mode="json"))

    monkeypatch.setattr(config_module, "resolve_config", resolve_then_stop)


def config_of(app: typer.Typer, args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert isinstance(result.exception, Stopped), (result.output, repr(result.exception))
    return result.exception.config


def value_at(config: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        config = config[key]
    return config


def command_options(app: typer.Typer, command: str) -> list[set[str]]:
    """The names of each option of `command` (e.g. {'--labels', '--no-labels'}, {'--question', '-q'})."""
    click_command = typer.main.get_command(app)
    sub = click_command.commands[command] if hasattr(click_command, "commands") else click_command
    return [{*param.opts, *param.secondary_opts} for param in sub.params
            if getattr(param, "param_type_name", "") == "option"]


def check_every_option(app: typer.Typer, command: str, base: list[str], cases: list[Case],
                       not_config: set[str] = frozenset()) -> None:
    """Every option of `command` has a case; all named options together land where they should; so does each
    case's --set twin, with the named option left unset (the bug: a named option at None overwrote --set)."""
    skipped = NOT_CONFIG | set(not_config)
    options = [names for names in command_options(app, command) if not names & skipped]
    untested = [sorted(names) for names in options if not any(case.args[0] in names for case in cases)]
    unknown = [case.args for case in cases if not any(case.args[0] in names for names in options)]
    assert not untested and not unknown, f"options without a case: {untested}; cases of no option: {unknown}"
    named = config_of(app, [command, *base, *(word for case in cases for word in case.args)])
    for case in cases:
        assert value_at(named, case.path) == case.expected, (case.args, value_at(named, case.path))
    twins = [case for case in cases if case.set_text is not None]
    through_set = config_of(app, [command, *base, *(word for case in twins for word in case.set_args())])
    for case in twins:
        assert value_at(through_set, case.path) == case.expected, (case.set_args(), value_at(through_set, case.path))


def check_order(app: typer.Typer, command: str, base: list[str], tmp_path: Path, path: str,
                values: tuple[Any, Any, Any], option: list[str]) -> None:
    """preset < file < --set < named option, on one key: each later source wins over the earlier ones."""
    file_value, set_value, option_value = values
    layer: Any = file_value
    for key in reversed(path.split(".")):
        layer = {key: layer}
    config_file = tmp_path / f"{command}-order.yaml"
    config_file.write_text(yaml.safe_dump(layer))
    set_args = ["--set", f"{path}={as_set_value(set_value)}"]
    assert value_at(config_of(app, [command, *base, "--config", config_file]), path) == file_value
    assert value_at(config_of(app, [command, *base, "--config", config_file, *set_args]), path) == set_value
    assert value_at(config_of(app, [command, *base, "--config", config_file, *set_args, *option]),
                    path) == option_value


def root_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], system: str,
               args: list[Any]) -> str:
    """`reasonlab SYSTEM ARGS` through the root entry point (`reasonlab.cli.main`) in this process: it must exit 2
    with one line starting 'error:' and no traceback; returns that line."""
    import os
    import sys

    import reasonlab.cli as root

    monkeypatch.setattr(sys, "argv", ["reasonlab", system, *(str(arg) for arg in args)])
    monkeypatch.setattr(root, "_quiet_third_party", lambda: None)  # process-wide logging and warning settings
    monkeypatch.setenv("REASONLAB_QUIET", os.environ.get("REASONLAB_QUIET", "1"))  # restored after the test
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        root.main()
    captured = capsys.readouterr()
    output = (captured.out + captured.err).strip()
    assert exited.value.code == 2, output
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    assert output.startswith("error:"), output
    return output
