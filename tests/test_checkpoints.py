"""Content-addressed checkpoints through fsspec: a local folder and the memory filesystem."""

from __future__ import annotations

import hashlib
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest

from neurfly.checkpoints import CheckpointCorrupted, CheckpointStore, load_checkpoint

STATE = {"step": 3, "weights": np.arange(12, dtype=np.float32).reshape(3, 4), "optimizer": {"lr": 0.01}}
PREFIX = "search-1/trial-7"


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A folder of fsspec's process-wide memory filesystem, removed afterwards."""
    root = f"memory://checkpoints-{uuid.uuid4().hex}"
    yield root
    filesystem = fsspec.filesystem("memory")
    if filesystem.exists(root):
        filesystem.rm(root, recursive=True)


@pytest.fixture(params=["local", "file-url", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "checkpoints")
    if request.param == "file-url":
        return f"file://{tmp_path / 'checkpoints'}"
    return request.getfixturevalue("memory_root")


def overwrite(uri: str, payload: bytes) -> None:
    with fsspec.open(uri, "wb") as handle:
        handle.write(payload)


def files_under(root: str) -> list[str]:
    filesystem, path = fsspec.core.url_to_fs(root)
    return list(filesystem.find(path))


def test_round_trip_restores_state(root: str) -> None:
    saved = CheckpointStore(root).save(PREFIX, STATE)

    loaded = load_checkpoint(saved.uri, saved.digest)

    assert loaded["step"] == 3
    assert loaded["optimizer"] == {"lr": 0.01}
    np.testing.assert_array_equal(loaded["weights"], STATE["weights"])


def test_uri_names_content_digest(root: str) -> None:
    saved = CheckpointStore(root).save(PREFIX, STATE)
    expected = hashlib.sha256(pickle.dumps(STATE, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()

    assert saved.digest == f"sha256:{expected}"
    assert saved.uri == f"{root}/{PREFIX}/{expected}.pkl"
    assert saved.size_bytes == len(pickle.dumps(STATE, protocol=pickle.HIGHEST_PROTOCOL))


def test_same_state_same_uri(root: str) -> None:
    store = CheckpointStore(root)

    first = store.save(PREFIX, STATE)
    second = store.save(PREFIX, dict(STATE))

    assert first == second
    assert len(files_under(root)) == 1


def test_different_states_different_uris(root: str) -> None:
    store = CheckpointStore(root)

    first = store.save(PREFIX, {"step": 1})
    second = store.save(PREFIX, {"step": 2})

    assert first.uri != second.uri
    assert load_checkpoint(first.uri, first.digest) == {"step": 1}
    assert load_checkpoint(second.uri, second.digest) == {"step": 2}


def test_no_temporary_files_left(root: str) -> None:
    store = CheckpointStore(root)
    for step in range(3):
        store.save(PREFIX, {"step": step})

    assert all(path.endswith(".pkl") for path in files_under(root))


def test_corrupted_bytes_detected(root: str) -> None:
    saved = CheckpointStore(root).save(PREFIX, STATE)
    overwrite(saved.uri, b"not the saved state")

    with pytest.raises(CheckpointCorrupted) as raised:
        load_checkpoint(saved.uri, saved.digest)

    assert saved.uri in str(raised.value)
    assert saved.digest.removeprefix("sha256:") in str(raised.value)


def test_truncated_file_detected(root: str) -> None:
    saved = CheckpointStore(root).save(PREFIX, STATE)
    with fsspec.open(saved.uri, "rb") as handle:
        payload = handle.read()
    overwrite(saved.uri, payload[: len(payload) // 2])

    with pytest.raises(CheckpointCorrupted):
        load_checkpoint(saved.uri, saved.digest)


@pytest.mark.parametrize("digest", ["md5:0123abcd", "sha1:0123abcd", "0123abcd"])
def test_unsupported_algorithm_rejected(root: str, digest: str) -> None:
    saved = CheckpointStore(root).save(PREFIX, STATE)

    with pytest.raises(CheckpointCorrupted, match="sha256"):
        load_checkpoint(saved.uri, digest)


def test_missing_checkpoint_raises_not_found(root: str) -> None:
    with pytest.raises(FileNotFoundError):
        load_checkpoint(f"{root}/{PREFIX}/{'0' * 64}.pkl", f"sha256:{'0' * 64}")


def test_save_repairs_corrupted_copy(root: str) -> None:
    # Saving the same state again must leave a readable checkpoint, even if
    # the stored copy under that content address was damaged meanwhile.
    store = CheckpointStore(root)
    saved = store.save(PREFIX, STATE)
    overwrite(saved.uri, b"damaged")

    again = store.save(PREFIX, STATE)

    assert load_checkpoint(again.uri, again.digest)["step"] == 3


def test_delete_removes_checkpoint(root: str) -> None:
    store = CheckpointStore(root)
    saved = store.save(PREFIX, STATE)

    store.delete(saved.uri)
    store.delete(saved.uri)

    with pytest.raises(FileNotFoundError):
        load_checkpoint(saved.uri, saved.digest)
