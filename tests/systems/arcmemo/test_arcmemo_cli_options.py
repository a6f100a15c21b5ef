"""`reasonlab arcmemo build-memory | eval | solve | experiment | show`: every option and --set key reaches the config
its work function is given (preset < --config < --set < named option), `--help` shows the preset's defaults, bad
input is a one-line error, and `show` prints both memory formats. Each work function is replaced by a stop that
raises `Stopped` with the config as JSON and, under "call", the other arguments; no model is loaded."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

import reasonlab.llm
from cli_options import Case, Stopped, check_every_option, check_order, config_of, root_error
from reasonlab.clihelp import show_defaults
from reasonlab.systems.arcmemo import experiment, pipeline
from reasonlab.systems.arcmemo.cli import app
from reasonlab.systems.arcmemo.config import ARM_NAMES, EXPERIMENT_PRESETS, PRESETS
from reasonlab.systems.arcmemo.memory import ConceptMemory, Lesson, LessonMemory, save_memory

LLM = "openai:http://server/v1#m"
EMBEDDED = PRESETS["embedded"]
RECORD = EXPERIMENT_PRESETS["record"]


@pytest.fixture(autouse=True)
def _stop_in_the_work_functions(monkeypatch):
    """run_build, run_eval and run_experiment raise Stopped with their config and arguments; no model loads."""

    def stop(config: Any, out: Any, name: str, resume: bool = False, overwrite: bool = False,
             llm: Any = None) -> None:
        assert llm is None, "the CLI handed a loaded model to the work function"
        raise Stopped({**config.model_dump(mode="json"),
                       "call": {"out": str(out), "name": name, "resume": resume, "overwrite": overwrite}})

    def run_experiment(config: Any, out: Any, name: str = "arclite", overwrite: bool = False,
                       resume: bool = False) -> None:
        raise Stopped({**config.model_dump(mode="json"),
                       "call": {"out": str(out), "name": name, "resume": resume, "overwrite": overwrite}})

    def no_model(*args: Any, **options: Any) -> None:
        raise AssertionError(f"a CLI option test loaded a model ({args})")

    monkeypatch.setattr(pipeline, "run_build", stop)
    monkeypatch.setattr(pipeline, "run_eval", stop)
    monkeypatch.setattr(pipeline, "_load_llm", no_model)
    monkeypatch.setattr(experiment, "run_experiment", run_experiment)
    monkeypatch.setattr(reasonlab.llm, "load_llm", no_model)
    # the root callback (used by `root_error`) sets the process's thread count; keep the test process's own
    monkeypatch.setattr("reasonlab.threads.configure_threads", lambda threads=None: threads)


def call(out: str, name: str, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    return {"out": out, "name": name, "resume": resume, "overwrite": overwrite}


# build-memory


def test_build_memory_every_option_and_set_key_reaches_the_config(tmp_path):
    cases = [
        Case(("--llm", LLM), "llm", LLM),
        Case(("--format", "oe"), "format", "oe"),
        Case(("--seeds", "74dd1130, a416b8f3"), "seeds", ["74dd1130", "a416b8f3"]),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "mem"), "call.name", "mem", None),
    ]
    base = ["--preset", "smoke"]
    check_every_option(app, "build-memory", base, cases)
    check_order(app, "build-memory", base, tmp_path, "llm", ("hf:a", "hf:b", LLM), ["--llm", LLM])


def test_build_memory_defaults_are_the_embedded_preset_and_presets_switch():
    assert config_of(app, ["build-memory"]) == {**EMBEDDED.model_dump(mode="json"),
                                                "call": call("runs/arcmemo", "memory")}
    smoke = config_of(app, ["build-memory", "--preset", "smoke"])
    assert smoke == {**PRESETS["smoke"].model_dump(mode="json"), "call": call("runs/arcmemo", "memory")}
    assert smoke["seeds"] == ["6150a2bd", "67a3c6ac"] and smoke["abstraction"]["max_tokens"] == 96
    assert config_of(app, ["build-memory", "--resume"])["call"]["resume"] is True
    assert config_of(app, ["build-memory", "--overwrite"])["call"]["overwrite"] is True


# eval


def test_eval_every_option_and_set_key_reaches_the_config(tmp_path):
    task_file, memory = tmp_path / "task.json", tmp_path / "memory.json"
    cases = [
        Case(("--llm", LLM), "llm", LLM),
        Case(("--format", "oe"), "format", "oe"),
        Case(("--split", "arc1-train"), "split", "arc1-train"),
        Case(("--task-file", str(task_file)), "task_file", str(task_file)),
        Case(("--limit", "3"), "limit", 3),
        Case(("--memory", str(memory)), "memory", str(memory)),
        Case(("--selection", "all"), "selection", "all"),
        Case(("--top-k", "2"), "top_k", 2),
        Case(("--passes", "4"), "max_passes", 4),
        Case(("--batch-size", "3"), "batch_size", 3),
        Case(("--frozen",), "continual", False),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "asked"), "call.name", "asked", None),
    ]
    base = ["--preset", "smoke"]
    check_every_option(app, "eval", base, cases)
    check_order(app, "eval", base, tmp_path, "max_passes", (2, 3, 4), ["--passes", "4"])
    check_order(app, "eval", base, tmp_path, "continual", (False, True, False), ["--frozen"])


def test_eval_defaults_are_the_embedded_preset_and_set_reaches_nested_fields():
    assert config_of(app, ["eval"]) == {**EMBEDDED.model_dump(mode="json"), "call": call("runs/arcmemo", "eval")}
    paper = config_of(app, ["eval", "--preset", "paper"])
    assert (paper["limit"], paper["solving"]["max_tokens"], paper["abstraction"]["temperature"]) == (None, 32768, 0.3)
    nested = config_of(app, ["eval", "--set", "solving.max_tokens=512"])
    assert nested["solving"] == {**EMBEDDED.solving.model_dump(mode="json"), "max_tokens": 512}
    assert config_of(app, ["eval", "--continual"])["continual"] is True
    assert config_of(app, ["eval", "--resume"])["call"] == call("runs/arcmemo", "eval", resume=True)


# solve


def test_solve_every_option_and_set_key_reaches_the_config(tmp_path):
    memory = tmp_path / "memory.json"
    cases = [
        Case(("--llm", LLM), "llm", LLM),
        Case(("--format", "oe"), "format", "oe"),
        Case(("--split", "arc1-train"), "split", "arc1-train", None),  # its --set twin: see the xfail below
        Case(("--memory", str(memory)), "memory", str(memory)),
        Case(("--selection", "none"), "selection", "none"),
        Case(("--passes", "1"), "max_passes", 1),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "asked"), "call.name", "asked", None),
    ]
    check_every_option(app, "solve", ["00576224"], cases)
    check_order(app, "solve", ["00576224"], tmp_path, "max_passes", (2, 3, 1), ["--passes", "1"])


def test_solve_takes_task_ids_or_a_json_file_and_never_writes_back(tmp_path):
    by_id = config_of(app, ["solve", "00576224", "009d5c81"])
    assert (by_id["task_ids"], by_id["task_file"], by_id["split"]) == (["00576224", "009d5c81"], None, "arc1-eval")
    assert by_id["continual"] is False and by_id["call"] == call("runs/arcmemo", "solve", overwrite=True)
    assert config_of(app, ["solve", "00576224", "--set", "continual=true"])["continual"] is False
    assert config_of(app, ["solve", "00576224", "--keep"])["call"]["overwrite"] is False
    task_file = str(tmp_path / "mine.json")
    by_file = config_of(app, ["solve", task_file])
    assert (by_file["task_file"], by_file["task_ids"]) == (task_file, [])


def test_solve_with_ids_and_files_together_is_a_one_line_error(monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "arcmemo", ["solve", "00576224", "mine.json"])
    assert "not both" in line


def test_solve_set_split_is_not_undone_by_the_unset_split_option():
    assert config_of(app, ["solve", "00576224", "--set", "split=arc1-train"])["split"] == "arc1-train"


def test_solve_solves_every_task_id_given():
    ids = [f"{i:08x}" for i in range(7)]
    assert config_of(app, ["solve", *ids])["limit"] is None


def test_solve_with_two_json_files_is_a_one_line_error(monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "arcmemo", ["solve", "a.json", "b.json"])
    assert "b.json" in line


def test_solve_reads_a_folder_of_task_files(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    assert config_of(app, ["solve", str(folder)])["task_file"] == str(folder)


# experiment


def test_experiment_every_option_and_set_key_reaches_the_config(tmp_path):
    cases = [
        Case(("--arms", "none, concept"), "arms", ["none", "concept"]),
        Case(("--seed", "4", "--seed", "5"), "seeds", [4, 5]),
        Case(("--seed-tasks", "12"), "seed_tasks", 12),
        Case(("--eval-tasks", "7"), "eval_tasks", 7),
        Case(("--top-k", "3"), "top_k", 3),
        Case(("--jobs", "2"), "jobs", 2),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "asked"), "call.name", "asked", None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--preset", "quick"]
    check_every_option(app, "experiment", base, cases)
    check_order(app, "experiment", base, tmp_path, "top_k", (2, 3, 5), ["--top-k", "5"])


def test_experiment_defaults_are_the_record_preset_and_its_name():
    assert config_of(app, ["experiment"]) == {**RECORD.model_dump(mode="json"),
                                              "call": call("runs/arcmemo", "arclite-record")}
    quick = config_of(app, ["experiment", "--preset", "quick"])
    assert quick["call"]["name"] == "arclite-quick" and quick["arms"] == ["none", "instance", "concept"]
    assert config_of(app, ["experiment", "--resume"])["call"]["resume"] is True
    assert config_of(app, ["experiment", "--set", "budgets=[10, 30]", "--set", "headline_budget=30"])[
        "budgets"] == [10, 30]


def test_experiment_unknown_arm_and_bad_budgets_are_one_line_errors(monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "arcmemo", ["experiment", "--arms", "none,magic"])
    assert "'magic'" in line and all(arm in line for arm in ARM_NAMES), line
    line = root_error(monkeypatch, capsys, "arcmemo", ["experiment", "--set", "budgets=[10, 30]"])
    assert "headline_budget" in line and "[10, 30]" in line
    line = root_error(monkeypatch, capsys, "arcmemo", ["experiment", "--arms", " , "])
    assert "--arms" in line


# bad input


@pytest.mark.parametrize("command", ["build-memory", "eval", "solve 00576224", "experiment"])
def test_an_unknown_preset_is_a_one_line_error_listing_them(command, monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "arcmemo", [*command.split(), "--preset", "giant"])
    names = EXPERIMENT_PRESETS if command == "experiment" else PRESETS
    assert "--preset 'giant' is unknown" in line and all(name in line for name in names), line


@pytest.mark.parametrize(("args", "words"), [
    (["eval", "--selection", "magic"], ["selection", "'llm'"]),
    (["eval", "--format", "yaml"], ["format", "'ps'"]),
    (["eval", "--format", "oe", "--selection", "embedding"], ["format=ps"]),
    (["eval", "--set", "top_kk=3"], ["top_kk", "did you mean top_k"]),
    (["build-memory", "--seeds", " , "], ["--seeds"]),
    (["eval", "--limit", "0"], ["limit"]),
])
def test_bad_options_are_one_line_errors_naming_them(args, words, monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "arcmemo", args)
    assert all(word in line for word in words), line


def test_an_unknown_split_is_refused_when_the_config_is_resolved(monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "arcmemo", ["eval", "--split", "arc9-eval"])
    assert "arc9-eval" in line and "arc1-eval-100" in line


# show


def concept_memory() -> ConceptMemory:
    memory = ConceptMemory()
    mirror = {"concept": "mirror rows", "kind": "routine", "routine_subtype": "grid manipulation",
              "description": "reverse each row", "cues": ["rows read backwards"],
              "parameters": [{"name": "mapping", "typing": "ColorMap := dict[int, int]"}]}
    memory.write_concept("p1", mirror)
    memory.write_concept("p2", {"concept": "mirror rows", "cues": ["same shape"]})
    memory.write_concept("p3", {"concept": "blue blob", "kind": "structure", "description": "a blue shape"})
    return memory


def show(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["show", *(str(arg) for arg in args)])
    assert result.exit_code == 0, (result.output, repr(result.exception))
    return result.output


def test_show_prints_a_ps_memory_as_the_llm_sees_it(tmp_path):
    memory, path = concept_memory(), tmp_path / "ps.json"
    save_memory(memory, path)
    output = show([path])
    assert output.startswith(memory.render() + "\n")
    assert "## types\n- ColorMap := dict[int, int]" in output and "- concept: mirror rows" in output
    assert "lower usage concepts: [blue blob]" in output and "cues:" not in output
    assert "'concepts': 2" in output and "'custom_types': 1" in output
    selected = show([path, "--selected", "blue blob"])
    assert selected.startswith(memory.render(selected=["blue blob"]) + "\n")
    assert "other concepts: [mirror rows]" in selected
    everything = show([path, "--usage-threshold", "1", "--cues"])
    assert everything.startswith(memory.render(usage_threshold=1, show_cues=True) + "\n")
    assert "- concept: blue blob" in everything and "    - rows read backwards\n    - same shape" in everything


def test_show_prints_an_oe_memory_as_numbered_lessons(tmp_path):
    memory = LessonMemory(lessons=[Lesson(situation="rows reversed", suggestion="mirror", source="p1"),
                                   Lesson(situation="blue becomes red", suggestion="recolor", source="p2")])
    path = tmp_path / "oe.json"
    save_memory(memory, path)
    output = show([path])
    assert output.startswith(memory.render_numbered() + "\n")
    assert "lesson 2.\n  situation: blue becomes red\n  suggestion: recolor" in output
    assert "'lessons': 2" in output


@pytest.mark.parametrize(("text", "words"), [
    ('{"concepts": {}}', ["not an arcmemo memory"]),
    ("{not json", ["not valid JSON"]),
    (None, ["no such memory file"]),
])
def test_show_of_a_file_that_is_no_memory_is_a_one_line_error(tmp_path, monkeypatch, capsys, text, words):
    path = tmp_path / "memory.json"
    if text is not None:
        path.write_text(text)
    line = root_error(monkeypatch, capsys, "arcmemo", ["show", path])
    assert str(path) in line and all(word in line for word in words), line


# --help


def help_row(command: str, option: str) -> str:
    """The text of `option`'s row in `reasonlab arcmemo COMMAND --help` (drawn wide: one line per row)."""
    show_defaults(app)  # what the root CLI does to every sub-app
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = [line.strip(" │") for line in result.output.splitlines()]
    found = [row for row in rows if re.match(rf"^(\*\s+)?{re.escape(option)}\s", row)]
    assert len(found) == 1, (option, result.output)
    return found[0]


def in_embedded(value: Any) -> str:
    return f"{value} (--preset embedded)"


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("build-memory", "--preset", "embedded"),
        ("build-memory", "--llm", in_embedded(EMBEDDED.llm)),
        ("build-memory", "--format", in_embedded(EMBEDDED.format)),
        ("build-memory", "--seeds", in_embedded(", ".join(EMBEDDED.seeds) or "none")),
        ("build-memory", "--name", "memory"),
        ("build-memory", "--out", "runs/arcmemo"),
        ("eval", "--split", in_embedded(EMBEDDED.split)),
        ("eval", "--limit", in_embedded(EMBEDDED.limit)),
        ("eval", "--selection", in_embedded(EMBEDDED.selection)),
        ("eval", "--top-k", in_embedded(EMBEDDED.top_k)),
        ("eval", "--passes", in_embedded(EMBEDDED.max_passes)),
        ("eval", "--batch-size", in_embedded(EMBEDDED.batch_size)),
        ("eval", "--continual", in_embedded("--continual" if EMBEDDED.continual else "--frozen")),
        ("eval", "--task-file", "none"),
        ("eval", "--memory", "none"),
        ("eval", "--config", "none"),
        ("solve", "--split", "arc1-eval"),
        ("solve", "--selection", in_embedded(EMBEDDED.selection)),
        ("solve", "--passes", in_embedded(EMBEDDED.max_passes)),
        ("solve", "--overwrite", "overwrite"),
        ("experiment", "--preset", "record"),
        ("experiment", "--arms", f"{', '.join(RECORD.arms)} (--preset record)"),
        ("experiment", "--seed", f"{', '.join(map(str, RECORD.seeds))} (--preset record)"),
        ("experiment", "--seed-tasks", f"{RECORD.seed_tasks} (--preset record)"),
        ("experiment", "--eval-tasks", f"{RECORD.eval_tasks} (--preset record)"),
        ("experiment", "--top-k", f"{RECORD.top_k} (--preset record)"),
        ("experiment", "--jobs", f"{RECORD.jobs} (--preset record)"),
        ("experiment", "--name", "arclite-<preset>"),
        ("show", "--usage-threshold", "2"),
        ("show", "--selected", "none"),
    ],
)
def test_help_shows_the_presets_defaults(command, option, default):
    assert f"[default: {default}]" in help_row(command, option)
