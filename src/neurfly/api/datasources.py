"""Dataset versions named in a request body, turned into ``VersionInfo`` by neurfly.governance.versions.

Files and DVC repositories are read from the server's disk, so the API
accepts them only under the folders that the server was started with
(``--data-root``). A path that resolves outside them, through ``..`` or a
symbolic link, is rejected before anything is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


from neurfly.api.routes import invalid
from neurfly.api.schemas import DvcSource, FileSource, LakefsSource, SklearnSource
from neurfly.errors import NeurflyError
from neurfly.governance.versions import VersionInfo, dvc_version, file_version, lakefs_version, sklearn_version


def version_info(source: FileSource | SklearnSource | DvcSource | LakefsSource, roots: Sequence[Path]) -> VersionInfo:
    """Compute or read the version id that ``source`` names.

    Raises:
        HTTPException: 422 naming the field when the path is outside the data
            roots, or the data cannot be read or is not a valid version.
    """
    try:
        if isinstance(source, FileSource):
            return file_version(server_path(source.path, roots, ("body", "version", "path")), source.label)
        if isinstance(source, DvcSource):
            repo = server_path(source.repo, roots, ("body", "version", "repo"))
            return dvc_version(repo, source.path, source.rev, source.label)
        if isinstance(source, LakefsSource):
            return lakefs_version(source.uri, source.label)
        return sklearn_version(source.name)
    except NeurflyError as exc:
        raise invalid(("body", "version"), str(exc)) from None


def server_path(text: str, roots: Sequence[Path], loc: tuple[str, ...]) -> Path:
    """Resolve ``text`` against the data roots: absolute, or relative to the first root.

    Raises:
        HTTPException: 422 when the server has no data roots or the path resolves outside all of them.
    """
    if not roots:
        raise invalid(loc, "this server registers no files from its own disk; use the source sklearn or lakefs, "
                           "or ask the operator to start the server with --data-root FOLDER")
    path = Path(text)
    resolved = (path if path.is_absolute() else roots[0] / path).resolve()
    for root in roots:
        if resolved.is_relative_to(root.resolve()):
            return resolved
    raise invalid(loc, f"path {text!r} is outside the server's data roots ({', '.join(str(r) for r in roots)}); give a path under one of them")


__all__ = ["server_path", "version_info"]
