"""Version ids of datasets: computed by NeurFly, or read from DVC or lakeFS.

A version id is ``algorithm:digest``. The algorithm is stored beside the
digest, and two ids are equal only when both parts are equal, so a DVC md5
is never compared with a SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from neurfly.errors import DataError, NeurflyError
from neurfly.governance.models import HashAlgorithm, VersionSource

_logger = logging.getLogger(__name__)

FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Label column names tried, in order, when the registration names none; else the last column.
DEFAULT_LABEL_COLUMNS = ("label", "target", "y", "class")
LAKEFS_COMMIT = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class VersionInfo:
    """A dataset version before it is registered: its id and where to read it."""

    algorithm: HashAlgorithm
    digest: str
    source: VersionSource
    uri: str | None = None
    format: str | None = None
    label_column: str | None = None
    rows: int | None = None
    size_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"{self.algorithm.value}:{self.digest}"


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of every byte of ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_READ_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_format(path: str | Path) -> str:
    """Return ``csv`` or ``parquet`` from the file's suffix.

    Raises:
        DataError: Another suffix.
    """
    suffix = PurePosixPath(str(path)).suffix.lower()
    fmt = FILE_FORMATS.get(suffix)
    if fmt is None:
        raise DataError(f"cannot tell the format of {path}: suffix {suffix!r} is not one of {', '.join(FILE_FORMATS)}")
    return fmt


def file_version(path: str | Path, label_column: str | None = None) -> VersionInfo:
    """Hash a local CSV or Parquet file and read its columns and row count.

    Raises:
        DataError: The file is missing, of another format, has no rows, or
            lacks ``label_column``.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DataError(f"file not found: {path}; give the path of a CSV or Parquet file")
    fmt = file_format(path)
    columns, rows = _csv_shape(path) if fmt == "csv" else _parquet_shape(path)
    if rows == 0:
        raise DataError(f"{path} has a header but no rows; register a file with data")
    label = choose_label_column(columns, label_column, str(path))
    return VersionInfo(
        HashAlgorithm.SHA256, sha256_file(path), VersionSource.FILE, uri=str(path), format=fmt,
        label_column=label, rows=rows, size_bytes=path.stat().st_size, details={"columns": columns},
    )


def choose_label_column(columns: list[str], requested: str | None, where: str) -> str:
    """Return the label column: ``requested``, else a conventional name, else the last column.

    Raises:
        DataError: ``requested`` is not a column, or there is only one column.
    """
    if len(columns) < 2:
        raise DataError(f"{where} has {len(columns)} column(s); a dataset needs feature columns and a label column")
    if requested is not None:
        if requested not in columns:
            raise DataError(f"{where} has no column {requested!r}; its columns are {', '.join(columns)}")
        return requested
    for name in DEFAULT_LABEL_COLUMNS:
        if name in columns:
            return name
    return columns[-1]


def _csv_shape(path: Path) -> tuple[list[str], int]:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty; a CSV file needs a header row of column names")
        rows = sum(1 for row in reader if row)
    return [name.strip() for name in header], rows


def _parquet_shape(path: Path) -> tuple[list[str], int]:
    parquet = import_pyarrow_parquet(str(path))
    metadata = parquet.ParquetFile(path).metadata
    return list(metadata.schema.names), metadata.num_rows


def import_pyarrow_parquet(what: str) -> Any:
    """Import ``pyarrow.parquet``.

    Raises:
        DataError: pyarrow is not installed; CSV files work without it.
    """
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError(f"reading {what} needs pyarrow, which is not installed; pip install pyarrow, or use CSV") from None
    return parquet


def sklearn_version(name: str) -> VersionInfo:
    """Hash one of the scikit-learn sets bundled with NeurFly (``digits`` or ``sklearn:digits``).

    Raises:
        DataError: ``name`` is not a bundled set.
    """
    from neurfly.workloads.data import _LOADERS, available_datasets, content_hash

    key = name if name.startswith("sklearn:") else f"sklearn:{name}"
    loader = _LOADERS.get(key)
    if loader is None:
        raise DataError(f"{name!r} is not a bundled scikit-learn set; choose one of {', '.join(available_datasets())}")
    x, y = loader(return_X_y=True)
    digest = content_hash(x, y).removeprefix("sha256:")
    return VersionInfo(
        HashAlgorithm.SHA256_NDARRAY, digest, VersionSource.SKLEARN, uri=key, format="sklearn", rows=len(y),
        details={"features": int(x.shape[1])},
    )


# -- DVC ----------------------------------------------------------------------------------------


def dvc_version(repo: str | Path, path: str, rev: str = "HEAD", label_column: str | None = None) -> VersionInfo:
    """Read the md5 DVC recorded for ``path`` at git revision ``rev`` of ``repo``.

    The entry is read from ``<path>.dvc`` as committed at ``rev``, or else
    from the ``outs`` of a stage in ``dvc.lock`` at ``rev``. The revision is
    resolved to a commit, so the version names the exact tracked state.

    Raises:
        DataError: ``repo`` is not a git repository, ``rev`` does not exist,
            or neither file tracks ``path`` at that commit.
    """
    repo = Path(repo).expanduser().resolve()
    commit = _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}", what=f"revision {rev!r}").strip()
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise DataError(f"DVC path {path!r} must be relative to the repository root {repo}, without '..'")

    entry, tracked_in = _dvc_entry(repo, commit, relative)
    if entry is None:
        raise DataError(
            f"{path} is not tracked by DVC at {rev} ({commit[:12]}) in {repo}: no {relative}.dvc and no dvc.lock "
            "stage lists it in outs; run 'dvc add' or 'dvc repro' and commit the result"
        )
    md5 = str(entry.get("md5") or "")
    if not _HEX.match(md5.removesuffix(".dir")):
        raise DataError(f"{tracked_in} at {commit[:12]} has no valid md5 for {path} (got {md5!r}); run 'dvc commit'")

    fmt = FILE_FORMATS.get(relative.suffix.lower())
    label = label_column if fmt is not None else None
    return VersionInfo(
        HashAlgorithm.MD5, md5, VersionSource.DVC, uri=str(repo / relative), format=fmt, label_column=label,
        size_bytes=entry.get("size"),
        details={
            "repo": str(repo), "rev": rev, "commit": commit, "path": str(relative), "tracked_in": tracked_in,
            # DVC 3 writes "hash: md5" for an md5 of the raw bytes; older files hash text with CRLF turned to LF.
            "dvc_hash": entry.get("hash", "md5-dos2unix"),
            "directory": md5.endswith(".dir"),
        },
    )


def _dvc_entry(repo: Path, commit: str, relative: PurePosixPath) -> tuple[dict[str, Any] | None, str]:
    dvc_file = f"{relative}.dvc"
    text = _git_show(repo, commit, dvc_file)
    if text is not None:
        for out in _yaml(text, dvc_file).get("outs") or []:
            if PurePosixPath(out.get("path", "")) == PurePosixPath(relative.name):
                return out, dvc_file
    text = _git_show(repo, commit, "dvc.lock")
    if text is not None:
        for stage in (_yaml(text, "dvc.lock").get("stages") or {}).values():
            for out in stage.get("outs") or []:
                if PurePosixPath(out.get("path", "")) == relative:
                    return out, "dvc.lock"
    return None, ""


def _yaml(text: str, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"{where} is not valid YAML: {exc}") from None
    return document if isinstance(document, dict) else {}


def _git(repo: Path, *args: str, what: str) -> str:
    try:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise NeurflyError("git is not installed; DVC versions are read from git history") from None
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit status {result.returncode}"
        raise DataError(f"{what} not found in git repository {repo}: {message}")
    return result.stdout


def _git_show(repo: Path, commit: str, path: str) -> str | None:
    result = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True, timeout=30, check=False)
    return result.stdout if result.returncode == 0 else None


def dvc_md5(path: Path, dvc_hash: str) -> str:
    """Return the md5 DVC computes for a file: raw bytes for ``md5``, CRLF-normalised text for older files."""
    payload = path.read_bytes()
    if dvc_hash != "md5" and b"\x00" not in payload[:8192]:
        # NOTE: DVC 2 treated a file as text by a heuristic on its first bytes; this uses "no NUL byte in the first 8 KiB".
        payload = payload.replace(b"\r\n", b"\n")
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


# -- lakeFS -------------------------------------------------------------------------------------


def lakefs_version(uri: str, label_column: str | None = None) -> VersionInfo:
    """Parse ``lakefs://REPOSITORY/COMMIT/PATH``, where COMMIT is a full 64-hex commit id.

    Raises:
        DataError: The URI is malformed, or names a branch, tag or short id
            instead of a commit. A branch moves, so it cannot be a version.
    """
    if not uri.startswith("lakefs://"):
        raise DataError(f"{uri!r} is not a lakeFS URI; write lakefs://REPOSITORY/COMMIT_ID/PATH")
    parts = uri.removeprefix("lakefs://").split("/", 2)
    if len(parts) < 3 or not all(parts):
        raise DataError(f"{uri!r} is incomplete; write lakefs://REPOSITORY/COMMIT_ID/PATH")
    repository, ref, path = parts
    check_lakefs_commit(ref)
    fmt = FILE_FORMATS.get(PurePosixPath(path).suffix.lower())
    return VersionInfo(
        HashAlgorithm.LAKEFS_COMMIT, ref, VersionSource.LAKEFS, uri=uri, format=fmt, label_column=label_column,
        details={"repository": repository, "commit": ref, "path": path},
    )


def check_lakefs_commit(ref: str) -> None:
    """Raise ``DataError`` unless ``ref`` is a full lakeFS commit id (64 lowercase hex characters)."""
    if LAKEFS_COMMIT.match(ref):
        return
    if _HEX.match(ref.lower()) and len(ref) < 64:
        raise DataError(
            f"lakeFS reference {ref!r} is a short or partial commit id; give the full 64-character id "
            "from 'lakectl log' so the version is unambiguous"
        )
    raise DataError(
        f"lakeFS reference {ref!r} looks like a branch or tag name, which moves as new commits arrive; "
        "a dataset version must be a commit id (64 hex characters): find it with "
        f"'lakectl log lakefs://REPOSITORY/{ref}' and register lakefs://REPOSITORY/COMMIT_ID/PATH"
    )
