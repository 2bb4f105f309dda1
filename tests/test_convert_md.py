"""convertToMD: conversion quality, input kinds, hostile markup (catalogue 2.C, 62-68),
local files, the allow-private opt-in and sharing one tool between 50 threads."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from yait_aichain import tools
from yait_aichain._runner import call_runner, is_tool
from yait_aichain.errors import (
    ConfigurationError,
    ResponseTooLargeError,
    ToolInputError,
    UnsafePathError,
    UnsafeURLError,
    UnsupportedContentTypeError,
)
from yait_aichain.tools import convertToMD
from ._pageserver import PageServer

PAGES = Path(__file__).parent / "pages"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("AICHAIN_ALLOW_PRIVATE_URLS", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def server():
    with PageServer() as srv:
        srv.add_page("/article", (PAGES / "article.html").read_bytes())
        srv.add_page("/links", (PAGES / "links.html").read_bytes())
        for i in range(200):
            srv.add_page(f"/p/{i}", f"<html><head><title>Page {i}</title></head>"
                                    f"<body><main><p>body of page {i}</p></main></body></html>")
        yield srv


@pytest.fixture(scope="module")
def article():
    return convertToMD(root=PAGES).run("article.html")


# --------------------------------------------------------------------------- quality


def test_title_heading_and_main_content(article):
    assert article.startswith("# Field Notes: Parsing Tables\n")
    assert "Parsing Tables" in article and "By Ada, 2024-05-01" in article  # article header kept
    assert "Tables are **everywhere**" in article


@pytest.mark.parametrize("junk", [
    "SCRIPT-TEXT", "font-family", "SITE-HEADER", "NAV-LINK", "ROLE-NAV", "HIDDEN-ATTR",
    "ARIA-HIDDEN", "DISPLAY-NONE", "VISIBILITY-HIDDEN", "NOSCRIPT-TEXT", "TEMPLATE-TEXT",
    "FORM-INPUT", "FORM-BUTTON", "FORM-OPTION", "FORM-TEXTAREA", "IFRAME-TEXT", "ASIDE-TEXT",
    "FOOTER-TEXT", "ROLE-FOOTER",
])
def test_chrome_hidden_and_active_content_dropped(article, junk):
    assert junk not in article


def test_tables_lists_and_code_kept(article):
    assert "| Name | Rows |" in article
    assert "| alpha | 10 |" in article and "| beta | 20 |" in article
    assert "1. Fetch the page\n2. Clean it\n3. Convert it" in article
    assert "- fast\n- safe" in article
    assert '```python\ndef parse(rows):\n    return [r.split(",") for r in rows]\n```' in article
    assert "`x = 1`" in article
    assert "## Results" in article


def test_output_is_tidy(article):
    assert article == article.strip()
    assert "\n\n\n" not in article
    assert not any(line != line.rstrip() for line in article.splitlines())


def test_links_absolute_against_page_url(server):
    md = convertToMD(allow_private=True).run(server.url("/article"))
    assert f"[the guide]({server.url('/guide/tables.html')})" in md
    assert "[spec](https://example.org/spec)" in md


def test_links_use_base_href_and_are_neutralised():
    md = convertToMD(root=PAGES).run("links.html")
    assert "[relative](https://cdn.example.com/docs/intro.html)" in md
    assert "[rooted](https://cdn.example.com/root.html)" in md
    assert "[scheme-relative](https://other.example.com/x)" in md
    assert "[fragment](https://cdn.example.com/docs/#part)" in md
    assert "[mail](mailto:ada@example.com)" in md
    assert "![logo](https://cdn.example.com/docs/img/logo.png)" in md
    for text in ("js-plain", "js-entity", "js-entity2", "js-tab", "vbs", "data-link", "file-link"):
        assert f"\n{text}\n" in f"\n{md}\n"  # the text stays, the link is gone
    lowered = md.lower()
    for bad in ("(javascript", "(vbscript", "(data:", "(file:", "alert(", "msgbox("):
        assert bad not in lowered
    # characters that could end the link destination are percent-encoded
    assert "[spaces-parens](https://cdn.example.com/docs/a%20b%28c%29d.html)" in md
    assert "[breakout](https://cdn.example.com/docs/x%29%5D%28javascript:alert%287%29)" in md
    assert "[newline](https://cdn.example.com/docs/linebreak.html)" in md
    assert "inline-data" in md


def test_breakout_href_stays_inside_its_link():
    md = convertToMD().run('<p><a href="http://x.test/)](javascript:alert(1))">brk</a></p>')
    assert md == "[brk](http://x.test/%29%5D%28javascript:alert%281%29%29)"


def test_text_that_looks_like_a_link_is_not_one():
    md = convertToMD().run("<p>[click](javascript:alert(1))</p>")
    assert "](javascript" not in md


def test_article_preferred_when_no_main():
    md = convertToMD(root=PAGES).run("blog.html")
    assert md == "# Blog\n\n## Only post\n\nPost body text."


def test_raw_html_inputs():
    tool = convertToMD()
    assert tool.run("   <h2>Hi</h2><p>there</p>") == "## Hi\n\nthere"
    assert tool.run("Intro text <body><p>in body</p></body>").endswith("in body")
    assert tool.run("<p>a</p>\n\n\n\n<p>b</p>") == "a\n\nb"
    assert tool.run("<html></html>") == ""


# ----------------------------------------------------------------- hostile markup


def test_xxe_entity_is_not_resolved(tmp_path, server):
    secret = tmp_path / "secret.txt"
    secret.write_text("XXE-SECRET-MARKER")
    doc = (f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>X</title></head>'
           "<body><p>before &x; after</p></body></html>")
    server.add_page("/xxe", doc, content_type="application/xhtml+xml")
    tool = convertToMD(allow_private=True)
    for source in (doc, server.url("/xxe")):
        md = tool.run(source)
        assert "XXE-SECRET-MARKER" not in md
        assert "before" in md and "after" in md
    file_page = tmp_path / "page.xhtml"
    file_page.write_text(doc)
    assert "XXE-SECRET-MARKER" not in convertToMD(root=tmp_path).run(str(file_page))


def test_billion_laughs_is_fast_and_harmless():
    lol = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doc = ('<?xml version="1.0"?><!DOCTYPE html [' + "".join(lol) + ']>'
           '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&lol9;</p><p>tail</p></body></html>')
    started = time.monotonic()
    md = convertToMD().run(doc)
    assert time.monotonic() - started < 2
    assert len(md) < 10_000 and "lollollol" not in md


@pytest.mark.parametrize("tag", ["div", "blockquote", "sub"])
@pytest.mark.parametrize("depth", [250, 5000])
def test_deep_nesting_never_kills_the_worker(tag, depth):
    doc = ("<html><body>" + f"<{tag}>" * depth + "DEEP-TEXT" + f"</{tag}>" * depth
           + "<p>after the pile</p></body></html>")
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(convertToMD().run(doc)))
    worker.start()
    worker.join(20)
    assert results, "the conversion raised or hung"
    assert "DEEP-TEXT" in results[0] and "after the pile" in results[0]


# ------------------------------------------------------------------ local files


def test_local_files_by_kind(tmp_path):
    tool = convertToMD(root=tmp_path)
    (tmp_path / "a.html").write_text("<title>T</title><p>x</p>")
    (tmp_path / "b.md").write_text("# Heading\n\n\n\n*kept* <b>as is</b>\n")
    (tmp_path / "c.txt").write_bytes("caf\u00e9".encode())
    (tmp_path / "d").write_text("<p>sniffed html</p>")
    assert tool.run(str(tmp_path / "a.html")) == "# T\n\nx"
    assert tool.run(str(tmp_path / "b.md")) == "# Heading\n\n*kept* <b>as is</b>"
    assert tool.run(str(tmp_path / "c.txt")) == "caf\u00e9"
    assert tool.run(str(tmp_path / "d")) == "sniffed html"
    assert tool.run("a.html") == "# T\n\nx"  # relative to the root, not to the cwd


@pytest.mark.parametrize("given", ["~/.aws/credentials", "/etc/passwd", "/proc/self/environ",
                                   "notes.txt", "./notes.txt", "docs/../secret.html"])
def test_local_files_are_refused_unless_asked(tmp_path, monkeypatch, given):
    (tmp_path / "notes.txt").write_text("NOTES")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafePathError) as info:
        convertToMD().run(given)
    message = str(info.value)
    assert "local files are read only when asked" in message and 'root="DIR"' in message
    assert info.value.path == given and info.value.root is None
    assert convertToMD(root=tmp_path).run("notes.txt") == "NOTES"


def test_root_must_be_an_existing_directory(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for root in (tmp_path / "nope", tmp_path / "file.txt"):
        with pytest.raises(ConfigurationError, match="not an existing directory"):
            convertToMD(root=root)


def test_missing_path_explains_what_input_may_be(tmp_path):
    with pytest.raises(ToolInputError) as info:
        convertToMD(root=tmp_path).run(str(tmp_path / "nope.html"))
    assert "neither an http(s) URL nor an existing file under" in str(info.value)
    with pytest.raises(UnsafePathError, match="did you mean https://www.example.org/x"):
        convertToMD().run("www.example.org/x")
    with pytest.raises(ToolInputError, match="empty"):
        convertToMD().run("   ")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(ToolInputError, match="not a regular file"):
        convertToMD(root=tmp_path).run(str(fifo))
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/proc/self/environ",
                                  "/proc/self/status", "/"])
def test_devices_proc_and_directories_are_refused(path):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(ToolInputError, match="not a regular file"):
        convertToMD(root="/").run(path)


def test_file_size_cap_and_binary_files(tmp_path):
    big = tmp_path / "big.html"
    big.write_bytes(b"<p>" + b"a" * 5000 + b"</p>")
    with pytest.raises(ResponseTooLargeError):
        convertToMD(max_bytes=1000, root=tmp_path).run(str(big))
    binary = tmp_path / "img.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(UnsupportedContentTypeError):
        convertToMD(root=tmp_path).run(str(binary))


def test_root_confinement(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "ok.html").write_text("<p>inside</p>")
    outside = tmp_path / "docs-private"  # shares the prefix "docs": commonpath, not startswith
    outside.mkdir()
    (outside / "secret.html").write_text("<p>SECRET</p>")
    (root / "link.html").symlink_to(outside / "secret.html")
    tool = convertToMD(root=root)
    assert tool.run(str(root / "ok.html")) == "inside"
    (root / "sub").mkdir()
    assert tool.run("sub/../ok.html") == "inside"  # '..' that stays inside is fine
    for given in (outside / "secret.html", root / "link.html", "link.html",
                  f"{root}/../docs-private/secret.html", "../docs-private/secret.html",
                  "/etc/passwd", "~/.ssh/id_rsa"):
        with pytest.raises(UnsafePathError, match="outside the allowed root") as info:
            tool.run(str(given))
        assert info.value.path == str(given) and info.value.root == str(root)
    # the link's target is readable only by a tool whose root holds the target
    assert convertToMD(root=tmp_path).run(str(root / "link.html")) == "SECRET"


# -------------------------------------------------------- opt-in, threads, runner


def test_allow_private_and_environment_opt_in(monkeypatch, server):
    url = server.url("/p/1")
    with pytest.raises(UnsafeURLError):
        convertToMD().run(url)
    assert convertToMD(allow_private=True).run(url) == "# Page 1\n\nbody of page 1"
    for value in ("1", "true", "YES", "on"):
        monkeypatch.setenv("AICHAIN_ALLOW_PRIVATE_URLS", value)
        assert convertToMD().run(url).endswith("body of page 1")
    monkeypatch.setenv("AICHAIN_ALLOW_PRIVATE_URLS", "0")
    with pytest.raises(UnsafeURLError):
        convertToMD().run(url)
    # metadata stays refused even when private addresses are allowed
    with pytest.raises(UnsafeURLError, match="metadata"):
        convertToMD(allow_private=True).run("http://169.254.169.254/latest/meta-data/")


def test_fifty_threads_share_one_tool_and_reuse_connections(server):
    tool = convertToMD(allow_private=True)
    server.reset()
    urls = [server.url(f"/p/{i}") for i in range(200)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(tool.run, urls))
    assert results == [f"# Page {i}\n\nbody of page {i}" for i in range(200)]
    assert server.connections <= 64  # kept alive and reused, never one per request
    tool.close()


def test_tool_contract_for_chain_and_pool():
    tool = convertToMD()
    assert is_tool(tool)
    assert tool.name == "convertToMD" and repr(tool).startswith("<convertToMD tool 'convertToMD'")
    assert call_runner(tool, {"input": "<p>via runner</p>", "other": 1}) == "via runner"
    with pytest.raises(ToolInputError, match="'input'"):
        call_runner(tool, {"source": "<p>x</p>"})
    with pytest.raises(ToolInputError, match="unknown parameter"):
        tool.run(input="<p>x</p>", source="y")
    assert tools.__all__ == sorted(tools.__all__) == ["Tool", "convertToMD"]


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"timeout": -1}, {"max_bytes": 0},
                                    {"max_redirects": -1}, {"user_agent": "a\r\nX: y"}])
def test_bad_settings_fail_at_construction(kwargs):
    with pytest.raises(ConfigurationError):
        convertToMD(**kwargs)


def test_pool_and_chain_run_the_tool(server):
    from yait_aichain.chain import Chain
    from yait_aichain.pool import DONE, FAILED, Pool

    tool = convertToMD(allow_private=True)
    items = [{"input": server.url(f"/p/{i}")} for i in range(30)]
    items.append({"input": "http://169.254.169.254/latest/meta-data/"})
    pool = Pool(tool, items, max_flows=20)
    out = pool.run()
    assert out[:30] == [f"# Page {i}\n\nbody of page {i}" for i in range(30)]
    assert out[30] is None  # the metadata URL failed alone
    assert pool.status[DONE] == 30 and pool.status[FAILED] == 1
    chain = Chain([(tool, "result", {"input": "source"})])
    assert chain.run({"source": server.url("/p/3")}) == "# Page 3\n\nbody of page 3"
