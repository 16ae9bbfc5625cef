"""Every Lua script the store runs, one file each beside this module, and the one loader for them.

Why scripts: each step that touches several keys runs as one script (one round trip, atomic) rather
than a command or a pipeline each; a round trip costs the web tier ~0.1 ms of CPU in redis-py, where
Redis runs a script in microseconds. Why files: a script is read and tested as what it is (each has its
own test in tests/test_store_scripts.py, against a real Redis), and grep finds its keys in keys.py.

A script may start with `--! include NAME` lines: NAME.lua (shared Lua, e.g. `clock`) is put in its
place. The source is read once per process.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import redis
from redis.commands.core import Script

HERE = Path(__file__).resolve().parent
_INCLUDE = re.compile(r"^--! include (\w+)$", re.M)


@cache
def source(name: str) -> str:
    """The Lua of scripts/NAME.lua, its includes put in."""
    text = (HERE / f"{name}.lua").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda m: (HERE / f"{m.group(1)}.lua").read_text(encoding="utf-8"), text)


def names() -> list[str]:
    """Every script that can be loaded (the included pieces, which run only inside another, aside)."""
    return sorted(p.stem for p in HERE.glob("*.lua") if p.stem not in INCLUDED_ONLY)


INCLUDED_ONLY = frozenset({"clock", "deletion_queue"})   # pieces put into other scripts, never run alone


def load(client: redis.Redis, name: str) -> Script:
    """scripts/NAME.lua registered on `client` (EVALSHA, loaded again if Redis lost it)."""
    return client.register_script(source(name))
