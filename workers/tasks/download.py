"""Dataset downloads, only on explicit request, verified by checksum and extracted safely.

Nothing in the tasks calls this module: a user (through the CLI) asks for a download.
Torch-free, so the CLI can import it cheaply.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from labcore.errors import LabError

log = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CIFAR10_SUBDIR = "cifar-10-batches-py"


class DownloadError(LabError):
    """A download failed, its checksum did not match, or its archive was unsafe."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex MD5 digest of a file."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch_verified(url: str, dest: Path, md5: str, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and check its MD5; a mismatch leaves no file behind.

    The file is written to a temporary name beside ``dest`` and renamed only once its
    checksum matches. An existing ``dest`` with the right checksum is kept.

    Args:
        url: Source (``https://``, or ``file://`` for local archives and tests).
        dest: Target file.
        md5: Expected hex digest.
        timeout: Socket timeout in seconds.

    Returns:
        ``dest``.

    Raises:
        DownloadError: If the transfer fails or the checksum does not match.
    """
    if dest.is_file() and md5sum(dest) == md5.lower():
        log.info("%s already present and verified", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s", url)
        with open(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        got = md5sum(tmp)
        if got != md5.lower():
            raise DownloadError(f"checksum mismatch for {url}: expected MD5 {md5}, got {got}")
        tmp.replace(dest)
    except (OSError, ValueError) as exc:  # URLError is an OSError
        raise DownloadError(f"download of {url} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def extract_tar(archive: Path, dest: Path) -> None:
    """Extract a tar archive under ``dest``, refusing links and paths that escape it.

    Raises:
        DownloadError: If the archive is unreadable or a member is unsafe.
    """
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                target = (dest / member.name).resolve()
                if not (member.isfile() or member.isdir()) or not target.is_relative_to(
                    dest.resolve()
                ):
                    raise DownloadError(f"{archive}: unsafe member {member.name!r}")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"cannot extract {archive}: {exc}") from exc


def download_cifar10(
    data_dir: str | Path, *, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5
) -> Path:
    """Download and extract the CIFAR-10 python batches into ``data_dir``.

    Does nothing when the batches are already there. The archive is kept beside them.

    Args:
        data_dir: Folder to download into; the batches land in
            ``data_dir/cifar-10-batches-py``.
        url: Archive location (the official one by default).
        md5: Expected MD5 of the archive (the official one by default).

    Returns:
        The folder holding the batches.

    Raises:
        DownloadError: If the download, the checksum or the extraction fails, or the
            archive lacks a batch file.
    """
    root = Path(data_dir).expanduser()
    folder = root / CIFAR10_SUBDIR
    if all((folder / name).is_file() for name in CIFAR10_FILES):
        log.info("CIFAR-10 already present in %s", folder)
        return folder
    archive = fetch_verified(url, root / "cifar-10-python.tar.gz", md5)
    extract_tar(archive, root)
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise DownloadError(f"{archive} did not contain {', '.join(missing)} under {folder}")
    return folder
