"""The data dir holds secrets (development-token key, page-token key): private to the server's user.

Several server processes start at once (COSTEST_WORKERS): a secret file is published whole with a hard link, so
a process never reads a half-written secret and all of them end up with the same one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create the directory (mode 0700), or tighten an existing one we own that others can read."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        try:
            path.chmod(PRIVATE_DIR_MODE)
        except OSError as exc:
            log.warning("data dir %s is mode %o and cannot be made private (%s)", path, mode, exc.strerror)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def publish_private(path: Path, text: str) -> bool:
    """Create `path` (0600) holding `text` whole, unless it exists; True when this call created it.

    Published with a hard link from a private temporary file, so a concurrent reader never sees it half-written and
    concurrent creators (several workers starting at once) all end up with the first one's content.
    """
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race: theirs stands
            return False
        return True
    finally:
        tmp.unlink()


def tighten(path: Path) -> None:
    """Make an existing file 0600 if group or others may read it (files of older versions were 0644)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if mode & 0o077:
        path.chmod(PRIVATE_FILE_MODE)


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """The secret kept in `path`, created (0600) when missing; every concurrent caller gets the same value."""
    ensure_private_dir(path.parent)
    with contextlib.suppress(FileNotFoundError):
        if existing := path.read_text().strip():
            tighten(path)
            return existing
    publish_private(path, secrets.token_hex(nbytes) + "\n")
    if not (secret := path.read_text().strip()):
        raise RuntimeError(f"{path} is empty; delete it to have a new secret created")
    return secret
