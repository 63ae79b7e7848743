"""Modules loaded when first used, so that a quiet check pays only for what it runs.

A check runs every minute; most of them change nothing and never verify work, read an
agent's last words, or restart anything. The modules for those load on first use
(importlib's LazyLoader). Importers write, for their type checker's sake:

    if TYPE_CHECKING:
        from heartbeat import verify
    else:
        verify = lazy.module("heartbeat.verify")
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def module(name: str) -> ModuleType:
    """`name`, imported; its code runs the first time one of its names is looked up."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    found = importlib.util.module_from_spec(spec)
    sys.modules[name] = found
    loader.exec_module(found)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, found)  # as `import` does
    return found
