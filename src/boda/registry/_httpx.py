"""httpx, imported without its command-line client: every boda module takes httpx from here.

httpx imports `httpx._main` (click, pygments and rich) whenever those happen to be installed, which
doubles its import time (measured: 128 ms -> 67 ms without it; bench/RESULTS.md table 1b). boda
never runs httpx's CLI: while httpx loads, a None entry makes that one import fail (httpx then
defines a stub `httpx.main` saying the CLI is not installed), and the entry goes once it has.
"""

from __future__ import annotations

import sys

__all__ = ["httpx"]

if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        del sys.modules["httpx._main"]

import httpx as httpx
