import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.workers.datafiles import write_cifar10
from workers.tasks.cifar10 import Cifar10CNNTask
from workers.tasks.download import (
    CIFAR10_MD5,
    CIFAR10_URL,
    DownloadError,
    download_cifar10,
    extract_tar,
    fetch_verified,
)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cifar-10-python.tar.gz built like the official one, from tiny batches."""
    src = write_cifar10(tmp_path_factory.mktemp("src"), n_per_batch=4)
    path = tmp_path_factory.mktemp("server") / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path


def test_official_source_is_pinned() -> None:
    assert CIFAR10_URL.startswith("https://") and CIFAR10_URL.endswith("cifar-10-python.tar.gz")
    assert CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"


def test_download_verifies_and_extracts(archive: Path, tmp_path: Path) -> None:
    folder = download_cifar10(tmp_path, url=archive.as_uri(), md5=_md5(archive))
    assert folder == tmp_path / "cifar-10-batches-py"
    assert (tmp_path / "cifar-10-python.tar.gz").is_file()
    assert len(Cifar10CNNTask(str(tmp_path)).splits()["test"][0]) == 4
    # already present: nothing is fetched (the URL no longer matters)
    missing = (tmp_path / "nowhere.tar.gz").as_uri()
    assert download_cifar10(tmp_path, url=missing, md5="0" * 32) == folder


def test_checksum_mismatch_leaves_nothing(archive: Path, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_cifar10(tmp_path, url=archive.as_uri(), md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_source(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="failed"):
        fetch_verified((tmp_path / "absent.tar.gz").as_uri(), tmp_path / "a.tar.gz", "0" * 32)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("member", ["../escape.txt", "/abs/path.txt"])
def test_unsafe_archives_are_refused(tmp_path: Path, member: str) -> None:
    path = tmp_path / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DownloadError, match="unsafe"):
        extract_tar(path, dest)
    assert not (tmp_path / "escape.txt").exists() and list(dest.iterdir()) == []


def test_symlinks_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DownloadError, match="unsafe"):
        extract_tar(path, tmp_path / "dest")


def test_archive_without_batches(tmp_path: Path) -> None:
    path = tmp_path / "server" / "empty.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("README")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DownloadError, match="did not contain"):
        download_cifar10(tmp_path / "data", url=path.as_uri(), md5=_md5(path))


def test_download_module_does_not_import_torch() -> None:
    code = "import sys, workers.tasks.download; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
