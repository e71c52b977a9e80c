"""Lua scripting: EVAL/EVALSHA, SCRIPT, FUNCTION/FCALL, on a sandboxed Lua 5.1 (lupa).

``get_scripting(node)`` gives the node's scripting state, created on first use.
"""

from node.scripting.engine import Scripting, ScriptClient, get_scripting

__all__ = ["Scripting", "ScriptClient", "get_scripting"]
