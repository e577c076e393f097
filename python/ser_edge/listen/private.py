"""Files only the daemon's user can read: 0600 files in 0700 folders, whatever the umask.

Recordings and event files hold what people said and how they felt. The modes are set
explicitly (``os.open`` with the mode, then ``fchmod``/``chmod``), so a umask of 022 or 000
changes nothing.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any, Union

log = logging.getLogger("ser_edge.listen")

PathLike = Union[str, "os.PathLike[str]"]


def private_dir(path: PathLike, *, own: bool) -> Path:
    """Creates ``path`` and its missing parents with mode 0700. ``own=True`` (a folder that is
    the daemon's, e.g. the recordings folder) also makes an existing one 0700 when it belongs to
    this user; one that does not is left as it is, with a warning if others can read it."""
    p = Path(os.fspath(path))
    missing = []
    q = p
    while not q.exists() and q != q.parent:
        missing.append(q)
        q = q.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
    if own and not missing:
        st = p.stat()
        if stat.S_IMODE(st.st_mode) & 0o077:
            if st.st_uid == os.geteuid():
                os.chmod(p, 0o700)
            else:
                log.warning("folder readable by others", extra={"fields": {"path": str(p)}})
    return p


def open_private(path: PathLike, mode: str = "a", **kw: Any) -> IO[Any]:
    """``open(path, mode)`` for a file that is created 0600 (an existing one is set to 0600)."""

    def opener(name: str, flags: int) -> int:
        fd = os.open(name, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
        return fd

    if "b" not in mode:
        kw.setdefault("encoding", "utf-8")
    return open(os.fspath(path), mode, opener=opener, **kw)
