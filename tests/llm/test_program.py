"""`reasonlab.llm.program.run_program`: parse, check, retry with a fresh seed, then a failure value, never a raise."""

from __future__ import annotations

from pydantic import BaseModel

from reasonlab.llm import SamplingParams, ScriptedLLM
from reasonlab.llm.program import ProgramSettings, run_program


class Answer(BaseModel):
    value: int


class Recording(ScriptedLLM):
    def __init__(self, replies):
        super().__init__(replies)
        self.params: list[SamplingParams] = []

    def generate(self, prompts, params):
        self.params.append(params)
        return super().generate(prompts, params)


SCHEMA = {"type": "object", "properties": {"value": {"type": "integer"}}, "required": ["value"]}


def test_first_valid_reply_is_parsed_under_the_schema():
    llm = Recording(['{"value": 3}'])
    stats: dict[str, int] = {}
    outcome = run_program(llm, "q", SCHEMA, Answer, ProgramSettings(), stats=stats)
    assert outcome.ok and outcome.value == Answer(value=3) and outcome.raw == ['{"value": 3}']
    assert llm.params[0].json_schema == SCHEMA and llm.params[0].temperature == 0.0
    assert stats == {"calls": 1, "tries": 1, "failures": 0}


def test_malformed_then_failing_check_then_valid_is_retried_hotter_with_new_seeds():
    llm = Recording(["{not json", '{"value": -1}', '{"value": 5}'])
    outcome = run_program(llm, "q", SCHEMA, Answer, ProgramSettings(retries=2, retry_temperature=0.9),
                          check=lambda a: "negative" if a.value < 0 else None)
    assert outcome.value == Answer(value=5) and outcome.error is None and len(outcome.raw) == 3
    assert [p.seed for p in llm.params] == [0, 1, 2]
    assert [p.temperature for p in llm.params] == [0.0, 0.9, 0.9]


def test_all_tries_fail_gives_a_failure_value_with_the_last_error():
    stats: dict[str, int] = {}
    outcome = run_program(ScriptedLLM(["x", "y"]), "q", SCHEMA, Answer, ProgramSettings(retries=1), stats=stats)
    assert not outcome.ok and outcome.value is None and outcome.raw == ["x", "y"]
    assert outcome.error.startswith("JSONDecodeError")
    assert stats == {"calls": 1, "tries": 2, "failures": 1}


def test_text_parser_and_regex_constraint():
    def parse(text: str) -> str:
        if "def " not in text:
            raise ValueError("no function")
        return text.strip()

    llm = Recording(["nothing", "def f(): pass"])
    outcome = run_program(llm, "q", None, parse, ProgramSettings(retries=1), regex=r"def [^\n]*", stop=["```"])
    assert outcome.value == "def f(): pass" and outcome.raw[0] == "nothing"
    assert llm.params[0].regex == r"def [^\n]*" and llm.params[0].json_schema is None and llm.params[0].stop == ["```"]
