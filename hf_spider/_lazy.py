"""The lazy exports of a package whose modules import heavy libraries (PEP 562).

``hf_spider.rerank`` and ``hf_spider.metarecords`` offer their public API at the top of the package, but importing the
package (which importing any of its modules does first) must not import torch, transformers or datasets. Both look a
name up in a table and import the module that defines it on first use: this is that look-up, once for both.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``package.<exports[name]>`` when ``name`` is first read.

    Args:
        package: the package's ``__name__``.
        exports: public name -> the submodule (relative to ``package``) that defines it.

    A name not in ``exports`` raises ``AttributeError``, worded as Python words a missing module attribute.
    """

    def module_getattr(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return module_getattr
