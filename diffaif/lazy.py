"""Names a package exports without importing their modules until first use (PEP 562)."""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_attributes(package: str, exports: dict[str, str | tuple[str, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a public name to its module (the
    attribute of the same name) or to (module, attribute). The value is cached in the package, so later
    accesses skip the function."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = exports[name] if isinstance(exports[name], tuple) else (exports[name], name)
        value = getattr(importlib.import_module(module), attribute)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
