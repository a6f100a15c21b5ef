"""Adaptation loops: offline best-by-validation, online score-before-learn, label-free, oracle vs rewrite."""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import ScriptedLLM
from reasonlab.runs import Run
from reasonlab.systems.ace.adaptation import adapt, build_memory, run_adaptation
from reasonlab.systems.ace.config import ACEConfig
from reasonlab.systems.ace.evaluation import collapse_stats
from reasonlab.systems.ace.memory import PlaybookMemory
from reasonlab.systems.ace.tasks import FormulaSuite, Sample, ToolSuite


class NoLabelSample(Sample):
    """A sample whose gold label raises when read."""

    @property
    def label(self):
        raise AssertionError(f"gold label of {self.id} was read in label-free mode")


def test_collapse_stats() -> None:
    stats = collapse_stats([0, 100, 120, 30, 40, 35])
    assert stats == {"max_shrink": 0.75, "collapse_events": 1, "peak_tokens": 120, "final_tokens": 35}
    assert collapse_stats([156, 190, 217])["max_shrink"] == 0.0  # a growing context never shrank


def test_oracle_run_learned_playbook_beats_empty_and_keeps_seeded_facts(rule_llm) -> None:
    task = FormulaSuite(families=4, per_family=6, split=(2, 1))
    results = {}
    for method in ("ace", "dc", "icl", "none"):
        llm = rule_llm(rewrite_keep_chars=80)
        config = ACEConfig(method=method, oracle_reflector=True, seed_facts=True, dedup=False, eval_steps=4)
        results[method] = adapt(config, llm, task, build_memory(config, llm, task))
    ace, dc = results["ace"], results["dc"]
    assert ace["test_before"]["accuracy"] == 0.0 and ace["test_after"]["accuracy"] == 1.0
    assert results["none"]["test_after"]["accuracy"] == 0.0
    assert ace["facts_retained"] == [4] * 9  # 8 steps + the start: the merge never drops a seeded fact
    # the bounded rewrite forgets: 4 seeded facts, then 1, then none (a 44% shrink, under the collapse bar)
    assert dc["facts_retained"] == [4, 1] + [0] * 7
    assert (dc["collapse_events"], dc["max_shrink"], ace["max_shrink"]) == (0, 0.4437, 0.0)
    # validated every 4 steps: perfect at step 4 already, and a tie keeps the earlier playbook
    assert ace["val_curve"] == [(0, 0.0), (4, 1.0), (8, 1.0)] and ace["best_step"] == 4


def test_offline_keeps_the_best_playbook_by_validation(rule_llm) -> None:
    task = FormulaSuite(families=2, per_family=6, split=(2, 2))
    llm = rule_llm()
    config = ACEConfig(method="ace", oracle_reflector=True, dedup=False, eval_steps=1)
    memory = build_memory(config, llm, task)
    original_learn = memory.learn

    def learn_then_sabotage(sample, first, step, total):
        record = original_learn(sample, first, step, total)
        if step == len(task.train):  # the last step corrupts every rule: validation drops, best is kept
            for bullet in memory.playbook:
                bullet.content = "wrong"
        return record

    memory.learn = learn_then_sabotage
    summary = adapt(config, llm, task, memory)
    assert summary["val_curve"] == [(0, 0.0), (1, 0.5), (2, 1.0), (3, 1.0), (4, 0.0)] and summary["best_step"] == 2
    assert summary["test_after"]["accuracy"] == 1.0


def test_online_scores_each_window_before_learning_from_it(rule_llm) -> None:
    task = FormulaSuite(families=2, per_family=4, split=(0, 0))  # 8 test samples, 4 per rule
    llm = rule_llm()
    order: list[str] = []
    config = ACEConfig(method="ace", mode="online", window=4, oracle_reflector=True, dedup=False)
    memory = build_memory(config, llm, task)
    learn = memory.learn
    memory.learn = lambda sample, first, step, total: (order.append(f"learn:{sample.id}"),
                                                      learn(sample, first, step, total))[1]

    def scorer(sample, answer):
        order.append(f"score:{sample.id}")
        return task.check(sample, answer)

    summary = adapt(config, llm, task, memory, scorer=scorer)
    windows = [row["window"] for row in summary["test_rows"]]
    assert windows == [0, 0, 0, 0, 1, 1, 1, 1]
    ids = [s.id for s in task.test]
    assert order == [f"{kind}:{i}" for window in (ids[:4], ids[4:]) for kind in ("score", "learn") for i in window]
    # window 0 is answered with the empty playbook, window 1 with what window 0 taught
    correct = [row["correct"] for row in summary["test_rows"]]
    assert correct[:4] == [False] * 4
    learned = {s.family for s in task.test[:4]}
    assert correct[4:] == [s.family in learned for s in task.test[4:]]


def _label_free_samples(task) -> list[Sample]:
    return [NoLabelSample(s.id, s.question, None, s.family, s.context, s.meta) for s in task.test]


def test_label_free_mode_never_reads_the_gold_label() -> None:
    task = ToolSuite(per_family=3, split=(0, 0))
    task.test = _label_free_samples(task)
    replies = {
        "generator": json.dumps({"bullet_ids": [], "final_answer": "get_balance(alice)"}),
        "reflector": json.dumps({"reasoning": "", "error_identification": "bad id", "root_cause_analysis": "",
                                 "correct_approach": "", "key_insight": "account ids look like acct_<name>",
                                 "bullet_tags": []}),
        "curator": json.dumps({"reasoning": "", "operations": [
            {"type": "ADD", "section": "others", "content": "account ids look like acct_<name>"}]}),
    }

    def script(prompt: str) -> str:
        if "You review" in prompt:
            return replies["reflector"]
        if "You maintain" in prompt:
            return replies["curator"]
        return replies["generator"]

    llm = ScriptedLLM(script)
    config = ACEConfig(method="ace", mode="online", labels=False, window=3, dedup=False, reflector_rounds=2)
    memory = build_memory(config, llm, task)
    seen_feedback = []
    reflector = memory.reflector

    def spy(**kwargs):
        seen_feedback.append(kwargs["feedback"])
        return reflector(**kwargs)

    memory.reflector = spy
    summary = adapt(config, llm, task, memory, scorer=lambda s, a: task.execute(s, a).correct is True)
    assert summary["labels"] is False and len(summary["test_rows"]) == 9
    assert all(f.startswith("error: no account 'alice'") for f in seen_feedback) and len(seen_feedback) == 18
    assert [b.content for b in memory.playbook] == ["account ids look like acct_<name>"]
    with pytest.raises(AssertionError, match="gold label"):
        _ = task.test[0].label


def test_run_adaptation_writes_a_run_directory(tmp_path, rule_llm) -> None:
    config = ACEConfig(task="formula", method="ace", oracle_reflector=True, dedup=False, train_size=4,
                       test_size=4)
    run_dir = run_adaptation(config, tmp_path, "r", llm=rule_llm())
    run = Run.open(run_dir)
    summary = run.summary()
    assert (summary["test_before"]["accuracy"], summary["test_after"]["accuracy"]) == (0.0, 1.0)
    assert len(run.metrics()) == 4 and (run_dir / "playbook.json").is_file()
    assert [m["step"] for m in run.metrics()] == [1, 2, 3, 4]
    assert isinstance(build_memory(config, rule_llm(), FormulaSuite()), PlaybookMemory)


def test_run_adaptation_refuses_reruns_and_resumes_only_a_finished_run(tmp_path, rule_llm, capsys) -> None:
    config = ACEConfig(method="none", train_size=2, test_size=2)
    with pytest.raises(UserError, match=r"there is no run in .* to continue: drop --resume"):
        run_adaptation(config, tmp_path, "r", resume=True, llm=rule_llm())
    run_dir = run_adaptation(config, tmp_path, "r", llm=rule_llm())
    with pytest.raises(UserError, match="already exists: pass --resume"):
        run_adaptation(config, tmp_path, "r", llm=rule_llm())
    with pytest.raises(UserError, match=r"another config \(differs in test_size\)"):
        run_adaptation(config.model_copy(update={"test_size": 3}), tmp_path, "r", resume=True, llm=rule_llm())
    assert run_adaptation(config, tmp_path, "r", resume=True, llm=rule_llm()) == run_dir
    assert "reusing the finished adaptation" in capsys.readouterr().err  # a progress line (stderr)
    (run_dir / "summary.json").unlink()  # as if killed before the end
    with pytest.raises(UserError, match=r"stopped before it finished.*--overwrite"):
        run_adaptation(config, tmp_path, "r", resume=True, llm=rule_llm())
    run_adaptation(config, tmp_path, "r", overwrite=True, llm=rule_llm())
    assert (run_dir / "summary.json").is_file()


@pytest.mark.parametrize("method", ["ace", "dc", "icl", "none"])
def test_offline_label_free_training_never_reads_training_labels(method, rule_llm) -> None:
    task = FormulaSuite(families=2, per_family=6, split=(2, 0))
    task.train = [NoLabelSample(s.id, s.question, None, s.family, s.context, s.meta) for s in task.train]
    llm = rule_llm()
    config = ACEConfig(method=method, labels=False, oracle_reflector=method in ("ace", "dc"), dedup=False)
    summary = adapt(config, llm, task, build_memory(config, llm, task))  # test labels are read only to score
    assert summary["labels"] is False and len(summary["context_tokens"]) == len(task.train) + 1
