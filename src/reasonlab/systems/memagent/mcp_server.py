"""An MCP server with one tool, `use_memory_agent(question) -> str` (spec §10), over stdio.

    reasonlab memagent serve-mcp --memory ~/memory --llm hf:embedded

Each call builds a new `Agent` on the memory folder, appends the privacy rules of `<memory>/.filters` (if
any) as a `<filter>` block, runs the loop and returns only the reply. An unreadable `.filters` file stops the
server at start (one-line error), and fails any later call instead of answering without the rules. Calls are served one at a time: the
LLM and the memory folder are shared. Built on the official SDK (`mcp.server.mcpserver.MCPServer`, the
FastMCP of mcp 1.x). Only the stdio transport is offered: no network listener, so no token to guard.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm import LLM
from reasonlab.systems.memagent import prompts
from reasonlab.systems.memagent.agent import Agent, AgentConfig
from reasonlab.systems.memagent.memory import Memory, MemoryLimits

__all__ = ["FILTERS_FILE", "answer_question", "build_server", "read_filters"]

FILTERS_FILE = ".filters"
MAX_FILTERS_BYTES = 100_000
def read_filters(memory_dir: Path | str) -> str | None:
    """The privacy rules in `<memory_dir>/.filters`, or None when there is none. A symlink or a non-file there is
    ignored; a file that cannot be read (permissions, not UTF-8, over 100 kB) is a UserError, since answering
    without its rules could reveal what they forbid."""
    path = Path(memory_dir) / FILTERS_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink: never followed
            return None
        raise _unreadable(path, error.strerror or str(error)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, a FIFO, a device: ignored
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_FILTERS_BYTES + 1)
        except OSError as error:
            raise _unreadable(path, error.strerror or str(error)) from None
    if len(data) > MAX_FILTERS_BYTES:
        raise _unreadable(path, f"it is over {MAX_FILTERS_BYTES // 1000} kB")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _unreadable(path, "it is not UTF-8 text") from None
    return text or None


def _unreadable(path: Path, why: str) -> UserError:
    return UserError(f"privacy rules {path} cannot be read ({why}): fix or remove the file; the memory agent does "
                     f"not answer without its filters")


def answer_question(question: str, memory_dir: Path | str, llm: LLM, config: AgentConfig | None = None,
                    limits: MemoryLimits | None = None) -> str:
    """One call of the tool: a fresh Agent on the memory folder, with its filters; the reply only."""
    agent = Agent(llm, Memory(memory_dir, limits), config)
    result = agent.run(question, filters=read_filters(memory_dir))
    return result.reply if result.reply is not None else prompts.NO_REPLY


def build_server(memory_dir: Path | str, llm: LLM, config: AgentConfig | None = None,
                 limits: MemoryLimits | None = None) -> Any:
    """An `MCPServer` exposing `use_memory_agent`; call `.run("stdio")` on it."""
    from mcp.server.mcpserver import MCPServer

    Memory(memory_dir, limits)  # a missing folder is a user error now, not at the first call
    read_filters(memory_dir)  # so is an unreadable .filters file
    config = config or AgentConfig(max_turns=20)
    lock = threading.Lock()
    server = MCPServer("reasonlab-memagent", instructions=prompts.SERVER_INSTRUCTIONS)

    def use_memory_agent(question: str) -> str:
        with lock:
            return answer_question(question, memory_dir, llm, config, limits)

    server.add_tool(use_memory_agent, name="use_memory_agent", description=prompts.TOOL_DESCRIPTION)
    return server
