"""Dataset versions: content hashes, DVC entries at a git revision, lakeFS commit ids."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from neurfly.errors import DataError
from neurfly.governance import (
    DatasetError,
    HashAlgorithm,
    Sensitivity,
    VersionInfo,
    VersionSource,
    dvc_version,
    file_version,
    find_version,
    lakefs_version,
    register_version,
    sklearn_version,
)
from neurfly.governance.loading import load_table
from neurfly.governance.models import Dataset
from neurfly.governance.registry import version_descriptor
from neurfly.store import Store
from gov_support import TEAM_A, write_csv

COMMIT = "c0ffee" + "0" * 52 + "abcdef"


def test_late_row_change_new_version(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", 12_000)
    second = write_csv(tmp_path / "b.csv", 12_000, change_row=11_000)
    lines_a = first.read_text().splitlines()
    lines_b = second.read_text().splitlines()

    assert lines_a[:10_001] == lines_b[:10_001]
    assert lines_a[11_001] != lines_b[11_001]
    assert file_version(first).version != file_version(second).version


def test_same_bytes_same_version(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", 50)
    copy = tmp_path / "elsewhere" / "copy.csv"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())

    info = file_version(first)

    assert info.version == file_version(copy).version
    assert info.algorithm is HashAlgorithm.SHA256
    assert info.rows == 50
    assert info.label_column == "label"


def test_parquet_late_row_change(tmp_path: Path) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    values = list(range(12_000))
    changed = list(values)
    changed[11_500] = -1
    parquet.write_table(pyarrow.table({"f1": values, "label": [v % 2 for v in values]}), tmp_path / "a.parquet")
    parquet.write_table(pyarrow.table({"f1": changed, "label": [v % 2 for v in values]}), tmp_path / "b.parquet")

    first, second = file_version(tmp_path / "a.parquet"), file_version(tmp_path / "b.parquet")

    assert first.format == "parquet"
    assert first.rows == 12_000
    assert first.version != second.version


def test_sklearn_version_stable() -> None:
    info = sklearn_version("iris")

    assert info.algorithm is HashAlgorithm.SHA256_NDARRAY
    assert info.version == sklearn_version("sklearn:iris").version
    assert info.rows == 150


def test_unknown_bundled_set_lists_choices() -> None:
    with pytest.raises(DataError, match="digits"):
        sklearn_version("mnist")


def test_file_problems_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("f1,label\n")
    odd = tmp_path / "data.txt"
    odd.write_text("x")

    with pytest.raises(DataError, match="file not found"):
        file_version(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="no rows"):
        file_version(empty)
    with pytest.raises(DataError, match="suffix"):
        file_version(odd)
    with pytest.raises(DataError, match="no column 'target'"):
        file_version(write_csv(tmp_path / "a.csv", 5), label_column="target")


def test_changed_file_fails_to_load(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", 40)
    with store.session() as session:
        version = register_version(session, TEAM_A, "customers", file_version(path), sensitivity=Sensitivity.INTERNAL)
        session.commit()
        descriptor = version_descriptor(session.get(Dataset, version.dataset_id), version)

    table = load_table(descriptor)
    write_csv(path, 40, change_row=39)

    assert table.x.shape == (40, 2)
    with pytest.raises(DataError, match="immutable"):
        load_table(descriptor)


# -- algorithms ---------------------------------------------------------------------------------


def test_versions_never_compared_across_algorithms(store: Store) -> None:
    digest = "ab" * 16
    md5 = VersionInfo(HashAlgorithm.MD5, digest, VersionSource.DVC)
    sha = VersionInfo(HashAlgorithm.SHA256, digest, VersionSource.FILE)
    with store.session() as session:
        first = register_version(session, TEAM_A, "mixed", md5, sensitivity=Sensitivity.INTERNAL)
        second = register_version(session, TEAM_A, "mixed", sha)
        dataset = session.get(Dataset, first.dataset_id)

        assert first.id != second.id
        assert find_version(session, dataset, f"md5:{digest}").id == first.id
        assert find_version(session, dataset, f"sha256:{digest}").id == second.id
        with pytest.raises(DatasetError, match="matches 2 versions"):
            find_version(session, dataset, digest[:10])
        with pytest.raises(DatasetError, match="not found"):
            find_version(session, dataset, f"sha256-ndarray:{digest}")


# -- DVC ----------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                            env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                                 "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin"})
    return result.stdout.strip()


def _dvc_file(md5: str, size: int) -> str:
    return f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: train.csv\n"


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "data" / "train.csv.dvc").write_text(_dvc_file("1" * 32, 10))
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "track v1")
    (repo / "data" / "train.csv.dvc").write_text(_dvc_file("2" * 32, 12))
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages:\n  featurize:\n    cmd: python featurize.py\n    outs:\n    - path: features/all.parquet\n      hash: md5\n      md5: " + "3" * 32 + "\n      size: 99\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "track v2")
    return repo


def test_dvc_md5_at_revision(dvc_repo: Path) -> None:
    latest = dvc_version(dvc_repo, "data/train.csv")
    earlier = dvc_version(dvc_repo, "data/train.csv", rev="HEAD~1")

    assert latest.version == "md5:" + "2" * 32
    assert earlier.version == "md5:" + "1" * 32
    assert earlier.details["commit"] == _git(dvc_repo, "rev-parse", "HEAD~1")
    assert earlier.details["tracked_in"] == "data/train.csv.dvc"
    assert latest.algorithm is HashAlgorithm.MD5


def test_dvc_lock_stage_output(dvc_repo: Path) -> None:
    info = dvc_version(dvc_repo, "features/all.parquet")

    assert info.version == "md5:" + "3" * 32
    assert info.details["tracked_in"] == "dvc.lock"
    assert info.format == "parquet"


def test_dvc_untracked_or_bad_rev(dvc_repo: Path) -> None:
    with pytest.raises(DataError, match="not tracked by DVC"):
        dvc_version(dvc_repo, "features/all.parquet", rev="HEAD~1")
    with pytest.raises(DataError, match="revision 'no-such-branch'"):
        dvc_version(dvc_repo, "data/train.csv", rev="no-such-branch")
    with pytest.raises(DataError, match="without '..'"):
        dvc_version(dvc_repo, "../outside.csv")


def test_dvc_file_read_from_cache(dvc_repo: Path, store: Store) -> None:
    import hashlib

    content = write_csv(dvc_repo / "scratch.csv", 30).read_bytes()
    md5 = hashlib.md5(content).hexdigest()
    cache = dvc_repo / ".dvc" / "cache" / "files" / "md5" / md5[:2]
    cache.mkdir(parents=True)
    (cache / md5[2:]).write_bytes(content)
    (dvc_repo / "data" / "train.csv.dvc").write_text(_dvc_file(md5, len(content)))
    _git(dvc_repo, "add", "data/train.csv.dvc")
    _git(dvc_repo, "commit", "-q", "-m", "track v3")

    with store.session() as session:
        version = register_version(session, TEAM_A, "dvc-data", dvc_version(dvc_repo, "data/train.csv", label_column="label"), sensitivity=Sensitivity.INTERNAL)
        table = load_table(version_descriptor(session.get(Dataset, version.dataset_id), version))

    assert table.x.shape == (30, 2)


# -- lakeFS -------------------------------------------------------------------------------------


def test_lakefs_commit_accepted() -> None:
    info = lakefs_version(f"lakefs://sales/{COMMIT}/tables/orders.parquet")

    assert info.version == f"lakefs-commit:{COMMIT}"
    assert info.details == {"repository": "sales", "commit": COMMIT, "path": "tables/orders.parquet"}


@pytest.mark.parametrize(("ref", "message"), [
    ("main", "looks like a branch"),
    ("feature-x", "looks like a branch"),
    ("v1.2", "looks like a branch"),
    ("c0ffee12", "short or partial commit id"),
    (COMMIT.upper(), "looks like a branch"),
])
def test_lakefs_branch_rejected(ref: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        lakefs_version(f"lakefs://sales/{ref}/orders.csv")


def test_lakefs_malformed_uri() -> None:
    with pytest.raises(DataError, match="incomplete"):
        lakefs_version(f"lakefs://sales/{COMMIT}")
    with pytest.raises(DataError, match="not a lakeFS URI"):
        lakefs_version(f"s3://sales/{COMMIT}/orders.csv")
