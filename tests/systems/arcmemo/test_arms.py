"""The ARC-lite memory arms: the prior-ordered enumeration, program abstraction, and what each arm writes and
how it orders the search (instance: nearest task first; concept: cue model, colour binding, embedding)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from reasonlab.systems.arcmemo import arclite
from reasonlab.systems.arcmemo.arclite import ArcLiteTask, Program, generate_tasks, search
from reasonlab.systems.arcmemo.arms import (
    ARMS,
    ConceptArm,
    InstanceArm,
    NoMemoryArm,
    abstract_program,
    feature_vector,
    make_arm,
    prior_order,
)


def first(stream, n: int) -> list[Program]:
    return list(itertools.islice(stream, n))


def hand_task(task_id: str, program: Program, inputs: Sequence[np.ndarray]) -> ArcLiteTask:
    """A task made by `program` on the given inputs (the last one is the test pair)."""
    pairs = [(grid, arclite.apply_program(program, grid)) for grid in inputs]
    return ArcLiteTask(task_id, pairs[:-1], pairs[-1:], program)


def ring_grids() -> list[np.ndarray]:
    """Three grids with coloured outlines around empty holes."""
    first_grid = np.zeros((6, 6), dtype=np.int64)
    first_grid[1:5, 1:5] = 4
    first_grid[2:4, 2:4] = 0
    second = np.zeros((5, 7), dtype=np.int64)
    second[0:5, 2:7] = 6
    second[1:4, 3:6] = 0
    second[2, 4] = 6
    third = np.zeros((5, 5), dtype=np.int64)
    third[0:3, 0:3] = 7
    third[1, 1] = 0
    third[4, 4] = 8
    return [first_grid, second, third]


def tasks_of(primitive: str, n: int, seed: int) -> list[ArcLiteTask]:
    tasks = generate_tasks(n, seed=seed, depths=(1,), primitives=[primitive])
    return [dataclasses.replace(t, id=f"{primitive}-{seed}-{i}") for i, t in enumerate(tasks)]


# prior_order


def test_uniform_prior_enumerates_every_program_once_by_length():
    ops = arclite.all_ops(["rotate", "flip"])  # 5 ops
    programs = list(prior_order(np.zeros(len(ops)), ops, 3, np.random.default_rng(0)))
    assert len(programs) == 5 + 5**2 + 5**3
    assert len(set(programs)) == len(programs)
    assert set(programs) == {p for d in (1, 2, 3) for p in itertools.product(ops, repeat=d)}
    lengths = [len(p) for p in programs]
    assert lengths == sorted(lengths)


def test_a_more_probable_op_comes_first_and_scores_never_rise():
    ops = arclite.all_ops(["rotate", "flip"])
    logprob = np.log(np.array([0.05, 0.6, 0.1, 0.15, 0.1]))
    programs = list(prior_order(logprob, ops, 3, np.random.default_rng(1)))
    assert programs[0] == (ops[1],)
    assert programs[1] == (ops[1], ops[1])  # 0.36 beats every other single op
    index = {op: i for i, op in enumerate(ops)}
    scores = [sum(logprob[index[op]] for op in program) for program in programs]
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(scores))
    assert len(set(programs)) == 5 + 25 + 125


def test_ties_are_shuffled_by_the_rng_and_reproducible_per_seed():
    ops = arclite.all_ops(["rotate", "flip"])
    logprob = np.array([0.0, 0.0, -5.0, -5.0, -5.0])  # the first two ops tie at the top
    firsts = {next(prior_order(logprob, ops, 2, np.random.default_rng(seed))) for seed in range(20)}
    assert firsts == {(ops[0],), (ops[1],)}
    uniform = np.zeros(len(ops))
    run = [list(prior_order(uniform, ops, 2, np.random.default_rng(seed))) for seed in (7, 7, 8)]
    assert run[0] == run[1]
    assert run[0] != run[2]


# abstract_program


def test_abstract_program_writes_one_routine_per_op_with_cue_and_colour_binding():
    program = (("fill_enclosed", 5), ("recolor", 2), ("rotate", 1))
    task = hand_task("t", program, ring_grids())
    annotations = abstract_program(task, program)
    assert [a["concept"] for a in annotations] == ["fill_enclosed", "recolor", "rotate"]
    assert all(a["kind"] == "routine" for a in annotations)
    # colour 5 is painted over by recolor(2): absent from the output; 2 is the output's colour
    assert annotations[0]["parameters"] == [
        {"name": "color", "typing": "color", "description": "seen as a colour absent from the output"}]
    assert annotations[1]["parameters"][0]["description"] == "seen as a colour of the output"
    assert annotations[2]["parameters"][0]["description"] == "one of 1, 2, 3"
    assert [a["implementation"] for a in annotations] == [["fill_enclosed(5)"], ["recolor(2)"], ["rotate(1)"]]
    assert annotations[0]["description"] == arclite.PRIMITIVES["fill_enclosed"].description
    # each cue describes that step's own grids: before and after the op
    inputs = [pair[0] for pair in task.train]
    after_fill = [arclite.apply_program(program[:1], g) for g in inputs]
    after_recolor = [arclite.apply_program(program[:2], g) for g in inputs]
    assert annotations[0]["cues"] == [arclite.describe_pairs(list(zip(inputs, after_fill, strict=True)))]
    assert annotations[1]["cues"] == [arclite.describe_pairs(list(zip(after_fill, after_recolor, strict=True)))]
    assert "enclosed empty cells get filled" in annotations[0]["cues"][0]
    outputs = [pair[1] for pair in task.train]
    assert annotations[2]["cues"] == [arclite.describe_pairs(list(zip(after_recolor, outputs, strict=True)))]


def test_a_one_op_programs_cue_describes_the_task():
    task = tasks_of("scale", 1, seed=3)[0]
    (annotation,) = abstract_program(task, task.program)
    assert annotation["cues"] == [arclite.describe_task(task)]
    assert annotation["parameters"][0]["description"] == "one of 2, 3"


# no memory and instance memory


def test_no_memory_arm_writes_nothing_and_keeps_its_order():
    arm = NoMemoryArm(2)
    task = tasks_of("rotate", 1, seed=0)[0]
    before = first(arm.candidates(task, np.random.default_rng(4)), 200)
    assert arm.write([(task, task.program)]) == []
    assert arm.selection(task) == []
    assert first(arm.candidates(task, np.random.default_rng(4)), 200) == before


def test_instance_arm_tries_the_nearest_solved_tasks_program_first():
    memory = generate_tasks(8, seed=3, depths=(3,))
    vectors = [tuple(feature_vector(t)) for t in memory]
    assert len(set(vectors)) == len(vectors)  # distinct features, so one task is nearest
    arm = InstanceArm(3)
    assert arm.write([(t, t.program) for t in memory]) == [t.id for t in memory]
    target = memory[5]
    query = dataclasses.replace(target, id="query")
    assert next(arm.candidates(query, np.random.default_rng(0))) == target.program
    result = search(query, arm.candidates(query, np.random.default_rng(0)), budget=5)
    assert (result.program, result.tried, result.test_correct) == (target.program, 1, True)
    # no memory does not find this depth-3 program in 100 tries
    assert search(query, NoMemoryArm(3).candidates(query, np.random.default_rng(0)), 100).program is None


def test_instance_arm_falls_back_to_the_full_enumeration():
    arm = InstanceArm(1)
    memory = tasks_of("rotate", 1, seed=0)[0]
    arm.write([(memory, memory.program)])
    candidates = list(arm.candidates(tasks_of("flip", 1, seed=0)[0], np.random.default_rng(0)))
    assert candidates[0] == memory.program
    assert set(candidates) == {(op,) for op in arclite.all_ops()}


# concept memory


def test_concept_arm_writes_only_what_it_is_given():
    arm = ConceptArm(3, top_k=2)
    assert arm.write([]) == []
    assert arm.memory.names() == []
    first_task = hand_task("t1", (("rotate", 1), ("recolor", 3)), ring_grids())
    second_task = hand_task("t2", (("rotate", 2),), ring_grids())
    assert arm.write([(first_task, first_task.program)]) == ["rotate", "recolor"]
    assert arm.write([(second_task, second_task.program)]) == ["rotate"]
    assert sorted(arm.memory.names()) == ["recolor", "rotate"]
    assert arm.memory.concepts["rotate"].used_in == ["t1", "t2"]
    assert arm.memory.concepts["recolor"].used_in == ["t1"]
    assert arm.memory.solutions["t1"].solution == "rotate(1) -> recolor(3)"
    assert set(arm.task_cues) == {"t1", "t2"}


@pytest.mark.parametrize("primitive", ["scale", "rotate", "gravity"])
def test_cue_model_ranks_the_true_primitive_first(primitive):
    arm = ConceptArm(3, top_k=2)
    memory = [t for name in ("scale", "rotate", "gravity") for t in tasks_of(name, 12, seed=1)]
    arm.write([(t, t.program) for t in memory])
    for task in tasks_of(primitive, 3, seed=2):
        scores = arm.scores(task)
        assert set(scores) == {"scale", "rotate", "gravity"}
        assert max(scores, key=scores.get) == primitive
        assert arm.selection(task)[0] == primitive


def test_a_colour_routine_learns_to_bind_an_output_colour():
    arm = ConceptArm(1, top_k=2)
    arm.write([(t, t.program) for t in tasks_of("recolor", 10, seed=1) + tasks_of("rotate", 10, seed=1)])
    assert arm.color_binding["recolor"] == [10, 10]
    assert arm.binds_output_color("recolor")
    task = tasks_of("recolor", 1, seed=5)[0]
    (color,) = {int(c) for c in np.unique(task.train[0][1]) if c != 0}
    assert task.program == (("recolor", color),)
    # bound: recolor(color) gets ~86% of recolor's prior, ahead of rotate's ops (1/3 each); unbound it would get 1/9
    assert next(arm.candidates(task, np.random.default_rng(0))) == (("recolor", color),)
    assert search(task, arm.candidates(task, np.random.default_rng(0)), 42).tried == 1
    assert search(task, NoMemoryArm(1).candidates(task, np.random.default_rng(0)), 42).tried > 1


def test_a_colour_painted_over_is_not_bound():
    arm = ConceptArm(2, top_k=2)
    program = (("fill_enclosed", 5), ("recolor", 2))
    arm.write([(hand_task("t", program, ring_grids()), program)])
    assert arm.color_binding == {"fill_enclosed": [0, 1], "recolor": [1, 1]}
    assert not arm.binds_output_color("fill_enclosed")
    assert arm.binds_output_color("recolor")


class FakeEmbedder:
    """Unit vectors: a concept's from a table by its name, every other text (a task description) the query's."""

    dim = 3

    def __init__(self, table: dict[str, list[float]], query: list[float]):
        self.table, self.query = table, query
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [self.table.get(text.split(":")[0], self.query) for text in texts]
        vectors = np.asarray(rows, dtype=np.float64)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_embedding_selector_ranks_concepts_by_cosine():
    embedder = FakeEmbedder({"rotate": [1, 0, 0], "scale": [3, 4, 0], "flip": [0, 0, 1]}, query=[4, 3, 0])
    arm = ConceptArm(3, top_k=2, selector="embedding", embedder=embedder)
    memory = [t for name in ("rotate", "scale", "flip") for t in tasks_of(name, 2, seed=1)]
    arm.write([(t, t.program) for t in memory])
    task = tasks_of("rotate", 1, seed=9)[0]
    scores = arm.scores(task)
    assert scores == pytest.approx({"rotate": 0.8, "scale": 0.96, "flip": 0.0})
    assert arm.selection(task) == ["scale", "rotate"]
    assert embedder.calls[-1] == [arclite.describe_task(task)]
    arm.selection(task)  # concept vectors are cached: only the query is embedded again
    assert len(embedder.calls[-1]) == 1 and sum(len(c) for c in embedder.calls) == 3 + 3


def test_make_arm_builds_every_arm():
    embedder = FakeEmbedder({}, query=[1, 0, 0])
    kinds = {"none": NoMemoryArm, "instance": InstanceArm, "concept": ConceptArm}
    for name, spec in ARMS.items():
        arm = make_arm(spec, max_depth=2, top_k=3, unselected_weight=0.2, embedder=embedder)
        assert type(arm) is kinds[spec.kind], name
        assert arm.max_depth == 2
        if spec.kind == "concept":
            assert (arm.top_k, arm.selector, arm.unselected_weight) == (3, spec.selector, 0.2)
    assert ARMS["concept-embedding"].selector == "embedding"
    assert [n for n, s in ARMS.items() if s.continual] == ["instance-continual", "concept-continual"]
