"""Reading a local file for convertToMD, only under a directory the caller chose.

An item field that names a path may come from anyone, so convertToMD reads no local file
unless it was built with ``root=``; then a path must resolve (symlinks and ``..``
followed) inside that directory tree. Relative paths are taken relative to the root, as a
static file server would. Only regular files are read: a FIFO would block ``open()``,
and ``/proc``, ``/sys`` and ``/dev`` hold "regular" files that are endless or secret.
"""

from __future__ import annotations

import os
import re
import stat

from ..errors import ConfigurationError, ResponseTooLargeError, ToolInputError, UnsafePathError
from ._netguard import short

__all__ = ["LocalFiles"]

# "www.x.org" or "x.org/path": probably a URL without its scheme (for the error hint).
# Linear: no two quantifiers here can match the same characters.
_BARE_HOST = re.compile(r"^(?:www\.[^\s/]\S*|[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+/\S*)$")
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


def _url_hint(given: str) -> str:
    if _BARE_HOST.match(given):
        return f"; did you mean https://{short(given, 80)} ?"
    return ""


class LocalFiles:
    """Reads regular files under ``root`` (None: reads nothing, says how to allow it)."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        if root is None:
            self.root: str | None = None
            return
        try:
            resolved = os.path.realpath(os.path.expanduser(os.fspath(root)))
        except TypeError:
            raise ConfigurationError(
                f"root must be a directory path (str or os.PathLike), got {root!r}"
            ) from None
        if not os.path.isdir(resolved):
            raise ConfigurationError(f"root {short(str(root))} is not an existing directory")
        self.root = resolved

    def resolve(self, given: str) -> str:
        """The real path of ``given``, checked to be inside the root."""
        if self.root is None:
            raise UnsafePathError(
                f"convertToMD: {short(given)} is not an http(s) URL or HTML, and local files "
                f"are read only when asked: build the tool with convertToMD(root=\"DIR\") to "
                f"read files under DIR (root=\"/\" allows any file){_url_hint(given)}",
                path=given, root=None,
            )
        path = os.path.realpath(os.path.join(self.root, os.path.expanduser(given)))
        if not _inside(path, self.root):
            raise UnsafePathError(
                f"convertToMD: {short(given)} is outside the allowed root {short(self.root)} "
                f"(after following symlinks and '..'); build the tool with a root that "
                f"contains it to allow it",
                path=given, root=self.root,
            )
        return path

    def read(self, given: str, max_bytes: int) -> tuple[bytes, str]:
        """``(content, real path)`` of the regular file ``given``, at most ``max_bytes``."""
        path = self.resolve(given)
        try:
            info = os.stat(path)  # stat, not open: open() on a FIFO blocks forever
        except OSError:
            raise ToolInputError(
                f"convertToMD: {short(given)} is neither an http(s) URL nor an existing "
                f"file under {short(str(self.root))} nor HTML{_url_hint(given)}"
            ) from None
        if not stat.S_ISREG(info.st_mode) or any(_inside(path, r) for r in _PSEUDO_ROOTS):
            raise ToolInputError(f"convertToMD: {short(given)} is not a regular file")
        if info.st_size > max_bytes:
            raise ResponseTooLargeError(
                f"{short(given)} is {info.st_size} bytes, over the {max_bytes}-byte cap"
            )
        try:
            # O_NOFOLLOW: a symlink swapped in after the check is refused, not followed.
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            raise ToolInputError(
                f"convertToMD: cannot read {short(given)}: {exc.strerror}"
            ) from None
        with os.fdopen(fd, "rb") as fh:
            # The path may have been swapped since stat(); check what was opened.
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ToolInputError(f"convertToMD: {short(given)} is not a regular file")
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ResponseTooLargeError(f"{short(given)} is over the {max_bytes}-byte cap")
        return data, path
