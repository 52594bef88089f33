"""A test that needs one of koner's extras (pyproject.toml) skips, naming the extra, where it is not installed:
`pip install '.[test]'` alone gives a green run, its skips saying what to install for the rest."""
from __future__ import annotations

import importlib.util
import types

import pytest

# the first part of a module's name -> the extra that installs it
EXTRAS = {
    "torch": "export", "transformers": "export", "optimum": "export", "onnx": "export", "safetensors": "export",
    "koner_export": "export", "matplotlib": "export",
    "uvicorn": "serve", "starlette": "serve", "prometheus_client": "serve", "httptools": "serve",
    "pyarrow": "dataset", "ray": "ray", "pyspark": "spark", "spacy": "spacy",
    "mkdocs": "docs", "mkdocstrings": "docs",
    "httpx": "test", "hypothesis": "test", "selenium": "test", "schemathesis": "test", "mypy": "test",
}


def extra_of(module: str) -> str:
    """The extra that installs `module` (a KeyError for a module no extra installs: add it to EXTRAS)."""
    return EXTRAS[module.split(".")[0]]


def reason(module: str) -> str:
    """The skip reason for a missing `module`: the extra to install, then the module."""
    return f"needs koner[{extra_of(module)}] ({module} is not installed)"


def needs(module: str) -> types.ModuleType:
    """`module`, imported; skips the calling test, or the module at import time, naming its extra if it is absent."""
    __tracebackhide__ = True  # the skip is reported at the caller's line, not here
    return pytest.importorskip(module, reason=reason(module))


def has(module: str) -> bool:
    """Whether `module` is installed (without importing it), for a skipif mark or a parameter's skip."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
