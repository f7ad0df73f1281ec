"""Content-addressed checkpoints written through fsspec.

A checkpoint's name is the SHA-256 of its bytes, so saving the same state
twice stores it once and a reader can verify what it loads. Any fsspec URL
works: a local folder today, object storage in production.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from neurfly.errors import NeurflyError

_logger = logging.getLogger(__name__)

DIGEST_ALGORITHM = "sha256"


@dataclass(frozen=True)
class SavedCheckpoint:
    uri: str
    digest: str
    size_bytes: int


class CheckpointCorrupted(NeurflyError):
    """The bytes read back do not match the checkpoint's recorded digest."""


class CheckpointStore:
    """Saves and loads pickled trial state under ``root``.

    Args:
        root: A folder path or fsspec URL (``file:///...``, ``s3://bucket/prefix``).
    """

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._fs, self._base = url_to_fs(self.root)

    def save(self, prefix: str, state: Any) -> SavedCheckpoint:
        """Serialise ``state`` and write it as ``<root>/<prefix>/<sha256>.pkl``.

        The file is written under a temporary name and then moved into place,
        so a reader never sees a partial checkpoint.
        """
        payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        hexdigest = hashlib.sha256(payload).hexdigest()
        folder = f"{self._base}/{prefix}"
        path = f"{folder}/{hexdigest}.pkl"
        uri = f"{self.root}/{prefix}/{hexdigest}.pkl"

        # An existing file of the right size is this content; anything else (a
        # damaged copy) is rewritten.
        if not self._fs.exists(path) or self._fs.size(path) != len(payload):
            self._fs.makedirs(folder, exist_ok=True)
            temporary = f"{path}.tmp-{os.getpid()}"
            with self._fs.open(temporary, "wb") as handle:
                handle.write(payload)
            self._fs.mv(temporary, path)
        return SavedCheckpoint(uri=uri, digest=f"{DIGEST_ALGORITHM}:{hexdigest}", size_bytes=len(payload))

    def delete(self, uri: str) -> None:
        fs, path = url_to_fs(uri)
        if fs.exists(path):
            fs.rm(path)


def load_checkpoint(uri: str, digest: str | None = None) -> Any:
    """Read and unpickle the checkpoint at ``uri``, verifying ``digest`` when given.

    Raises:
        CheckpointCorrupted: The bytes do not hash to ``digest``.
        FileNotFoundError: Nothing is stored at ``uri``.
    """
    with fsspec.open(uri, "rb") as handle:
        payload = handle.read()
    if digest is not None:
        algorithm, _, expected = digest.partition(":")
        if algorithm != DIGEST_ALGORITHM:
            raise CheckpointCorrupted(f"checkpoint {uri} has a {algorithm!r} digest; only {DIGEST_ALGORITHM} is supported")
        actual = hashlib.sha256(payload).hexdigest()
        if actual != expected:
            raise CheckpointCorrupted(f"checkpoint {uri} is corrupted: expected sha256 {expected}, read {actual}")
    return pickle.loads(payload)  # noqa: S301 - checkpoints are written by the team's own trials
