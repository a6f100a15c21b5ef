"""The `reasonlab` command: user errors are one line and exit 2; info, embed and report work end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from reasonlab.runs import Run

# what the root callback (threads, quiet) sets in the process it runs in
ROOT_CALLBACK_ENV = ("REASONLAB_THREADS", "REASONLAB_THREADS_SOURCE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "REASONLAB_QUIET", "TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS", "TF_CPP_MIN_LOG_LEVEL",
                     "REASONLAB_REPORT_TO")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`reasonlab ARGS` in a fresh process, without the settings an in-process root callback may have left."""
    env = {key: value for key, value in os.environ.items() if key not in ROOT_CALLBACK_ENV}
    return subprocess.run([sys.executable, "-m", "reasonlab.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**env, "OMP_NUM_THREADS": "1"})


def help_env() -> dict[str, str | None]:
    """CliRunner env for an in-process `--help`: the root callback's settings are restored after the call."""
    import torch

    return {**{key: os.environ.get(key) for key in ROOT_CALLBACK_ENV},
            "REASONLAB_THREADS": str(torch.get_num_threads()), "COLUMNS": "400"}


def assert_one_line_user_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert output.startswith("error:") and fragment in output, output


def test_unknown_spec() -> None:
    assert_one_line_user_error(run_cli("generate", "--llm", "gpt9", "hi"), "unknown LLM spec 'gpt9'")


def test_missing_model_file() -> None:
    assert_one_line_user_error(run_cli("generate", "--llm", "hf:/nonexistent/model", "hi"), "does not exist")


def test_unreachable_server() -> None:
    result = run_cli("generate", "--llm", "openai:http://127.0.0.1:9/v1#m", "hi")
    assert_one_line_user_error(result, "cannot reach the server at http://127.0.0.1:9/v1")


def test_report_on_missing_and_empty_folders(tmp_path: Path) -> None:
    assert_one_line_user_error(run_cli("report", str(tmp_path / "nope")), "does not exist")
    assert_one_line_user_error(run_cli("report", str(tmp_path)), "no run directories")


def test_bad_yaml_config_is_named_with_its_line(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from reasonlab.config import load_config
    from reasonlab.errors import UserError

    class DemoConfig(BaseModel):
        steps: int = 10

    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 3\n  oops: [\n")
    with pytest.raises(UserError, match=r"bad.yaml is not valid YAML at line \d"):
        load_config(DemoConfig, bad)
    wrong_type = tmp_path / "wrong.yaml"
    wrong_type.write_text("steps: many\n")
    with pytest.raises(UserError, match="config field 'steps'"):
        load_config(DemoConfig, wrong_type)
    with pytest.raises(UserError, match="does not exist"):
        load_config(DemoConfig, tmp_path / "missing.yaml")
    assert load_config(DemoConfig, None, steps=4).steps == 4


def test_bad_yaml_through_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "generate.yaml"
    bad.write_text("llm: hf:embedded\n  max_tokens: [\n")
    assert_one_line_user_error(run_cli("generate", "--config", str(bad), "hi"), "is not valid YAML at line 2")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("max_tokens: -3\n")
    assert_one_line_user_error(run_cli("generate", "--config", str(wrong), "hi"), "config field 'max_tokens'")
    unknown_spec = tmp_path / "spec.yaml"
    unknown_spec.write_text("llm: gpt9\n")
    assert_one_line_user_error(run_cli("generate", "--config", str(unknown_spec), "hi"), "unknown LLM spec 'gpt9'")


def test_unknown_demo_name(tmp_path: Path) -> None:
    result = run_cli("demo", "--only", "no-such-system", "--out", str(tmp_path))
    assert_one_line_user_error(result, "no demo named no-such-system")


def test_report_command_writes_both_files(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "example", {"lr": 0.1})
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.write_summary({"accuracy": 0.75})
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "0.75" in (tmp_path / "report.md").read_text()
    assert "data:image/png;base64" in (tmp_path / "report.html").read_text()


def test_info_lists_backends_and_models() -> None:
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    for word in ("torch", "hf", "llamacpp", "openai", "embedded Gemma-3-270M", "embedded MiniLM",
                 "sandbox namespace", "sandbox mode auto"):
        assert word in result.stdout
    assert "ray" not in result.stdout


@pytest.mark.slow
def test_embed_prints_similarities() -> None:
    result = run_cli("embed", "A cat sits on the mat.", "A kitten rests on a rug.", "Markets fell.")
    assert result.returncode == 0, result.stderr
    assert "3 vectors of dimension 384" in result.stdout


@pytest.mark.slow
def test_generate_with_the_embedded_model(embedded_hf) -> None:
    result = run_cli("generate", "--llm", "hf:embedded", "--max-tokens", "10", "Q: What is the capital of France?\nA:")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


@pytest.mark.slow
def test_embedded_models_demo_writes_a_run(tmp_path: Path, embedded_hf) -> None:
    from reasonlab.cli import _embedded_models_demo

    run_dir = _embedded_models_demo(tmp_path, llm=embedded_hf)
    summary = Run.open(run_dir).summary()
    assert summary["completion_tokens"] > 0 and summary["tokens_per_s"] > 0
    assert summary["cosine_similar"] > summary["cosine_unrelated"]


def test_help_lists_every_system_without_importing_torch() -> None:
    """System packages export lazily, so `reasonlab --help` builds every sub-app without loading torch."""
    code = ("import sys; from typer.testing import CliRunner; from reasonlab import cli; cli._add_system_apps(); "
            "out = CliRunner().invoke(cli.app, ['--help'], env={'COLUMNS': '200'}).output; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules)); print(out)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, _, help_text = result.stdout.partition("\n")
    assert first == "[]"
    for system in ("ace", "ahn", "arcmemo", "delethink", "h1", "inoculation", "moloch", "trm", "webscale"):
        assert system in help_text


def test_lazy_exports_are_the_functions_even_after_importing_every_submodule() -> None:
    """No system module is named like a name it exports (docs/contributing.md), so importing the submodules
    first leaves every package attribute the exported object, with no import trick."""
    code = (
        "import importlib, types\n"
        "for system in ('ace', 'ahn', 'arcmemo', 'delethink', 'h1', 'inoculation', 'memagent', 'moloch', 'trm',\n"
        "               'webscale_rl'):\n"
        "    package = importlib.import_module('reasonlab.systems.' + system)\n"
        "    for module in package.EXPORTS:\n"
        "        importlib.import_module(f'reasonlab.systems.{system}.{module}')\n"
        "    for module, names in package.EXPORTS.items():\n"
        "        assert module not in names, (system, module)\n"
        "        source = importlib.import_module(f'reasonlab.systems.{system}.{module}')\n"
        "        for name in names:\n"
        "            value = getattr(package, name)\n"
        "            assert not isinstance(value, types.ModuleType) and value is getattr(source, name), (system, name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.parametrize("command", [
    ["trm", "experiment", "--preset", "quick"],
    ["delethink", "experiment", "--preset", "quick"],
    ["delethink", "control", "--preset", "quick"],
    ["h1", "experiment", "--preset", "quick"],
])
def test_resume_with_nothing_to_continue_is_one_line_and_writes_nothing(command: list[str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert_one_line_user_error(run_cli(*command, "--out", str(out), "--resume"), "to continue: drop --resume")
    assert not out.exists()


@pytest.mark.parametrize(("args", "fragment"), [
    (["demo", "trm"], "Got unexpected extra argument(s) (trm)"),
    (["--nope"], "No such option: --nope"),
    (["serve", "--port", "70000"], "Invalid value for '--port'"),
    (["trm", "train", "--mixer"], "Option '--mixer' requires an argument"),
])
def test_usage_errors_are_one_line_without_a_traceback(args: list[str], fragment: str) -> None:
    assert_one_line_user_error(run_cli(*args), fragment)


@pytest.mark.parametrize("args", [(), ("trm",), ("memagent",)], ids=["reasonlab", "reasonlab trm", "reasonlab memagent"])
def test_a_bare_command_is_one_line_naming_the_help_and_exits_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert_one_line_user_error(result, "Missing command")
    assert f"reasonlab{''.join(' ' + a for a in args)} --help" in result.stderr


def command_tree():
    """(argument path, click command) of every command under `reasonlab`, groups included."""
    import typer

    from reasonlab import cli

    cli._add_system_apps()
    found = []

    def walk(command, path: list[str]) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(cli.app), [])
    return found


def help_rows(output: str) -> dict[str, str]:
    """Option name -> the text of its row in rich's help panels (wrapped lines joined)."""
    rows: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        body = line.strip().strip("│").strip()
        match = re.match(r"^(?:\*\s+)?(--?[\w-]+)", body)
        if match:
            current = match.group(1)
            rows[current] = body
        elif current and body and not body.startswith(("─", "╭", "╰")):
            rows[current] += " " + body
        elif not body or body.startswith(("─", "╭", "╰")):
            current = None
    return rows


def test_every_option_of_every_command_shows_its_default() -> None:
    """A default written in the help, one typer shows, or the default preset's value for an option left at None;
    only plain flags, required options and --help show none."""
    from typer.testing import CliRunner

    from reasonlab import cli

    missing = []
    for path, command in command_tree():
        output = CliRunner().invoke(cli.app, [*path, "--help"], env=help_env()).output
        rows = help_rows(output)
        for param in command.params:
            if not hasattr(param, "opts") or param.param_type_name != "option" or param.name == "help":
                continue
            if param.required or (param.is_flag and not param.secondary_opts):
                continue
            row = rows.get(param.opts[0], "")
            if "[default: " not in row:
                missing.append(f"reasonlab {' '.join(path)} {param.opts[0]}: {row or 'no row'}")
    assert not missing, "\n".join(missing)


def test_the_default_preset_value_is_shown_for_an_option_left_at_none() -> None:
    from typer.testing import CliRunner

    from reasonlab import cli

    cli._add_system_apps()
    rows = help_rows(CliRunner().invoke(cli.app, ["trm", "train", "--help"], env=help_env()).output)
    assert "[default: attention (--preset default)]" in rows["--mixer"]
    assert "[default: 512 (--preset default)]" in rows["--hidden-size"]
    rows = help_rows(CliRunner().invoke(cli.app, ["generate", "--help"], env=help_env()).output)
    assert "[default: hf:embedded]" in rows["--llm"] and "[default: 48]" in rows["--max-tokens"]


def test_generate_options_and_config_file_reach_the_config(tmp_path, monkeypatch) -> None:
    """The override rule for the root `generate` (it writes no run: its resolved config is checked)."""
    from cli_options import Case, check_every_option, stop_at_resolved_config
    from reasonlab import cli

    stop_at_resolved_config(monkeypatch)
    cases = [
        Case(("--llm", "fake"), "llm", "fake", None), Case(("--max-tokens", "5"), "max_tokens", 5, None),
        Case(("--temperature", "0.7"), "temperature", 0.7, None), Case(("--seed", "3"), "seed", 3, None),
        Case(("--stop", "A", "--stop", "B"), "stop", ["A", "B"], None),
    ]
    root = typer.Typer(add_completion=False)  # generate alone, without the root callback (threads, quiet)
    root.command()(cli.generate)
    root.command("other")(lambda: None)  # two commands: typer keeps `generate` a sub-command
    check_every_option(root, "generate", ["hi"], cases)
    (tmp_path / "g.yaml").write_text("max_tokens: 7\ntemperature: 0.5\n")
    from cli_options import config_of

    resolved = config_of(root, ["generate", "hi", "--config", tmp_path / "g.yaml", "--max-tokens", "9"])
    assert (resolved["max_tokens"], resolved["temperature"], resolved["llm"]) == (9, 0.5, "hf:embedded")


@pytest.mark.parametrize(("args", "env", "fragment"), [
    (["--threads", "0", "info"], {}, "Invalid value for '--threads'"),
    (["--threads"], {}, "Option '--threads' requires an argument"),
    (["--verbose", "demo", "trm"], {}, "Got unexpected extra argument(s) (trm)"),
    (["info"], {"REASONLAB_THREADS": "many"}, "REASONLAB_THREADS='many' is not a positive integer"),
])
def test_root_option_errors_are_one_line(args: list[str], env: dict[str, str], fragment: str) -> None:
    result = subprocess.run([sys.executable, "-m", "reasonlab.cli", *args], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **env})
    assert_one_line_user_error(result, fragment)


def test_info_prints_the_thread_count_it_was_given() -> None:
    given = run_cli("--threads", "3", "info")
    assert given.returncode == 0, given.stderr
    assert re.search(r"threads\s+│?\s*3 \(", given.stdout), given.stdout
    env = {key: value for key, value in os.environ.items() if key not in ROOT_CALLBACK_ENV}
    from_env = subprocess.run([sys.executable, "-m", "reasonlab.cli", "info"], capture_output=True, text=True,
                              timeout=300, env={**env, "REASONLAB_THREADS": "2"})
    assert re.search(r"threads\s+│?\s*2 \(REASONLAB_THREADS", from_env.stdout), from_env.stdout
    assert re.search(r"threads\s+│?\s*3 \(--threads", given.stdout), given.stdout


def test_the_thread_default_and_the_users_omp_setting_are_named_as_sources(monkeypatch) -> None:
    from reasonlab.threads import ENV_VAR, configure_threads, default_threads, describe, explicit_threads

    for name in (ENV_VAR, "REASONLAB_THREADS_SOURCE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert describe().startswith(f"{default_threads()} (default: cores - 1")
    assert explicit_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own OpenMP setting is kept, not overwritten
    assert describe().startswith("3 (OMP_NUM_THREADS") and explicit_threads() == 3
    import torch

    before = torch.get_num_threads()
    try:
        assert configure_threads() == 3 and describe().startswith("3 (OMP_NUM_THREADS")
        assert configure_threads(2) == 2 and describe().startswith("2 (--threads") and explicit_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_configure_threads_sets_torch_and_the_environment(monkeypatch) -> None:
    import torch

    from reasonlab.threads import ENV_VAR, configure_threads, current_threads

    for name in (ENV_VAR, "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1 and current_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_llamacpp_uses_the_global_threads_and_prints_nothing(monkeypatch, capfd, embedded_gguf) -> None:
    """llama.cpp's threads are `current_threads()`; its loader, cache and C-log lines stay out unless --verbose."""
    from reasonlab.llm import SamplingParams
    from reasonlab.llm.llamacpp import LlamaCppLLM

    monkeypatch.setenv("REASONLAB_THREADS", "1")
    monkeypatch.setenv("REASONLAB_QUIET", "1")
    llm = LlamaCppLLM(embedded_gguf, n_ctx=256)
    assert llm.llama.n_threads == 1
    for _ in range(2):  # the second call hits the prefix cache ('Llama.generate: prefix-match hit' when verbose)
        llm.complete("The capital of France is", SamplingParams(max_tokens=2))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.slow
@pytest.mark.parametrize("args", [["generate", "--llm", "llamacpp:embedded", "--max-tokens", "2", "hi"],
                                  ["embed", "a cat", "a kitten"]])
def test_third_party_noise_is_kept_out_unless_verbose(args: list[str]) -> None:
    quiet = run_cli("--threads", "1", *args)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = run_cli("--threads", "1", "--verbose", *args)
    assert verbose.returncode == 0 and verbose.stderr.strip(), "--verbose shows the libraries' own lines"
