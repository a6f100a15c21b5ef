"""Errors a user can cause. The CLI prints them as one line and exits 2, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (file, spec, config, server) and how to fix it, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
