"""Reading a local file for convertToMD, only under a directory the caller chose.

A path in an item field may come from anyone, so no local file is read without
``root=``; then a path (relative ones relative to the root) must resolve inside that
tree, symlinks and ``..`` followed. Only regular files: a FIFO would block ``open()``,
and ``/proc``, ``/sys`` and ``/dev`` hold "regular" files that are endless or secret.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..errors import ConfigurationError, ResponseTooLargeError, ToolInputError, UnsafePathError
from ._netguard import short

__all__ = ["check_root", "read_file"]

# "www.x.org" or "x.org/path": probably a URL without its scheme (for the error hint).
# Linear: no two quantifiers here can match the same characters.
_BARE_HOST = re.compile(r"^(?:www\.[^\s/]\S*|[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+/\S*)$")
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))


def _url_hint(given: str) -> str:
    return f"; did you mean https://{short(given, 80)} ?" if _BARE_HOST.match(given) else ""


def check_root(root: str | os.PathLike[str] | None) -> str | None:
    """The real path of the directory ``root`` (None stays None: no file is read)."""
    if root is None:
        return None
    try:
        resolved = os.path.realpath(os.path.expanduser(os.fspath(root)))
    except TypeError:
        raise ConfigurationError(
            f"root must be a directory path (str or os.PathLike), got {root!r}"
        ) from None
    if not os.path.isdir(resolved):
        raise ConfigurationError(f"root {short(str(root))} is not an existing directory")
    return resolved


def _resolve(given: str, root: str | None) -> str:
    if root is None:
        raise UnsafePathError(
            f"convertToMD: {short(given)} is not an http(s) URL or HTML, and local files "
            f"are read only when asked: build the tool with convertToMD(root=\"DIR\") to "
            f"read files under DIR (root=\"/\" allows any file){_url_hint(given)}",
            path=given, root=None,
        )
    path = os.path.realpath(os.path.join(root, os.path.expanduser(given)))
    if not Path(path).is_relative_to(root):  # by components: /rootx is not under /root
        raise UnsafePathError(
            f"convertToMD: {short(given)} is outside the allowed root {short(root)} "
            f"(after following symlinks and '..'); build the tool with a root that "
            f"contains it to allow it",
            path=given, root=root,
        )
    return path


def read_file(given: str, root: str | None, max_bytes: int) -> tuple[bytes, str]:
    """``(content, real path)`` of the regular file ``given`` under ``root`` (a
    :func:`check_root` result), at most ``max_bytes``."""
    path = _resolve(given, root)
    try:
        info = os.stat(path)  # stat, not open: open() on a FIFO blocks forever
    except OSError:
        raise ToolInputError(
            f"convertToMD: {short(given)} is neither an http(s) URL nor an existing "
            f"file under {short(str(root))} nor HTML{_url_hint(given)}"
        ) from None
    if not stat.S_ISREG(info.st_mode) or any(Path(path).is_relative_to(r) for r in _PSEUDO_ROOTS):
        raise ToolInputError(f"convertToMD: {short(given)} is not a regular file")
    if info.st_size > max_bytes:
        raise ResponseTooLargeError(
            f"{short(given)} is {info.st_size} bytes, over the {max_bytes}-byte cap",
            limit=max_bytes)
    try:
        # O_NOFOLLOW: a symlink swapped in after the check is refused, not followed.
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ToolInputError(f"convertToMD: cannot read {short(given)}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        # The path may have been swapped since stat(); check what was opened.
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ToolInputError(f"convertToMD: {short(given)} is not a regular file")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ResponseTooLargeError(f"{short(given)} is over the {max_bytes}-byte cap",
                                    limit=max_bytes)
    return data, path
