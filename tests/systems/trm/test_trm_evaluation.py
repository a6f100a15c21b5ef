"""TRM's metrics on hand-made predictions: accuracy by supervision step, halted accuracy, ARC pass@k."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reasonlab.systems.trm.data import DataSpec, GridData, build_task_data
from reasonlab.systems.trm.evaluation import EvalResult, arc_pass_at_k, evaluate, evaluate_split, score_arc
from reasonlab.systems.trm.losses import IGNORE
from reasonlab.systems.trm.model import StepOutput
from reasonlab.tasks import arc

Answer = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


class ScriptedReasoner(torch.nn.Module):
    """Stands in for RecursiveReasoner: at supervision step k (from 0) it answers `answer(inputs, ids, k)`
    with certainty and halting logit `halt(ids, k)`; y counts the steps taken."""

    def __init__(self, answer: Answer, vocab: int, halt: Callable[[torch.Tensor, int], torch.Tensor] | None = None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))  # evaluate reads the device from the parameters
        self.answer, self.vocab = answer, vocab
        self.halt = halt or (lambda ids, k: torch.full(ids.shape, -1.0))

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(batch, dtype=torch.long), torch.zeros(batch)

    def forward(self, inputs, puzzle_ids, y, z) -> StepOutput:
        k = int(y[0])
        logits = F.one_hot(self.answer(inputs, puzzle_ids, k), self.vocab).float()
        q_halt = self.halt(puzzle_ids, k)
        return StepOutput(y + 1, z, logits, q_halt, torch.zeros_like(q_halt))


# three puzzles of 4 tokens (V=5); IGNORE marks PAD positions that are not scored (9 valid tokens)
LABELS = torch.tensor([[1, 2, 3, 4], [2, 2, IGNORE, IGNORE], [3, 1, 4, IGNORE]])
STEP1 = torch.tensor([[1, 2, 3, 0], [2, 2, 0, 0], [0, 0, 0, 0]])  # 3 + 2 + 0 = 5 of 9 tokens; only row 1 exact
STEP2 = LABELS.clamp(min=0)  # every puzzle right
HALT1 = torch.tensor([1.0, -1.0, -1.0])  # row 0 halts after step 1, while still wrong


def scripted() -> ScriptedReasoner:
    return ScriptedReasoner(
        lambda x, ids, k: (STEP1, STEP2)[k][ids], vocab=5,
        halt=lambda ids, k: (HALT1 if k == 0 else torch.full((3,), -1.0))[ids],
    )


def test_accuracy_after_each_supervision_step_of_a_known_prediction():
    inputs, ids = torch.zeros(3, 4, dtype=torch.long), torch.arange(3)
    result = evaluate(scripted(), inputs, LABELS, ids, steps=2, batch_size=2, keep_predictions=True)
    assert result.exact_by_step == pytest.approx([1 / 3, 1.0])
    assert result.token_by_step == pytest.approx([5 / 9, 1.0])
    assert result.count == 3 and result.token_count == 9
    # halted reading: row 0 at step 1 (wrong), rows 1 and 2 at the last step (right)
    assert result.halted_exact == pytest.approx(2 / 3) and result.mean_halt_step == pytest.approx(5 / 3)
    assert torch.equal(result.predictions, STEP2)
    assert result.confidences.tolist() == pytest.approx([float(torch.sigmoid(torch.tensor(-1.0)))] * 3)
    assert result.exact_at(1) == pytest.approx(1 / 3) and result.exact_at(8) == 1.0  # past the curve: its end


def test_read_step_keeps_the_predictions_of_that_step():
    inputs, ids = torch.zeros(3, 4, dtype=torch.long), torch.arange(3)
    result = evaluate(scripted(), inputs, LABELS, ids, steps=2, keep_predictions=True, read_step=1)
    assert torch.equal(result.predictions, STEP1)
    assert result.confidences.tolist() == pytest.approx(torch.sigmoid(HALT1).tolist())


def test_shard_counts_summed_over_ranks_equal_the_whole_split():
    inputs, ids = torch.zeros(3, 4, dtype=torch.long), torch.arange(3)
    whole = evaluate(scripted(), inputs, LABELS, ids, steps=2)
    shards = [evaluate(scripted(), inputs[r::2], LABELS[r::2], ids[r::2], steps=2).to_counts() for r in (0, 1)]
    merged = EvalResult.from_counts({key: shards[0][key] + shards[1][key] for key in shards[0]})
    assert merged.count == 3 and merged.token_count == 9
    assert merged.exact_by_step == pytest.approx(whole.exact_by_step)
    assert merged.token_by_step == pytest.approx(whole.token_by_step)  # token rates weighted by tokens, not rows
    assert merged.halted_exact == pytest.approx(2 / 3) and merged.mean_halt_step == pytest.approx(5 / 3)
    single = evaluate_split(scripted(), GridData(inputs, LABELS, ids), steps=2, batch_size=8)
    assert single.exact_by_step == pytest.approx([1 / 3, 1.0])


def _puzzles(tests: dict[str, list[tuple[np.ndarray, np.ndarray]]], variants: list[arc.ArcAugmentation]):
    """A hand-made ArcPuzzleSet: every task's test pairs under every augmentation in `variants`."""
    puzzles = arc.ArcPuzzleSet(identifiers=[("<blank>", arc.ArcAugmentation())])
    for task_id, pairs in tests.items():
        for augmentation in variants:
            puzzle_id = len(puzzles.identifiers)
            puzzles.identifiers.append((task_id, augmentation))
            for index, (inp, out) in enumerate(pairs):
                puzzles.test.append(arc.ArcExample(augmentation.apply(inp), augmentation.apply(out), puzzle_id,
                                                   task_id, index))
                puzzles.test_truth[(task_id, index)] = out
    return puzzles


GRID_IN = np.array([[1, 2], [3, 4]])
GRID_OUT = np.array([[4, 3, 3], [2, 1, 1]])
WRONG = np.array([[5]])
SHUFFLED = arc.ArcAugmentation(1, (0, 2, 3, 4, 5, 6, 7, 8, 9, 1))  # rotate, and recolor 1 -> 2, ..., 9 -> 1


def _canvases(grids) -> torch.Tensor:
    return torch.from_numpy(np.stack([arc.encode_grid(np.asarray(g)) for g in grids]))


def test_pass_at_2_of_a_perfect_predictor_is_one_and_of_a_copier_zero():
    puzzles = _puzzles({"a": [(GRID_IN, GRID_OUT)], "b": [(GRID_OUT, GRID_IN)]}, [arc.ArcAugmentation(), SHUFFLED])
    ones = torch.ones(len(puzzles.test))
    # each answer is in its variant's frame: the augmentation must be undone before voting
    assert score_arc(puzzles, _canvases(e.output for e in puzzles.test), ones) == 1.0
    assert score_arc(puzzles, _canvases(e.input for e in puzzles.test), ones) == 0.0


def test_votes_rank_the_answers_and_confidence_breaks_ties():
    variants = [arc.ArcAugmentation(), SHUFFLED, arc.ArcAugmentation(4)]
    puzzles = _puzzles({"a": [(GRID_IN, GRID_OUT)]}, variants)
    # two variants vote for the same wrong grid, one for the right one: right is second
    answers = [GRID_OUT, WRONG, WRONG]
    grids = [aug.apply(g) for aug, g in zip(variants, answers, strict=True)]
    confident = torch.tensor([0.9, 0.1, 0.1])
    assert score_arc(puzzles, _canvases(grids), confident, k=1) == 0.0
    assert score_arc(puzzles, _canvases(grids), confident, k=2) == 1.0
    two = _puzzles({"a": [(GRID_IN, GRID_OUT)]}, variants[:2])
    tie = _canvases([GRID_OUT, SHUFFLED.apply(WRONG)])  # one vote each: the more confident grid ranks first
    assert score_arc(two, tie, torch.tensor([0.8, 0.3]), k=1) == 1.0
    assert score_arc(two, tie, torch.tensor([0.3, 0.8]), k=1) == 0.0


def test_pass_at_k_averages_test_pairs_within_a_task_then_over_tasks():
    puzzles = _puzzles({"a": [(GRID_IN, GRID_OUT), (GRID_OUT, GRID_IN)], "b": [(GRID_IN, GRID_OUT)]},
                       [arc.ArcAugmentation()])
    answers = [GRID_OUT, WRONG, GRID_OUT]  # task a: 1 of 2 pairs; task b: 1 of 1
    assert score_arc(puzzles, _canvases(answers), torch.ones(3)) == pytest.approx(0.75)  # not 2/3 (by pair)


def test_arc_pass_at_2_runs_the_model_on_the_augmented_test_inputs():
    data = build_task_data(DataSpec(task="arc", arc_tasks=2, arc_augmentations=1, val_size=2))
    inputs, labels = data.test.inputs, data.test.labels.clamp(min=0)

    def oracle(x, ids, k):
        row = (x[:, None, :] == inputs[None]).all(-1).float().argmax(1)  # which test row this input is
        return labels[row]

    copier = ScriptedReasoner(lambda x, ids, k: x, vocab=data.vocab_size)
    assert arc_pass_at_k(ScriptedReasoner(oracle, data.vocab_size), data, steps=2, batch_size=8) == 1.0
    assert arc_pass_at_k(copier, data, steps=2, batch_size=8) == 0.0  # no test output of these tasks is its input
