"""Every prompt of ArcMemo, as templates: PS preprocessing and abstraction, OE lesson writing, both
selections, and the solve prompt with its retry section.

The embedded model (Gemma-3-270M) is a base model, so the JSON programs are few-shot completions ending in
`JSON: ` whose reply is forced into a bounded schema (the demonstrations' replies are dicts, printed with the
separators constrained decoding enforces), and the solve prompt ends inside a python fence where a
regex forces `def transform(input_grid):`. The paper's prompts (long instructions for o4-mini and GPT-4.1,
YAML replies) are condensed to the same inputs and outputs; the worked examples are our own.
"""

from __future__ import annotations

__all__ = [
    "ABSTRACT_CONCEPTS",
    "ABSTRACT_DEMO",
    "COLOR_NAMES",
    "EMPTY_MEMORY",
    "EXTRACT_LESSONS",
    "HINT_BLOCK",
    "LESSONS_DEMO",
    "NO_CODE",
    "RETRY_BLOCK",
    "RETRY_ERROR_LINE",
    "RETRY_MISMATCH",
    "SELECT_CONCEPTS",
    "SELECT_DEMO",
    "SELECT_LESSONS",
    "SELECT_LESSONS_DEMO_REPLY",
    "SOLVE",
    "SOLVE_HEADER",
    "SUMMARIZE_DEMO",
    "SUMMARIZE_SOLUTION",
    "TASK_EMBEDDING_TEXT",
]

# what a memory shows when it holds nothing
EMPTY_MEMORY = "(empty)"

# the worked example every write prompt starts from: a puzzle solved by mirroring and recolouring
_DEMO_CODE = """def transform(input_grid):
    grid = np.fliplr(input_grid)
    grid[grid == 1] = 2
    return grid"""

SUMMARIZE_DEMO = {
    "code": _DEMO_CODE,
    "reply": {"summary": "mirror the grid left to right, then paint the blue cells red",
              "pseudocode": ["mirror the grid across its vertical axis",
                             "recolor every cell of color 1 to color 2"]},
}

SUMMARIZE_SOLUTION = """Describe what a puzzle solution does: a one-line summary and short pseudocode steps
that talk about objects, colors and shapes rather than numpy calls.

Solution:
{demo_code}
JSON: {demo_reply}

Solution:
{code}
JSON: """

ABSTRACT_DEMO = {
    "memory": """## grid manipulation routines
- concept: color mapping
  description: replace each color by another one
  parameters:
    - mapping (type: dict[color, color])""",
    "summary": "mirror the grid left to right, then paint the blue cells red",
    "pseudocode": "1. mirror the grid across its vertical axis\n2. recolor every cell of color 1 to color 2",
    "reply": {"concepts": [
        {"concept": "mirror grid", "kind": "routine", "routine_subtype": "grid manipulation",
         "output_typing": "grid",
         "parameters": [{"name": "axis", "typing": "vertical | horizontal",
                         "description": "the mirror line"}],
         "description": "reflect the whole grid across an axis",
         "cues": ["output rows are input rows reversed"],
         "implementation": ["np.fliplr or np.flipud"]},
        # a reused name: only what is new for it
        {"concept": "color mapping", "kind": "routine", "routine_subtype": "", "output_typing": "",
         "parameters": [], "description": "", "cues": ["same shapes, other colors"], "implementation": []},
    ]},
}

ABSTRACT_CONCEPTS = """Turn a solved puzzle into reusable concepts for a memory. Reuse the exact name of a
concept already in memory (add only new cues or notes); give a new idea a short general name; leave out what
only fits this puzzle. kind is structure (something seen in the grids) or routine (a step of a program).

Memory:
{demo_memory}
Summary: {demo_summary}
Pseudocode:
{demo_pseudocode}
JSON: {demo_reply}

Memory:
{memory}
Summary: {summary}
Pseudocode:
{pseudocode}
JSON: """

LESSONS_DEMO = {
    "solution": _DEMO_CODE,
    "reply": {"lessons": [
        {"situation": "the output holds the input shapes reversed left to right",
         "suggestion": "mirror the grid across its vertical axis"},
        {"situation": "one input color is replaced by another everywhere",
         "suggestion": "build a color map from the examples and apply it"},
    ]},
}

EXTRACT_LESSONS = """Write the key lessons of a solved puzzle for future puzzles: each lesson says which
situation to look for and what to do. Turn fixed colors and counts into general words.

Solution:
{demo_solution}
JSON: {demo_reply}

Solution:
{solution}
JSON: """

# the selection demonstration: a tiny puzzle (grids formatted like every task's) and the reply it deserves
SELECT_DEMO = {
    "memory": """## grid manipulation routines
- concept: mirror grid
  description: reflect the whole grid across an axis
lower usage concepts: [color mapping, crop to object]""",
    "train": [([[1, 0, 0], [2, 0, 0]], [[0, 0, 1], [0, 0, 2]])],
    "test_inputs": [[[3, 0], [0, 0]]],
    "reply": {"names": ["mirror grid"], "notes": "each row is reversed"},
}

SELECT_CONCEPTS = """Pick the memory concepts that help solve a puzzle, by exact name, with a short note.

Memory:
{demo_memory}

Puzzle:
{demo_grids}
JSON: {demo_reply}

Memory:
{memory}

Puzzle:
{grids}
JSON: """

# the lesson-selection demonstration's reply (its lessons are in SELECT_LESSONS, its grids in SELECT_DEMO)
SELECT_LESSONS_DEMO_REPLY = {"lessons": [1]}

SELECT_LESSONS = """Pick the numbers of the lessons that help solve a puzzle.

Lessons:
lesson 1.
  situation: each output row is the input row reversed
  suggestion: mirror the grid left to right
lesson 2.
  situation: the output is larger than the input
  suggestion: tile or scale the input

Puzzle:
{demo_grids}
JSON: {demo_reply}

Lessons:
{lessons}

Puzzle:
{grids}
JSON: """

# the solve prompt's hint block (left out when there is no hint)
HINT_BLOCK = """Hints from memory:
{hint}

"""

# what the model writes after: the fence and the import are in the prompt, so its code needs no import
SOLVE_HEADER = "import numpy as np\n\n"

SOLVE = """You are an expert puzzle solver and Python programmer. Each puzzle maps input grids to output
grids; numbers 0-9 are color labels, not quantities. Find the rule that turns every example input into its
output and write it as a function transform(input_grid) that takes and returns a numpy array.

{grids}

{hint}{retry}Solution:
```python
{header}"""

RETRY_BLOCK = """Your previous attempt:
```python
{code}
```
{problems}Revise the hypothesis or the code.

"""

# one line per execution problem of the previous attempt, then one block per wrong train output
RETRY_ERROR_LINE = "Error on {where}: {error}\n"
RETRY_MISMATCH = """Example {index}: your output
{got}
expected
{expected}
"""
# the code line of a previous attempt that had no code
NO_CODE = "(no code)"

# the text a task is embedded as, for the embedding-selection baseline
TASK_EMBEDDING_TEXT = "grid puzzle: {shape}; input colors {colors_in}; output colors {colors_out}"
# ARC's usual names of the colors 0-9
COLOR_NAMES = ("black", "blue", "red", "green", "yellow", "gray", "magenta", "orange", "azure", "maroon")
