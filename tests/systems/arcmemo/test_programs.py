"""ArcMemo's LLM programs with scripted replies (parse, retry, failure values, filtering, prompts that never
show a test output, schemas xgrammar enforces) and once for real on a tiny random transformers model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from reasonlab.llm import ScriptedLLM, load_llm
from reasonlab.llm.base import SamplingParams
from reasonlab.llm.constrained import check_constraint, grammar_of
from reasonlab.llm.program import ProgramSettings
from reasonlab.systems.arcmemo import programs, prompts
from reasonlab.systems.arcmemo.memory import ConceptMemory, Lesson, LessonMemory
from reasonlab.systems.arcmemo.programs import (
    SOLVE_REGEX,
    Selection,
    abstract_concepts,
    extract_lessons,
    name_reuse_rate,
    parse_code,
    select_by_embedding,
    select_concepts,
    select_lessons,
    solve,
    summarize_solution,
    write_solution_prompt,
)
from reasonlab.systems.arcmemo.tasks import Attempt, task_from_arrays

SETTINGS = ProgramSettings(retries=2, max_tokens=4096)  # ScriptedLLM cuts replies at max_tokens characters
# the test output's only row: no train grid holds this sequence, so it can only leak from the test output
TEST_OUTPUT_ROW = [7, 3, 9, 1, 8, 2, 6]
LEAK_MARKERS = ("7, 3, 9, 1, 8, 2, 6", "7 3 9 1 8 2 6", "7391826", "[7,3,9,1,8,2,6]")
CODE = "def transform(input_grid):\n    return input_grid[:, ::-1]\n"


def task():
    """Mirror left-right; the test output row is the leak marker."""
    train = [([[1, 0, 0], [2, 0, 0]], [[0, 0, 1], [0, 0, 2]]), ([[4, 5]], [[5, 4]])]
    return task_from_arrays("t1", train, [([TEST_OUTPUT_ROW[::-1]], [TEST_OUTPUT_ROW])])


def concept_memory() -> ConceptMemory:
    memory = ConceptMemory()
    for name in ("mirror grid", "color mapping", "crop to object"):
        memory.write_concept("seed", {"concept": name, "kind": "routine", "description": f"{name} described",
                                      "routine_subtype": "grid manipulation"})
    return memory


def assert_no_leak(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in text


def accepts(params: SamplingParams, text: str) -> bool:
    """Whether the grammar constrained decoding enforces for `params` accepts `text` whole (no model)."""
    import xgrammar as xgr

    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo([]), cache_enabled=False)
    compiled = compiler.compile_grammar(grammar_of(params))
    matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
    return matcher.accept_string(text) and matcher.is_terminated()


def schema_accepts(schema: dict, value: dict) -> bool:
    return accepts(SamplingParams(json_schema=schema), json.dumps(value, sort_keys=True))


def test_summarize_parses_numbers_the_steps_and_retries_a_malformed_reply():
    good = json.dumps({"summary": " flip  the grid ", "pseudocode": ["mirror rows", "", "done"]})
    llm = ScriptedLLM(["not json", good])
    stats: dict[str, int] = {}
    outcome = summarize_solution(llm, CODE, SETTINGS, stats=stats)
    assert outcome.ok and outcome.value.summary == "flip the grid"
    assert outcome.value.pseudocode == "1. mirror rows\n2. done"
    assert len(outcome.raw) == 2 and stats == {"calls": 1, "tries": 2, "failures": 0}
    assert CODE.strip() in llm.prompts[0] and llm.prompts[0].endswith("JSON: ")


def test_summarize_failure_is_a_value_after_every_retry():
    empty = json.dumps({"summary": "", "pseudocode": ["x"]})
    stats: dict[str, int] = {}
    outcome = summarize_solution(ScriptedLLM(["{", "[1]", empty]), CODE, SETTINGS, stats=stats)
    assert outcome.value is None and "empty" in outcome.error and len(outcome.raw) == 3
    assert stats == {"calls": 1, "tries": 3, "failures": 1}


def test_abstract_concepts_sees_the_memory_drops_empty_fields_and_counts_reuse():
    memory = concept_memory()
    reply = {"concepts": [
        {"concept": "mirror grid", "kind": "routine", "routine_subtype": "", "output_typing": "",
         "parameters": [{"name": "axis", "typing": "", "description": "which way"}], "description": "",
         "cues": ["rows reversed", " "], "implementation": []},
        {"concept": "tile pattern", "kind": "structure", "routine_subtype": "", "output_typing": "grid",
         "parameters": [], "description": "a repeated block", "cues": [], "implementation": ["np.tile"]},
        {"concept": "  ", "kind": "routine", "routine_subtype": "", "output_typing": "", "parameters": [],
         "description": "nameless", "cues": [], "implementation": []},
    ]}
    llm = ScriptedLLM([json.dumps(reply)])
    stats: dict[str, int] = {}
    outcome = abstract_concepts(llm, memory, "p9", "flip it", "1. mirror", SETTINGS, stats=stats)
    assert outcome.value == [
        {"concept": "mirror grid", "kind": "routine", "cues": ["rows reversed"],
         "parameters": [{"name": "axis", "description": "which way"}]},
        {"concept": "tile pattern", "kind": "structure", "output_typing": "grid",
         "description": "a repeated block", "implementation": ["np.tile"]},
    ]
    assert stats["concepts"] == 2 and stats["reused"] == 1
    assert name_reuse_rate(outcome.value, memory) == 0.5
    prompt = llm.prompts[0]
    assert memory.render() in prompt and "Summary: flip it\nPseudocode:\n1. mirror\nJSON: " in prompt
    assert memory.write_batch([("p9", outcome.value)]) == ["mirror grid", "tile pattern"]
    assert memory.concepts["mirror grid"].description == "mirror grid described"
    assert memory.concepts["mirror grid"].used_in == ["seed", "p9"]


def test_abstract_concepts_retries_a_nameless_reply_then_fails_as_a_value():
    nameless = json.dumps({"concepts": [{"concept": " ", "kind": "routine"}]})
    outcome = abstract_concepts(ScriptedLLM([nameless] * 3), ConceptMemory(), "p", "s", "p", SETTINGS)
    assert outcome.value is None and "no concept" in outcome.error and len(outcome.raw) == 3
    valid = json.dumps({"concepts": [{"concept": f"c{i}", "kind": "routine"} for i in range(5)]})
    llm = ScriptedLLM([nameless, valid])
    outcome = abstract_concepts(llm, ConceptMemory(), "p", "s", "p", SETTINGS, max_concepts=2)
    assert [c["concept"] for c in outcome.value] == ["c0", "c1"] and len(outcome.raw) == 2
    assert prompts.EMPTY_MEMORY in llm.prompts[0]


def test_name_reuse_rate_counts_distinct_names():
    memory = concept_memory()
    concepts = [{"concept": "mirror grid"}, {"concept": "mirror grid"}, {"name": "new"}, {"concept": ""}]
    assert name_reuse_rate(concepts, memory) == 0.5
    assert name_reuse_rate([], memory) == 0.0


def test_extract_lessons_sources_them_and_drops_half_lessons():
    reply = {"lessons": [{"situation": "rows reversed", "suggestion": "mirror"},
                         {"situation": "no advice", "suggestion": ""},
                         {"situation": "bigger output", "suggestion": "tile it"},
                         {"situation": "x", "suggestion": "y"}]}
    llm = ScriptedLLM(["oops", json.dumps(reply)])
    outcome = extract_lessons(llm, "p3", "the code", SETTINGS, max_lessons=2)
    assert outcome.value == [Lesson(situation="rows reversed", suggestion="mirror", source="p3"),
                             Lesson(situation="bigger output", suggestion="tile it", source="p3")]
    assert len(outcome.raw) == 2 and "Solution:\nthe code\nJSON: " in llm.prompts[0]
    half = json.dumps({"lessons": [{"situation": "a", "suggestion": " "}]})
    failed = extract_lessons(ScriptedLLM([half] * 3), "p3", "code", SETTINGS)
    assert failed.value is None and len(failed.raw) == 3


def test_select_concepts_keeps_known_names_once_in_order():
    memory = concept_memory()
    reply = {"names": ["crop to object", "made up", "mirror grid", "crop to object", 7],
             "notes": " rows  flip "}
    llm = ScriptedLLM([json.dumps(reply)])
    stats: dict[str, int] = {}
    outcome = select_concepts(llm, memory, task(), SETTINGS, k=5, stats=stats)
    assert outcome.value == Selection(["crop to object", "mirror grid"], "rows flip")
    assert stats["dropped"] == 3
    prompt = llm.prompts[0]
    assert memory.render() in prompt and "Test input 1 (1 x 7)" in prompt and "Input (2 x 3)" in prompt
    assert_no_leak(prompt)
    cut = select_concepts(ScriptedLLM([json.dumps(reply)]), memory, task(), SETTINGS, k=1)
    assert cut.value.names == ["crop to object"]


def test_select_concepts_retries_and_skips_an_empty_memory():
    memory = concept_memory()
    replies = ["", "[]", '{"names": ["mirror grid"], "notes": ""}']
    outcome = select_concepts(ScriptedLLM(replies), memory, task(), SETTINGS)
    assert outcome.value == Selection(["mirror grid"], "") and len(outcome.raw) == 3
    failed = select_concepts(ScriptedLLM(["", "", ""]), memory, task(), SETTINGS)
    assert failed.value is None and failed.error
    llm = ScriptedLLM([])  # raises if called
    empty = select_concepts(llm, ConceptMemory(), task(), SETTINGS)
    assert empty.value == Selection([]) and llm.prompts == []


def test_selection_schema_enforces_the_exact_names_and_k():
    names = ["mirror grid", 'say "hi"', "crop to object"]
    schema = programs.selection_schema(names, 2)
    check_constraint(SamplingParams(json_schema=schema))
    assert schema_accepts(schema, {"names": ['say "hi"', "mirror grid"], "notes": "ok"})
    assert not schema_accepts(schema, {"names": ["mirror"], "notes": "ok"})
    assert not schema_accepts(schema, {"names": names, "notes": "ok"})
    assert not schema_accepts(schema, {"names": [], "notes": "x" * (programs.NOTES_CHARS + 1)})


def test_select_lessons_keeps_valid_numbers_once():
    lessons = LessonMemory(lessons=[Lesson(situation=f"s{i}", suggestion=f"t{i}") for i in range(1, 4)])
    llm = ScriptedLLM(["nope", '{"lessons": [3, 9, 0, 3, true, 1, "2"]}'])
    stats: dict[str, int] = {}
    outcome = select_lessons(llm, lessons, task(), SETTINGS, k=5, stats=stats)
    assert outcome.value == [3, 1] and len(outcome.raw) == 2 and stats["dropped"] == 5
    assert all(type(n) is int for n in outcome.value)  # JSON true is no lesson number
    assert lessons.render_numbered() in llm.prompts[0]
    assert_no_leak(llm.prompts[0])
    cut = select_lessons(ScriptedLLM(['{"lessons": [2, 3, 1]}']), lessons, task(), SETTINGS, k=2)
    assert cut.value == [2, 3]
    none = select_lessons(ScriptedLLM([]), LessonMemory(), task(), SETTINGS)
    assert none.value == [] and none.raw == []
    schema = programs.lesson_selection_schema(3, 2)
    check_constraint(SamplingParams(json_schema=schema))
    assert schema_accepts(schema, {"lessons": [3, 1]}) and not schema_accepts(schema, {"lessons": [4]})
    assert not schema_accepts(schema, {"lessons": [1, 2, 3]})


# vectors by keyword, deliberately not unit-norm: the ranking must use the cosine, not the dot product
KEYWORD_VECTORS = {"grid puzzle": [1.0, 0.0, 0.0], "mirror": [0.9, 0.1, 0.0], "crop": [5.0, 5.0, 0.0],
                   "color": [0.3, 0.9, 0.0]}


class KeywordEmbedder:
    """A fake `Embedder`: each text gets the vector of the first keyword it contains; it records the texts."""

    dim = 3

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen.extend(texts)
        vectors = [next(v for k, v in KEYWORD_VECTORS.items() if k in text) for text in texts]
        return np.asarray(vectors, dtype=np.float32)


def test_embedding_selection_ranks_by_cosine():
    memory = concept_memory()
    embedder = KeywordEmbedder()
    # cosines with the task: mirror 0.994, crop 0.707, color 0.316 (dot products would put crop first)
    assert select_by_embedding(embedder, memory, task(), k=2) == ["mirror grid", "crop to object"]
    ranked = select_by_embedding(embedder, memory, task(), k=5)
    assert ranked == ["mirror grid", "crop to object", "color mapping"]
    query = embedder.seen[0]
    assert "same size" in query and "blue, red, yellow" in query
    assert "mirror grid described" in embedder.seen[1]
    assert_no_leak(query)
    assert select_by_embedding(embedder, ConceptMemory(), task()) == []


def test_solve_prompt_shows_grids_hint_and_ends_at_the_function():
    prompt = write_solution_prompt(task(), "- concept: mirror grid")
    assert "Hints from memory:\n- concept: mirror grid" in prompt and "Test input 1 (1 x 7)" in prompt
    assert prompt.endswith("```python\nimport numpy as np\n\n") and "Your previous attempt" not in prompt
    assert "Hints from memory" not in write_solution_prompt(task(), "  ")
    assert_no_leak(prompt)


def test_retry_prompt_shows_train_mismatches_and_errors_never_test_outputs():
    t = task()
    wrong = np.asarray([[1, 0, 0], [2, 0, 0]])
    attempt = Attempt(code="def transform(input_grid):\n    return input_grid\n",
                      train_outputs=[wrong, np.asarray([[5, 4]])],
                      test_outputs=[np.asarray([TEST_OUTPUT_ROW])],  # even a right test answer stays hidden
                      errors={"test input 1": "IndexError: boom (line 2)"})
    prompt = write_solution_prompt(t, "", [attempt])
    assert "```python\ndef transform(input_grid):\n    return input_grid\n```" in prompt
    mismatch = "Example 1: your output\narray([[1, 0, 0],\n       [2, 0, 0]])\nexpected\narray([[0, 0, 1],"
    assert mismatch in prompt
    assert "Example 2: your output" not in prompt  # it was right
    assert "Error on test input 1: IndexError: boom (line 2)" in prompt
    assert "Revise the hypothesis or the code." in prompt and prompt.endswith("import numpy as np\n\n")
    assert_no_leak(prompt)
    three = task_from_arrays("t3", [([[1]], [[2]])] * 3, [([[0]], [[TEST_OUTPUT_ROW[0]]])])
    failed = Attempt(code="", train_outputs=[np.asarray([[3]])] * 3, test_outputs=[None], errors={})
    retry = write_solution_prompt(three, "", [failed])
    assert retry.count(": your output") == 2 and prompts.NO_CODE in retry


def test_solve_retries_a_syntax_error_and_the_script_sees_every_prompt_without_leaks():
    llm = ScriptedLLM(["def transform(input_grid):\n    return (\n", "no header here", CODE])
    stats: dict[str, int] = {}
    attempt = Attempt(code="x", train_outputs=[None, None], test_outputs=[np.asarray([TEST_OUTPUT_ROW])],
                      errors={"code": "parse error"})
    outcome = solve(llm, task(), "hint", [attempt], SETTINGS, stats=stats)
    assert outcome.value == CODE.rstrip("\n") and len(outcome.raw) == 3
    assert "SyntaxError" in parse_error("def transform(input_grid):\n    return (\n")
    assert stats == {"calls": 1, "tries": 3, "failures": 0}
    for prompt in llm.prompts:
        assert_no_leak(prompt)
    failed = solve(ScriptedLLM(["print(1)\n"] * 3), task(), "", None, SETTINGS)
    assert failed.value is None and "def transform" in failed.error


def parse_error(text: str) -> str:
    with pytest.raises(ValueError) as info:
        parse_code(text)
    return str(info.value)


def test_parse_code_drops_a_truncated_last_line_and_never_runs_the_code(tmp_path: Path):
    assert parse_code("def transform(input_grid):\n    x = 1\n    return input_grid[") == (
        "def transform(input_grid):\n    x = 1")
    # a complete reply whose last line is broken is an error, not silently shortened
    assert "does not compile" in parse_error("def transform(input_grid):\n    x = 1\n    return (\n")
    marker = tmp_path / "ran"
    code = f"def transform(input_grid):\n    return input_grid\nopen({str(marker)!r}, 'w').close()\n"
    assert parse_code(code) == code.rstrip("\n") and not marker.exists()
    assert parse_code("def transform(input_grid: np.ndarray) -> np.ndarray:\n    return input_grid")


def test_solve_regex_forces_the_header_and_at_most_24_indented_lines():
    body = ["    grid = np.array(input_grid)", "", "    return grid[:, ::-1]"]
    typical = "def transform(input_grid):\n" + "\n".join(line or "    " for line in body) + "\n"
    params = SamplingParams(regex=SOLVE_REGEX)
    check_constraint(params)
    for text, ok in [(typical, True), (typical.rstrip("\n"), True), ("print('hi')\n" + typical, False),
                     ("The answer is to mirror.\n", False), ("def transform(input_grid):\n", False),
                     ("def transform(input_grid):\n    x = 0\nprint(x)\n", False),
                     ("def transform(input_grid):\n" + "    x = 0\n" * 24, True),
                     ("def transform(input_grid):\n" + "    x = 0\n" * 25, False)]:
        assert bool(re.fullmatch(SOLVE_REGEX, text)) is ok, text
        assert accepts(params, text) is ok, text


def demonstration(run) -> str:
    """The demonstration reply a program's prompt shows: the rest of its first `JSON: ` line."""
    llm = ScriptedLLM(["x"])
    run(llm)
    line = next(line for line in llm.prompts[0].splitlines() if line.startswith("JSON: "))
    return line.removeprefix("JSON: ")


def test_every_schema_is_enforceable_and_accepts_its_demonstration_as_printed():
    import xgrammar as xgr

    once = ProgramSettings(retries=0)
    memory, lessons = concept_memory(), LessonMemory(lessons=[Lesson(situation="s", suggestion="t")] * 2)
    cases = [(programs.summary_schema(), lambda llm: summarize_solution(llm, CODE, once)),
             (programs.abstract_schema(4), lambda llm: abstract_concepts(llm, memory, "p", "s", "p", once)),
             (programs.lessons_schema(3), lambda llm: extract_lessons(llm, "p", "code", once)),
             (programs.selection_schema(memory.names(), 5),
              lambda llm: select_concepts(llm, memory, task(), once)),
             (programs.lesson_selection_schema(2, 5), lambda llm: select_lessons(llm, lessons, task(), once))]
    for schema, run in cases:
        check_constraint(SamplingParams(json_schema=schema))
        text = demonstration(run)
        assert accepts(SamplingParams(json_schema=schema), text), text
        # and in the schema's own key order (should the decoder stop sorting keys)
        own = xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)
        compiled = xgr.GrammarCompiler(xgr.TokenizerInfo([]), cache_enabled=False).compile_grammar(own)
        matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
        assert matcher.accept_string(text) and matcher.is_terminated(), text
    abstract = programs.abstract_schema(1)
    concept = prompts.ABSTRACT_DEMO["reply"]["concepts"][0]
    assert not schema_accepts(abstract, {"concepts": [concept, concept]})
    assert not schema_accepts(abstract, {"concepts": []})
    assert not schema_accepts(abstract, {"concepts": [{**concept, "kind": "idea"}]})
    assert not schema_accepts(abstract, {"concepts": [{**concept, "concept": "a: b"}]})
    assert not schema_accepts(programs.summary_schema(), {"summary": "s", "pseudocode": ["x"] * 7})


def tiny_model_folder(folder: Path) -> Path:
    """The random Llama of tiny_hf.py over a byte-level BPE (so constrained decoding can spell any text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tiny_hf import tiny_llama

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [prompts.SOLVE, prompts.ABSTRACT_CONCEPTS, json.dumps(prompts.ABSTRACT_DEMO["reply"])] * 2
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<eos>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<eos>", pad_token="<pad>")
    model = tiny_llama(len(fast))
    model.config.max_position_embeddings = 8192  # rotary positions: no table to outgrow
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_programs_decode_under_their_constraints_on_a_real_model(tmp_path: Path, one_torch_thread):
    llm = load_llm(f"hf:{tiny_model_folder(tmp_path / 'tiny')}")
    settings = ProgramSettings(retries=1, max_tokens=48)
    memory = concept_memory()

    summary = summarize_solution(llm, CODE, settings)
    concepts = abstract_concepts(llm, memory, "p", "mirror the grid", "1. mirror", settings, max_concepts=2)
    # a complete selection is at most ~150 characters, so 200 tokens always finish it: it must parse
    selection = select_concepts(llm, memory, task(), settings.model_copy(update={"max_tokens": 200}), k=2)
    code = solve(llm, task(), "", None, settings)

    for outcome, opening in [(summary, '{"pseudocode": ['), (concepts, '{"concepts": [{"concept": "'),
                             (selection, '{"names": [')]:
        assert outcome.ok or (outcome.error and len(outcome.raw) == 2)
        # the raw text is the model's own, yet shaped by the schema from its first character
        assert all(raw.startswith(opening[: len(raw)]) for raw in outcome.raw)
    assert all(raw.startswith("def transform(input_grid):\n"[: len(raw)]) for raw in code.raw)
    if summary.ok:
        assert summary.value.summary and summary.value.pseudocode.startswith("1. ")
    if concepts.ok:
        assert 1 <= len(concepts.value) <= 2 and all(c["concept"] for c in concepts.value)
    assert selection.ok and set(selection.value.names) <= set(memory.names())
    assert len(selection.value.names) <= 2
    if code.ok:
        compile(code.value, "<model>", "exec")
