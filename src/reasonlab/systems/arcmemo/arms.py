"""The memory arms of the ARC-lite experiment (spec section 10): what each memory writes from a verified
program, and how it orders the enumerative search of a new task.

- none: no memory; programs by increasing length, uniformly shuffled within a length.
- instance: whole solved programs (the cheatsheet analogue); a new task tries the programs of the most similar
  solved tasks first (cosine of their train-pair features), then falls back to the no-memory order.
- concept: a `ConceptMemory` (the PS format) with one routine per primitive, written by abstracting each verified
  program into its primitives (parameters seen, cues = what each step did to its grids). Selection picks the
  top-k concepts for a new task, by cue rules (a naive-Bayes score of the task's features against the features of
  the tasks each concept was used in) or by MiniLM cosine between a description of the task and each concept's
  text; the search then enumerates programs by a prior that puts the selected primitives first.

Writes happen only for programs that reproduce every train pair; `continual` arms write held-out solves too
(batches of k through `continual.run_continual`), frozen arms keep the memory built from the seed tasks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from reasonlab.systems.arcmemo import arclite
from reasonlab.systems.arcmemo.arclite import ArcLiteTask, Program
from reasonlab.systems.arcmemo.memory import ConceptMemory, text_for_embedding

__all__ = [
    "ARMS",
    "ArmSpec",
    "ConceptArm",
    "InstanceArm",
    "NoMemoryArm",
    "abstract_program",
    "make_arm",
    "prior_order",
]

UNBOUND_SHARE = 0.02  # relative prior of a colour the learned binding rules out (kept reachable)
ArmKind = Literal["none", "instance", "concept"]
Selector = Literal["cues", "embedding"]


@dataclass(frozen=True)
class ArmSpec:
    name: str
    kind: ArmKind
    continual: bool = False
    selector: Selector = "cues"


ARMS: dict[str, ArmSpec] = {spec.name: spec for spec in (
    ArmSpec("none", "none"),
    ArmSpec("instance", "instance"),
    ArmSpec("instance-continual", "instance", continual=True),
    ArmSpec("concept", "concept"),
    ArmSpec("concept-continual", "concept", continual=True),
    ArmSpec("concept-embedding", "concept", selector="embedding"),
)}


def feature_vector(task: ArcLiteTask) -> np.ndarray:
    features = arclite.task_features(task)
    return np.asarray([float(features[name]) for name in sorted(features)], dtype=np.float64)


def fit_cue_model(memory: ConceptMemory, task_features: dict[str, np.ndarray], l2: float = 1.0, steps: int = 500,
                  learning_rate: float = 0.5) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(concept names, weights (features x concepts), biases): one L2-regularised logistic regression per concept
    predicting from a task's features whether the concept was used in it, by full-batch gradient descent."""
    ids = sorted(task_features)
    names = memory.names()
    if not ids or not names:
        return names, np.zeros((0, len(names))), np.zeros(len(names))
    features = np.stack([task_features[i] for i in ids])
    used = np.asarray([[task_id in memory.concepts[n].used_in for n in names] for task_id in ids], dtype=np.float64)
    weights = np.zeros((features.shape[1], len(names)))
    bias = np.zeros(len(names))
    for _ in range(steps):
        error = 1.0 / (1.0 + np.exp(-(features @ weights + bias))) - used
        weights -= learning_rate * (features.T @ error + l2 * weights) / len(ids)
        bias -= learning_rate * error.mean(axis=0)
    return names, weights, bias


def prior_order(op_logprob: np.ndarray, ops: Sequence[arclite.Op], max_depth: int,
                rng: np.random.Generator) -> Iterator[Program]:
    """Every program of length <= max_depth over `ops`, most probable first under independent op log-probs
    (ties broken uniformly at random); equal log-probs give the no-memory order (by length, shuffled)."""
    scores, lengths = [], []
    total = 0.0 * op_logprob
    for depth in range(1, max_depth + 1):
        total = op_logprob if depth == 1 else (total[..., None] + op_logprob).reshape(-1)
        scores.append(total.reshape(-1) - 1e-9 * depth)  # shorter first among equals
        lengths.append(np.full(total.size, depth))
    score = np.concatenate(scores)
    noise = rng.random(score.size) * 1e-12
    order = np.lexsort((noise, -score))
    offsets = np.cumsum([0] + [s.size for s in scores])
    n = len(ops)
    for flat in order:
        depth = int(np.searchsorted(offsets, flat, side="right"))
        index = int(flat - offsets[depth - 1])
        digits = []
        for _ in range(depth):
            index, digit = divmod(index, n)
            digits.append(digit)
        yield tuple(ops[d] for d in reversed(digits))


def output_colors(task: ArcLiteTask) -> set[int]:
    """Colours present in every train output (what a colour parameter can be bound to at solve time)."""
    sets = [{int(c) for c in np.unique(out) if c != 0} for _, out in task.train]
    return set.intersection(*sets) if sets else set()


def is_color_op(name: str) -> bool:
    return tuple(arclite.PRIMITIVES[name].params) == tuple(range(1, 10))


def abstract_program(task: ArcLiteTask, program: Program) -> list[dict[str, Any]]:
    """A verified program -> concept annotations, one routine per primitive (the PS write, rule-based): its
    description, a typed parameter (a colour parameter says whether it was one of the output's colours), the
    cue of what this step did to its grids, and the call as an implementation note."""
    annotations = []
    grids = [pair[0] for pair in task.train]
    bound_colors = output_colors(task)
    for name, param in program:
        primitive = arclite.PRIMITIVES[name]
        outputs = [arclite.apply_program(((name, param),), grid) for grid in grids]
        cue = arclite.describe_pairs([(g, o) for g, o in zip(grids, outputs, strict=True) if o is not None])
        if is_color_op(name):
            where = "a colour of the output" if param in bound_colors else "a colour absent from the output"
            parameter = {"name": "color", "typing": "color", "description": f"seen as {where}"}
        else:
            parameter = {"name": "param", "typing": "choice",
                         "description": f"one of {', '.join(map(str, primitive.params))}"}
        annotations.append({
            "concept": name, "kind": "routine", "routine_subtype": "grid manipulation",
            "output_typing": "grid", "description": primitive.description, "parameters": [parameter],
            "cues": [cue] if cue else [], "implementation": [f"{name}({param})"],
        })
        grids = [o for o in outputs if o is not None]
    return annotations


class NoMemoryArm:
    """No memory: the uniform enumeration every other arm falls back to."""

    def __init__(self, max_depth: int):
        self.ops = arclite.all_ops()
        self.max_depth = max_depth

    def candidates(self, task: ArcLiteTask, rng: np.random.Generator) -> Iterator[Program]:
        return prior_order(np.zeros(len(self.ops)), self.ops, self.max_depth, rng)

    def write(self, verified: list[tuple[ArcLiteTask, Program]]) -> list[str]:
        return []

    def selection(self, task: ArcLiteTask) -> list[str]:
        return []


class InstanceArm(NoMemoryArm):
    """Whole programs of solved tasks, tried nearest task first (cosine of train-pair features)."""

    def __init__(self, max_depth: int):
        super().__init__(max_depth)
        self.instances: list[tuple[str, np.ndarray, Program]] = []

    def write(self, verified: list[tuple[ArcLiteTask, Program]]) -> list[str]:
        for task, program in verified:
            self.instances.append((task.id, feature_vector(task), program))
        return [task.id for task, _ in verified]

    def candidates(self, task: ArcLiteTask, rng: np.random.Generator) -> Iterator[Program]:
        yield from self.nearest_programs(task)
        yield from NoMemoryArm.candidates(self, task, rng)

    def nearest_programs(self, task: ArcLiteTask) -> list[Program]:
        if not self.instances:
            return []
        query = feature_vector(task)
        matrix = np.stack([vector for _, vector, _ in self.instances])
        norms = np.linalg.norm(matrix, axis=1) * max(np.linalg.norm(query), 1e-12)
        similarity = matrix @ query / np.maximum(norms, 1e-12)
        order = np.argsort(-similarity, kind="stable")
        return list(dict.fromkeys(self.instances[i][2] for i in order))


class ConceptArm(NoMemoryArm):
    """A PS concept memory of primitives; selection by cue rules or embeddings puts chosen primitives first."""

    def __init__(self, max_depth: int, top_k: int, selector: Selector = "cues", unselected_weight: float = 0.05,
                 embedder: Any = None):
        super().__init__(max_depth)
        self.memory = ConceptMemory()
        self.task_cues: dict[str, np.ndarray] = {}  # task id -> its train-pair feature vector
        self._cue_model: tuple[list[str], np.ndarray, np.ndarray] | None = None
        self.top_k, self.selector, self.unselected_weight = top_k, selector, unselected_weight
        self.embedder = embedder
        self._concept_vectors: dict[str, np.ndarray] = {}
        # colour routines: [uses whose colour was one of the output's colours, uses]
        self.color_binding: dict[str, list[int]] = {}

    def write(self, verified: list[tuple[ArcLiteTask, Program]]) -> list[str]:
        items = []
        for task, program in verified:
            items.append((task.id, abstract_program(task, program)))
            self.task_cues[task.id] = feature_vector(task)
            self._count_bindings(task, program)
            self.memory.write_solution(task.id, arclite.program_text(program))
        written = self.memory.write_batch(items)
        self._concept_vectors.clear()
        self._cue_model = None
        return written

    def _count_bindings(self, task: ArcLiteTask, program: Program) -> None:
        bound = output_colors(task)
        for name, param in program:
            if is_color_op(name):
                counts = self.color_binding.setdefault(name, [0, 0])
                counts[0] += int(param in bound)
                counts[1] += 1

    def binds_output_color(self, name: str, threshold: float = 0.8) -> bool:
        """Did this colour routine take one of the output's colours in at least `threshold` of its uses?"""
        hits, uses = self.color_binding.get(name, [0, 0])
        return uses > 0 and hits / uses >= threshold

    def scores(self, task: ArcLiteTask) -> dict[str, float]:
        """Each concept's selection score for `task` (higher first)."""
        if self.selector == "embedding":
            return self._embedding_scores(task)
        return self._cue_scores(task)

    def _cue_scores(self, task: ArcLiteTask) -> dict[str, float]:
        """Logit of a per-concept logistic model of the task's features, fitted on the memory's tasks (a task is
        a positive example of every concept in its `used_in`); refitted after each write."""
        if self._cue_model is None:
            self._cue_model = fit_cue_model(self.memory, self.task_cues)
        names, weights, bias = self._cue_model
        if not names:
            return {}
        logits = feature_vector(task) @ weights + bias
        return {name: float(logit) for name, logit in zip(names, logits, strict=True)}

    def _embedding_scores(self, task: ArcLiteTask) -> dict[str, float]:
        names = self.memory.names()
        if not names:
            return {}
        missing = [n for n in names if n not in self._concept_vectors]
        if missing:
            vectors = self.embedder.embed([text_for_embedding(self.memory.concepts[n]) for n in missing])
            self._concept_vectors.update(zip(missing, vectors, strict=True))
        query = self.embedder.embed([arclite.describe_task(task)])[0]
        return {n: float(self._concept_vectors[n] @ query) for n in names}

    def selection(self, task: ArcLiteTask) -> list[str]:
        scores = self.scores(task)
        return sorted(scores, key=lambda n: (-scores[n], n))[: self.top_k]

    def candidates(self, task: ArcLiteTask, rng: np.random.Generator) -> Iterator[Program]:
        selected = set(self.selection(task))
        weight = {name: 1.0 if name in selected else self.unselected_weight for name in arclite.PRIMITIVES}
        total = sum(weight.values())
        bound = output_colors(task)
        logprob = np.asarray([math.log(weight[name] / total * self._param_share(name, param, bound))
                              for name, param in self.ops])
        return prior_order(logprob, self.ops, self.max_depth, rng)

    def _param_share(self, name: str, param: Any, bound: set[int]) -> float:
        """The share of its primitive's prior an op gets: uniform over the parameters, except that a colour
        routine learned to take an output colour puts (nearly) all its mass on the task's output colours."""
        params = arclite.PRIMITIVES[name].params
        if not (is_color_op(name) and bound and self.binds_output_color(name)):
            return 1.0 / len(params)
        inside = UNBOUND_SHARE if param not in bound else 1.0
        return inside / (len(bound) + UNBOUND_SHARE * (len(params) - len(bound)))


def make_arm(spec: ArmSpec, max_depth: int, top_k: int, unselected_weight: float, embedder: Any = None) -> Any:
    if spec.kind == "none":
        return NoMemoryArm(max_depth)
    if spec.kind == "instance":
        return InstanceArm(max_depth)
    return ConceptArm(max_depth, top_k, spec.selector, unselected_weight, embedder)
