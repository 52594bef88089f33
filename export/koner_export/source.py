"""SOURCE (a local folder or a hub model id) -> a local checkpoint folder."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from .errors import HubUnreachableError, SourceNotFoundError

HUB_FILES = ["config.json", "*.safetensors", "pytorch_model.bin", "vocab.txt", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve(source: str, revision: Optional[str] = None) -> tuple[Path, dict]:
    """A local folder holding the checkpoint, and a description of where it came from."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path, {"kind": "folder", "path": source}
    if path.exists():
        raise SourceNotFoundError(f"{source}: is a file, not a model folder; give the folder that holds config.json")
    looks_like_path = source.startswith((".", "/", "~")) or os.sep in source.strip("/").replace("/", "", 1)
    if looks_like_path or not _HUB_ID.match(source):
        raise SourceNotFoundError(f"{source}: no such folder (and not a hub id like 'owner/name'); "
                                  "check the path")
    return _download(source, revision), {"kind": "hub", "id": source, "revision": revision or "main"}


def _download(repo_id: str, revision: Optional[str]) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except RevisionNotFoundError:
        raise SourceNotFoundError(f"{repo_id}: the hub has no revision {revision!r}; check --revision") from None
    except (RepositoryNotFoundError, GatedRepoError):
        raise SourceNotFoundError(f"{repo_id}: no such model on the hub (or it is private/gated: log in with "
                                  "`huggingface-cli login`); check the id") from None
    except (LocalEntryNotFoundError, OSError) as exc:
        raise HubUnreachableError(
            f"{repo_id}: cannot reach the Hugging Face hub ({type(exc).__name__}); download the model folder "
            f"on a machine with access (e.g. `huggingface-cli download {repo_id} --local-dir DIR`) and run "
            "`koner export DIR -o OUT_DIR`") from None
