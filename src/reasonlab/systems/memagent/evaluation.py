"""Every metric mem-agent reports: the benchmark in the spirit of md-memory-bench (spec §9) runs a solver on
generated tasks, judges each answer (judges.py), and reports per-category scores, format statistics and cost.

A solver turns (task, memory copy) into an `Attempt`: the agent (`AgentSolver`, the real loop and sandbox)
or the MiniLM-RAG baseline (`rag.RAGSolver`). For update tasks the agent changes the memory, then a fresh
agent of the same model answers the follow-up question on the changed memory, and both are judged.
`scripted_policy(task, correct)` plays the oracle (or a plausible wrong agent) through the same loop, which
proves the scorer both ways: 100% for the oracle, 0% for the wrong policy.

    memories, tasks = generate_bench(seed=0, n_memories=2, tasks_per_category=5)
    report = run_bench(tasks, memories, AgentSolver(load_llm("llamacpp:embedded")))
    report.summary["score"], report.summary["categories"]
"""

from __future__ import annotations

import ast
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reasonlab.llm import LLM, ScriptedLLM
from reasonlab.progress import eta, say
from reasonlab.systems.memagent.agent import Agent, AgentConfig, TurnRecord
from reasonlab.systems.memagent.data import CATEGORIES, BenchTask, MemoryScenario
from reasonlab.systems.memagent.judges import JudgeCase, LLMJudge, judge_case
from reasonlab.systems.memagent.memory import Memory

__all__ = [
    "AgentSolver",
    "Attempt",
    "BenchReport",
    "Outcome",
    "ScriptedAgent",
    "Solver",
    "judge_attempt",
    "run_bench",
    "scripted_policy",
    "summarize",
    "turn_text",
]


ACTION_CHARS = 300


def turn_text(think: str, python: str | None = None, reply: str | None = None) -> str:
    """One assistant turn in the format the turn grammar allows (python, or empty python then reply)."""
    if reply is not None:
        return f"<think>{think}</think>\n<python></python>\n<reply>{reply}</reply>"
    return f"<think>{think}</think>\n<python>{python}</python>"


# scripted policies


def _last_result_value(prompt: str, key: str) -> str | None:
    """The value of `- key: ...` in the last <result> block of a prompt (a repr of the code's variables)."""
    block = prompt.rsplit("<result>", 1)[-1]
    match = re.search(rf"- {re.escape(key)}: (.*?)(?:\\n|\n|'|\")", block)
    return match.group(1).strip() if match else None


# the scripted agent's thoughts say what the request asks for and what each call does, so a model trained on its
# episodes learns to tell a question from an update in words before it acts (the earlier fixed thought,
# "I should look this up in the memory step by step.", taught it nothing of the kind). After the first call
# each thought also quotes the line of the last <result> that decides the next move: the link that names the
# next file, the old line an update replaces, the line that answers the question (then it replies). Without the
# quote (commit 906d9bd) the reply's thought was a constant and the trained model read on until the turn cap.
INTENTS = {"update": "The user gives a new fact to save.", "filter": "The user asks for a fact under a privacy rule."}
QUESTION_INTENT = "The user asks for a fact."
REPLY_THINKS = {"retrieval": "I found it.", "clarification": "No line of the result answers it, so I ask.",
                "update": "The memory now has the new fact.", "filter": "I answer within the privacy rule."}
_CALL = re.compile(r'(read_file|go_to_link|update_file|list_files|create_file)\("(?:\[\[)?([^"\]]*)')
_STEPS = {"read_file": "Read {}.", "go_to_link": "Follow the link to {}.", "update_file": "Replace the old line in {}.",
          "list_files": "List the files.", "create_file": "Create {}."}
_VARIABLE = re.compile(r"^[{ ,]*'\w+': ['\"]")  # "{'entity_1': '" before a file's first line
_OLD_LINE = re.compile(r'update_file\("[^"]*", "([^"]*)"')


def _intent(task: BenchTask) -> str:
    """The request's intent, then what it is about in the memory's keys ("Wanted: timezone of home_city of
    sibling."): every turn repeats it, since older thoughts are dropped from the prompt."""
    intent = INTENTS.get(task.category, QUESTION_INTENT)
    if not task.asked:  # a hand-written task
        return intent
    return f"{intent} {'To change' if task.category == 'update' else 'Wanted'}: {task.asked}."


def _step(code: str) -> str:
    """'Read user.md.' for `x = read_file("user.md")`: what one scripted call does."""
    match = _CALL.search(code)
    return _STEPS[match.group(1)].format(match.group(2)) if match else "Run the next call."


def result_lines(prompt: str) -> list[str]:
    """The lines of the last <result> block of a prompt (its variables are reprs, so a file's newlines are the
    two characters backslash-n there)."""
    if "<result>" not in prompt:
        return []
    block = prompt.rsplit("<result>", 1)[-1].split("</result>", 1)[0]
    lines = (_VARIABLE.sub("", line).strip(" {}'\"") for line in re.split(r"\\n|\n", block))
    return [line for line in lines if line]


def quoted_line(prompt: str, needles: Sequence[str]) -> str | None:
    """The first line of the last result that holds one of `needles` (tried in order), or None."""
    lines = result_lines(prompt)
    for needle in filter(None, needles):
        for line in lines:
            if needle in line:
                return line
    return None


def _call_thought(task: BenchTask, code: str, prompt: str, turn: int) -> str:
    """The intent, the line of the last result that leads to this call (none on the first turn), the call."""
    if turn == 0:
        return f"{_intent(task)} {_step(code)}"
    old = _OLD_LINE.search(code)
    target = _CALL.search(code)
    needle = old.group(1) if old else (target.group(2) if target else "")
    line = quoted_line(prompt, [needle])
    if line is None:
        return f"{_intent(task)} {_step(code)}"
    why = "is the old line" if old else "points there"
    return f"{_intent(task)} `{line}` {why}. {_step(code)}"


def _reply_thought(task: BenchTask, prompt: str) -> str:
    """The line of the last result that answers the question, quoted, then what the reply does; for a
    clarification, the key the last file lacks (the relation in user.md, or the attribute in the entity)."""
    if task.category in ("retrieval", "filter"):
        line = quoted_line(prompt, [task.answer or "", *task.blocked, *task.allowed])
        if line is not None:
            return f"{_wanted(task)}`{line}` answers it. {REPLY_THINKS[task.category]}"
    if task.category == "clarification" and task.asked:
        key, _, relation = task.asked.partition(" of ")
        missing = relation if task.kind == "missing_entity" else key
        return f"{_wanted(task)}No line for {missing}, so I ask."
    return REPLY_THINKS[task.category]


def _wanted(task: BenchTask) -> str:
    return f"Wanted: {task.asked}. " if task.asked else ""


class ScriptedAgent:
    """`prompt -> completion` that plays one task: the oracle's (or the wrong policy's) tool calls, one per
    turn, then its reply. The turn index is the number of <result> blocks after the request in the prompt.

    For the follow-up question of an update task it is an honest reader: it reads the updated file and
    answers with the value it finds, so the follow-up score depends on what the update wrote."""

    def __init__(self, task: BenchTask, correct: bool = True) -> None:
        self.task = task
        self.code = task.oracle_code if correct else task.wrong_code
        self.reply = task.oracle_reply if correct else task.wrong_reply

    def __call__(self, prompt: str) -> str:
        task = self.task
        followup_at = prompt.rfind(task.followup_question) if task.followup_question else -1
        if followup_at > prompt.rfind(task.question):
            return self._read_back(prompt, prompt[followup_at:].count("<result>"))
        turn = prompt[prompt.rfind(task.question):].count("<result>")
        if turn < len(self.code):
            return turn_text(_call_thought(task, self.code[turn], prompt, turn), self.code[turn])
        return turn_text(_reply_thought(task, prompt), reply=self.reply)

    def _read_back(self, prompt: str, turn: int) -> str:
        path, key, _ = self.task.expected_facts[0]
        if turn == 0:
            return turn_text("The fact should be in one file.", f'entity = read_file("{path}")')
        value = _last_result_value(prompt, key)
        answer = f"According to your memory, it is {value}." if value else "I could not find it. Which one?"
        return turn_text("Found it.", reply=answer)


def scripted_policy(task: BenchTask, correct: bool = True) -> ScriptedLLM:
    """A ScriptedLLM that solves `task` like the oracle (correct=True) or like a plausible wrong agent."""
    return ScriptedLLM(ScriptedAgent(task, correct), name="scripted-oracle" if correct else "scripted-wrong")


# solving


@dataclass
class Attempt:
    """What a solver did on one task: its replies, turns and cost."""

    reply: str | None
    followup_reply: str | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    stopped: str = "reply"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Solver(Protocol):
    name: str

    def __call__(self, task: BenchTask, memory: Memory) -> Attempt: ...


class AgentSolver:
    """The memory agent: one run on the task, and for updates a fresh agent on the follow-up question.
    `on_turn(task, turn)` sees every turn as it ends (the experiment's progress lines)."""

    def __init__(self, llm: LLM | None = None, config: AgentConfig | None = None,
                 policy_for_task: Callable[[BenchTask], LLM] | None = None, name: str = "agent",
                 on_turn: Callable[[BenchTask, TurnRecord], None] | None = None) -> None:
        if (llm is None) == (policy_for_task is None):
            raise ValueError("give exactly one of llm and policy_for_task")
        self.llm, self.policy_for_task = llm, policy_for_task
        self.config = config or AgentConfig()
        self.name = name
        self.on_turn = on_turn

    def __call__(self, task: BenchTask, memory: Memory) -> Attempt:
        llm = self.llm if self.llm is not None else self.policy_for_task(task)  # type: ignore[misc]
        on_turn = None if self.on_turn is None else (lambda turn: self.on_turn(task, turn))  # type: ignore[misc]
        result = Agent(llm, memory, self.config).run(task.question, task.filters, on_turn=on_turn)
        attempt = Attempt(result.reply, None, list(result.turns), result.stopped, result.prompt_tokens,
                          result.completion_tokens, result.seconds)
        if task.category == "update" and task.followup_question:
            followup = Agent(llm, memory, self.config).run(task.followup_question, on_turn=on_turn)
            attempt.followup_reply = followup.reply
            attempt.turns += followup.turns
            attempt.prompt_tokens += followup.prompt_tokens
            attempt.completion_tokens += followup.completion_tokens
            attempt.seconds += followup.seconds
        return attempt


# judging and reports


@dataclass
class Outcome:
    """One judged task: the verdicts, the turn statistics and the cost."""

    task_id: str
    category: str
    kind: str
    correct: bool
    reason: str
    reply: str | None
    followup_reply: str | None
    turns: int
    stopped: str
    format_valid_turns: int
    python_turns: int
    parsed_python_turns: int
    tool_runs: int
    tool_errors: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    llm_judge_correct: bool | None = None  # None: not judged by an LLM, or the LLM judge failed
    llm_judge_failed: bool = False
    actions: list[str] = field(default_factory=list)  # each turn's (cut) completion, shortened, for reading

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_attempt(task: BenchTask, attempt: Attempt, before: dict[str, str], after: dict[str, str]) -> JudgeCase:
    """The judge's view of a task and what the solver did."""
    return JudgeCase(
        category=task.category, question=task.question, reply=attempt.reply, answer=task.answer,
        filters=task.filters, blocked=list(task.blocked), allowed=list(task.allowed), memory_before=before,
        memory_after=after, expected_facts=list(task.expected_facts), followup_question=task.followup_question,
        followup_reply=attempt.followup_reply,
    )


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _outcome(task: BenchTask, attempt: Attempt, case: JudgeCase, llm_judge: LLMJudge | None) -> Outcome:
    verdict = judge_case(case)
    llm_verdict = None if llm_judge is None else llm_judge.judge(case)
    python = [t.turn.python for t in attempt.turns if t.turn.python]
    runs = [t.tool_run for t in attempt.turns if t.tool_run is not None]
    return Outcome(
        task_id=task.task_id, category=task.category, kind=task.kind, correct=verdict.correct,
        reason=verdict.reason, reply=attempt.reply, followup_reply=attempt.followup_reply,
        turns=len(attempt.turns), stopped=attempt.stopped,
        format_valid_turns=sum(t.turn.problem is None for t in attempt.turns), python_turns=len(python),
        parsed_python_turns=sum(_parses(code) for code in python), tool_runs=len(runs),
        tool_errors=sum(run.error is not None for run in runs), prompt_tokens=attempt.prompt_tokens,
        completion_tokens=attempt.completion_tokens, seconds=round(attempt.seconds, 3),
        llm_judge_correct=None if llm_verdict is None else llm_verdict.correct,
        llm_judge_failed=llm_verdict is not None and llm_verdict.failed,
        actions=[t.completion[:ACTION_CHARS] for t in attempt.turns],
    )


def _rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def summarize(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Micro-averaged score, per-category scores and cost, format-valid %, ast.parse %, tool-error %."""
    categories = {}
    for category in CATEGORIES:
        rows = [o for o in outcomes if o.category == category]
        if rows:
            categories[category] = {
                "n": len(rows), "score": _rate(sum(o.correct for o in rows), len(rows)),
                "prompt_tokens": sum(o.prompt_tokens for o in rows),
                "completion_tokens": sum(o.completion_tokens for o in rows),
                "seconds": round(sum(o.seconds for o in rows), 2),
                "seconds_per_task": round(sum(o.seconds for o in rows) / len(rows), 2),
            }
    judged = [o for o in outcomes if o.llm_judge_correct is not None]
    n, turns = len(outcomes), sum(o.turns for o in outcomes)
    return {
        "n": n,
        "score": _rate(sum(o.correct for o in outcomes), n),
        "categories": categories,
        "format_valid_rate": _rate(sum(o.format_valid_turns for o in outcomes), turns),
        "ast_parse_rate": _rate(sum(o.parsed_python_turns for o in outcomes), sum(o.python_turns for o in outcomes)),
        "tool_error_rate": _rate(sum(o.tool_errors for o in outcomes), sum(o.tool_runs for o in outcomes)),
        "turns_per_episode": _rate(turns, n),
        "reply_rate": _rate(sum(o.stopped == "reply" for o in outcomes), n),
        "prompt_tokens": sum(o.prompt_tokens for o in outcomes),
        "completion_tokens": sum(o.completion_tokens for o in outcomes),
        "seconds": round(sum(o.seconds for o in outcomes), 2),
        "seconds_per_task": _rate(sum(o.seconds for o in outcomes), n),
        "llm_judge_score": _rate(sum(bool(o.llm_judge_correct) for o in judged), len(judged)),
        "llm_judge_failures": sum(o.llm_judge_failed for o in outcomes),
        "llm_judge_agrees_with_deterministic": _rate(
            sum(o.llm_judge_correct == o.correct for o in judged), len(judged)),
    }


PROGRESS_SECONDS = 10.0  # run_bench(progress=True): at most one task line per this many seconds


@dataclass
class BenchReport:
    """Every task's outcome and their summary for one solver."""

    solver: str
    outcomes: list[Outcome]
    summary: dict[str, Any]


def run_bench(
    tasks: Sequence[BenchTask],
    memories: Sequence[MemoryScenario],
    solver: Solver,
    llm_judge: LLMJudge | None = None,
    workdir: Path | None = None,
    on_task: Callable[[Outcome], None] | None = None,
    progress: bool = False,
) -> BenchReport:
    """Solve and judge every task, each on a fresh copy of its memory (under `workdir`, else a temp folder).
    With `progress`, a line per task (at most one per PROGRESS_SECONDS, and the last): k/N, verdict, ETA."""
    by_id = {m.memory_id: m for m in memories}
    outcomes: list[Outcome] = []
    started = last_line = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reasonlab-memagent-bench-") as scratch:
        root = Path(workdir or scratch)
        for task in tasks:
            memory = Memory.from_files(root / f"{solver.name}-{task.task_id}-{time.monotonic_ns()}",
                                       by_id[task.memory_id].files)
            before = memory.files()
            attempt = solver(task, memory)
            outcome = _outcome(task, attempt, judge_attempt(task, attempt, before, memory.files()), llm_judge)
            outcomes.append(outcome)
            if on_task is not None:
                on_task(outcome)
            if progress and (time.monotonic() - last_line >= PROGRESS_SECONDS or len(outcomes) == len(tasks)):
                say(_progress_line(solver.name, outcomes, len(tasks), started))
                last_line = time.monotonic()
    return BenchReport(solver.name, outcomes, summarize(outcomes))


def _progress_line(arm: str, outcomes: Sequence[Outcome], total: int, started: float) -> str:
    last, correct = outcomes[-1], sum(o.correct for o in outcomes)
    verdict = "correct" if last.correct else "wrong"
    return (f"mem-agent {arm}: task {len(outcomes)}/{total} ({last.category}, {verdict}), {correct} correct so far, "
            f"{eta(len(outcomes), total, started)}")

