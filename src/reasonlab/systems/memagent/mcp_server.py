"""An MCP server with one tool, `use_memory_agent(question) -> str` (spec §10), over stdio.

    reasonlab memagent serve-mcp --memory ~/memory --llm hf:embedded

Each call builds a new `Agent` on the memory folder, appends the privacy rules of `<memory>/.filters` (if
any) as a `<filter>` block, runs the loop and returns only the reply. Calls are served one at a time: the
LLM and the memory folder are shared. Built on the official SDK (`mcp.server.mcpserver.MCPServer`, the
FastMCP of mcp 1.x). Only the stdio transport is offered: no network listener, so no token to guard.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

from reasonlab.llm import LLM
from reasonlab.systems.memagent.agent import Agent, AgentConfig
from reasonlab.systems.memagent.memory import Memory, MemoryLimits

__all__ = ["FILTERS_FILE", "TOOL_DESCRIPTION", "answer_question", "build_server", "read_filters"]

FILTERS_FILE = ".filters"
TOOL_DESCRIPTION = ("Ask the user's memory agent. It reads and updates the user's markdown memory (facts about "
                    "the user and the people, places and organisations in their life) and answers in plain text. "
                    "Pass the user's message unchanged.")
NO_REPLY = "The memory agent reached its turn limit without an answer; try asking more specifically."


def read_filters(memory_dir: Path | str) -> str | None:
    """The privacy rules in `<memory_dir>/.filters`, or None (a symlink or a non-file is ignored)."""
    path = Path(memory_dir) / FILTERS_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        text = handle.read(100_000).decode("utf-8", errors="replace").strip()
    return text or None


def answer_question(question: str, memory_dir: Path | str, llm: LLM, config: AgentConfig | None = None,
                    limits: MemoryLimits | None = None) -> str:
    """One call of the tool: a fresh Agent on the memory folder, with its filters; the reply only."""
    agent = Agent(llm, Memory(memory_dir, limits), config)
    result = agent.run(question, filters=read_filters(memory_dir))
    return result.reply if result.reply is not None else NO_REPLY


def build_server(memory_dir: Path | str, llm: LLM, config: AgentConfig | None = None,
                 limits: MemoryLimits | None = None) -> Any:
    """An `MCPServer` exposing `use_memory_agent`; call `.run("stdio")` on it."""
    from mcp.server.mcpserver import MCPServer

    Memory(memory_dir, limits)  # a missing folder is a user error now, not at the first call
    config = config or AgentConfig(max_turns=20)
    lock = threading.Lock()
    server = MCPServer("reasonlab-memagent", instructions="Long-term memory of the user: call use_memory_agent "
                                                          "to recall or store facts about the user.")

    def use_memory_agent(question: str) -> str:
        with lock:
            return answer_question(question, memory_dir, llm, config, limits)

    server.add_tool(use_memory_agent, name="use_memory_agent", description=TOOL_DESCRIPTION)
    return server
