"""Hostile pages: inputs built to make text processing super-linear, each paired with a
plain page of the same size. Used by tests/test_hostile_pages.py and
benchmarks/bench_hostile.py; every family once froze (or would freeze) some pattern.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["HOSTILE", "plain_page"]

_DEEP = "<div>" * 300  # over libxml2's depth limit: the container-stripping fallback runs
_DEEPER = "<table><tr><td>" * 300  # too deep even then: the parser-free text fallback runs


def _fill(prefix: str, unit: str, size: int, suffix: str = "") -> str:
    room = max(0, size - len(prefix) - len(suffix))
    return prefix + (unit * (room // len(unit) + 1))[:room] + suffix


#: name -> page(size); each page is ``size`` characters long (give or take a tag).
HOSTILE: dict[str, Callable[[int], str]] = {
    "spaces": lambda n: _fill("<p>", " ", n, "x</p>"),
    "tabs and spaces": lambda n: _fill("<p>", " \t", n, "x</p>"),
    "pre spaces": lambda n: _fill("<pre>", " ", n, "x</pre>"),
    "unclosed tags": lambda n: _fill("<p>", "<div", n),
    "lone <": lambda n: _fill("<p>", "<", n),
    "deep + lone <": lambda n: _fill(_DEEP, "<", n),
    "deep + unclosed div": lambda n: _fill(_DEEP, "<div", n),
    "deep + unclosed script": lambda n: _fill(_DEEP, "<script", n),
    "deeper + unclosed script": lambda n: _fill(_DEEPER, "<script", n),
    "deeper + lone <": lambda n: _fill(_DEEPER, "<", n),
    "deeper + unclosed style": lambda n: _fill(_DEEPER, "<style>", n),
    "unclosed script": lambda n: _fill("<p>", "<script", n),
    "css comments": lambda n: _fill("<p style='", "/*", n, "'>x</p>"),
    "ampersands": lambda n: _fill("<p>", "&#", n),
    "escaped markup": lambda n: _fill("<p>", "&lt;b&gt;", n),
    "brackets": lambda n: _fill("<p>", "](", n),
    "asterisks": lambda n: _fill("<p>", "*_", n),
    "backticks": lambda n: _fill("<pre>", "`a", n),
    "dashes": lambda n: _fill("<p>", "-", n),
    "hashes": lambda n: _fill("<p>", "# ", n),
    "comments": lambda n: _fill("<p>", "<!--", n),
    "meta charset": lambda n: _fill("<head>", "<meta ", n),
    "long href": lambda n: _fill("<a href='", "(", n, "'>x</a>"),
    "code classes": lambda n: _fill("<pre class='", "lang", n, "'>x</pre>"),
    "nested divs": lambda n: _fill("", "<div>", n),
}


def plain_page(size: int) -> str:
    """Ordinary prose in paragraphs, ``size`` characters."""
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    return _fill("<html><body>", "<p>" + sentence * 4 + "</p>\n", size, "</body></html>")
