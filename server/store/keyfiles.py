"""Where the data keyring comes from, and private files: the data dir is 0700, every file in it 0600.

Order: COSTEST_DATA_KEY (the keyring text itself), else COSTEST_DATA_KEY_FILE, else — in development only (the
caller decides: loopback) — `<data dir>/data-key`, generated on first start. Log lines name files, never keys.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from server.datadir import ensure_private_dir as private_dir
from server.datadir import publish_private, tighten

from .errors import DataKeyError
from .sealing import Keyring

log = logging.getLogger(__name__)

DEV_KEY_FILE = "data-key"


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
        if publish_private(path, "# development data key (first line = current key); see README\n"
                                 f"{Keyring.new_entry()}\n"):
            log.warning("DEVELOPMENT DATA KEY: generated %s (keep it: the stored checks cannot be read without it; "
                        "set COSTEST_DATA_KEY or COSTEST_DATA_KEY_FILE in production)", path)
        tighten(path)
    if dev_key in ("generate", "existing") and path.is_file():
        return Keyring.parse(path.read_text(), where=str(path)), f"development key file {path}"
    raise DataKeyError("no data key configured: set COSTEST_DATA_KEY (base64 of 32 random bytes, e.g. "
                       "`python -m server.store new-key`) or COSTEST_DATA_KEY_FILE")
