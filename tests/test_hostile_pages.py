"""Text processing stays linear on hostile pages, and what convertToMD writes never
turns live in a CommonMark renderer."""

from __future__ import annotations

import re
import time

import pytest

from yait_aichain.testing._hostile import HOSTILE, plain_page
from yait_aichain.tools import convertToMD

# Big enough that a quadratic pattern costs minutes (one did: 3 s at 20 KB, 14 s at 40 KB),
# small enough for CI. The page server test below feeds one family at the real size cap.
SIZE = 256 * 1024
MAX_RATIO = 8.0


def _best_time(tool: convertToMD, page: str, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tool.run(page)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.fixture(scope="module")
def plain_time():
    return _best_time(convertToMD(), plain_page(SIZE), repeats=3)


@pytest.mark.parametrize("family", sorted(HOSTILE))
def test_a_hostile_page_converts_in_time_comparable_to_a_plain_one(family, plain_time):
    page = HOSTILE[family](SIZE)
    assert SIZE * 0.9 <= len(page) <= SIZE * 1.1
    hostile = _best_time(convertToMD(), page)
    # Re-measure the plain page next to it: a loaded machine slows both alike.
    plain = min(plain_time, _best_time(convertToMD(), plain_page(SIZE), repeats=1))
    assert hostile <= MAX_RATIO * plain, f"{family}: {hostile:.3f}s vs plain {plain:.3f}s"


def test_hostile_pages_at_the_size_cap_over_http():
    from ._pageserver import PageServer

    cap = 1024 * 1024
    tool = convertToMD(allow_private=True, max_bytes=cap)
    with PageServer() as srv:
        srv.add_page("/plain", plain_page(cap - 64))
        srv.add_page("/spaces", HOSTILE["spaces"](cap - 64))
        srv.add_page("/lt", HOSTILE["deeper + lone <"](cap - 64))
        plain = _best_time(tool, srv.url("/plain"), repeats=1)
        for path in ("/spaces", "/lt"):
            assert _best_time(tool, srv.url(path), repeats=1) <= MAX_RATIO * plain


markdown_it = pytest.importorskip("markdown_it")


def _render(markdown: str) -> str:
    return markdown_it.MarkdownIt("commonmark").render(markdown)


LIVE = [
    "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
    "<p>&lt;img src=x onerror=alert(1)&gt;</p>",
    "<div>&lt;div onclick=alert(1)&gt;\n\nblock&lt;/div&gt;</div>",
    "<p>&lt;!-- hidden --&gt; &lt;?php echo 1 ?&gt; &lt;![CDATA[x]]&gt; &lt;!DOCTYPE x&gt;</p>",
    "<p>&lt;javascript:alert(1)&gt; and &lt;http://ok.example/&gt;</p>",
    "<p>[x](javascript:alert(1)) [y]: javascript:alert(2)</p><p>[y]</p>",
    "<p>\\[x](javascript:alert(1)) \\&lt;script&gt;</p>",
    "<p>&amp;lt;script&amp;gt; &amp;#60;script&amp;#62;</p>",
    "<p><img src='http://a.example/i.png' alt='](javascript:alert(1)) [l](javascript:x)'></p>",
    "<p><a href='http://a.example/'>x](javascript:alert(1)) [y</a></p>",
    "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title><p>body</p>",
    "<ul><li>&lt;script&gt;x&lt;/script&gt;</li></ul><table><tr><td>&lt;b&gt;</td></tr></table>",
    "<h2>&lt;iframe src=javascript:alert(1)&gt;</h2>",
]


@pytest.mark.parametrize("page", LIVE)
def test_text_that_reads_as_html_or_links_stays_text(page):
    html = _render(convertToMD().run(page))
    tags = set(re.findall(r"<([a-zA-Z!?/][a-zA-Z0-9]*)", html))
    assert tags <= {"p", "/p", "h1", "/h1", "h2", "/h2", "ul", "/ul", "li", "/li", "a", "/a",
                    "img", "table", "/table", "thead", "/thead", "tbody", "/tbody", "tr",
                    "/tr", "th", "/th", "td", "/td", "em", "/em", "code", "/code"}, html
    assert "javascript:" not in " ".join(re.findall(r'(?:href|src)="([^"]*)"', html)), html
    assert "<!--" not in html and "<?" not in html and "<!" not in html


def test_escaped_text_stays_readable():
    md = convertToMD().run("<p>if a &lt; b &amp;&amp; c[0] then &lt;b&gt;</p>"
                           "<pre>if a &lt; b &amp;&amp; c[0]:</pre>"
                           "<p>use <code>&lt;div&gt;</code></p>")
    assert "if a \\< b \\&\\& c\\[0] then \\<b>" in md
    assert "```\nif a < b && c[0]:\n```" in md and "`<div>`" in md
    html = _render(md)
    assert "if a &lt; b &amp;&amp; c[0] then &lt;b&gt;" in html  # what a reader sees


def test_plain_text_is_escaped_but_markdown_is_kept(tmp_path):
    (tmp_path / "a.txt").write_text("a <script>x</script> [l](javascript:x) *kept*")
    html = _render(convertToMD(root=tmp_path).run(str(tmp_path / "a.txt")))
    assert "<script>" not in html and 'href="javascript' not in html and "<em>kept</em>" in html
