"""Where the data keyring comes from, and private files: the data dir is 0700, every file in it 0600.

Order: COSTEST_DATA_KEY (the keyring text itself), else COSTEST_DATA_KEY_FILE, else — in development only (the
caller decides: loopback) — `<data dir>/data-key`, generated on first start. Log lines name files, never keys.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from .errors import DataKeyError
from .sealing import Keyring

log = logging.getLogger(__name__)

DEV_KEY_FILE = "data-key"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` 0700 (or tighten an existing one we own to 0700)."""
    path = path.expanduser()
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        try:
            path.chmod(PRIVATE_DIR_MODE)
        except PermissionError:
            log.warning("data dir %s is not 0700 and cannot be changed by this user", path)
    return path


def create_private_file(path: Path, content: str = "") -> bool:
    """Create `path` with mode 0600 (never wider, whatever the umask); False if it already existed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return True


def tighten(path: Path) -> None:
    """Make an existing file 0600 if it is readable by group or others (files of older versions were 0644)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        path.chmod(PRIVATE_FILE_MODE)


def load_keyring(
    *, key_text: str | None, key_file: Path | None, data_dir: Path, dev_key: str
) -> tuple[Keyring, str]:
    """The keyring and where it came from (for the log: a variable or a file name).

    `dev_key`: "generate" (development: create `<data dir>/data-key` if missing), "existing" (use that file only
    if present, e.g. the rotate-key command), or "never" (production: a configured key is required).
    """
    if key_text:
        return Keyring.parse(key_text, where="COSTEST_DATA_KEY"), "COSTEST_DATA_KEY"
    if key_file is not None:
        try:
            text = key_file.read_text()
        except OSError as exc:
            raise DataKeyError(f"COSTEST_DATA_KEY_FILE={key_file}: cannot read it ({exc.strerror})") from None
        if stat.S_IMODE(key_file.stat().st_mode) & 0o077:
            log.warning("data key file %s is readable by group or others; make it 0600", key_file)
        return Keyring.parse(text, where=f"COSTEST_DATA_KEY_FILE={key_file}"), f"key file {key_file}"
    path = data_dir.expanduser() / DEV_KEY_FILE
    if dev_key == "generate":
        private_dir(path.parent)
        if create_private_file(path, "# development data key (first line = current key); see README\n"
                                     f"{Keyring.new_entry()}\n"):
            log.warning("DEVELOPMENT DATA KEY: generated %s (keep it: the stored checks cannot be read without it; "
                        "set COSTEST_DATA_KEY or COSTEST_DATA_KEY_FILE in production)", path)
        tighten(path)
    if dev_key in ("generate", "existing") and path.is_file():
        return Keyring.parse(path.read_text(), where=str(path)), f"development key file {path}"
    raise DataKeyError("no data key configured: set COSTEST_DATA_KEY (base64 of 32 random bytes, e.g. "
                       "`python -m server.store new-key`) or COSTEST_DATA_KEY_FILE")
