"""Data sources shared by several systems (sudoku, maze, arc, arithmetic chains, ...)."""
