"""Shared fixtures: the bundled model, the stand-in checkpoint and an fp32 export of it (helpers: `support`)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import STANDIN
from support.extras import needs


@pytest.fixture(scope="session")
def ner():
    from koner import NER

    return NER.load()


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """The stand-in exported with --keep-fp32 and no parity run (the parity tests run it themselves)."""
    needs("torch")
    from koner_export import export_model

    out = tmp_path_factory.mktemp("export") / "standin"
    export_model(str(STANDIN), out, keep_fp32=True, parity=False)
    return out


@pytest.fixture
def model_copy(tmp_path) -> Path:
    """A private copy of the bundled model folder, to damage."""
    from koner.ner import DEFAULT_MODEL

    dst = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, dst)
    return dst
