"""Seed article sample 3, verbatim: fetch, convert and summarise three pages in parallel.

The article's URLs are https on the default port. Here they are served from 127.0.0.1:
names resolve to loopback (patched ``getaddrinfo``), the private-address opt-in is set as
the docs say for trusted networks, the TLS certificate comes from a throwaway CA trusted
through ``REQUESTS_CA_BUNDLE``, and the dialer's port 443 is mapped to the test server.
Nothing leaves the machine.
"""

import runpy
import socket
import ssl
from pathlib import Path

import pytest

from yait_aichain.errors import ChainStepError, UnsafeURLError
from yait_aichain.tools import _pinned
from ._pageserver import PageServer

from ._tls import tls_files

SEED = Path(__file__).parent / "seed"
HOSTS = {
    "fr.lipsum.com": ("Lorem Ipsum en français", "Le Lorem Ipsum est simplement du faux texte."),
    "de.lipsum.com": ("Lorem Ipsum auf Deutsch", "Lorem Ipsum ist ein einfacher Demo-Text."),
    "es.lipsum.com": ("Lorem Ipsum en español", "Lorem Ipsum es simplemente el texto de relleno."),
}


def _page(title, text):
    return (f"<html><head><title>{title}</title></head><body><nav>menu links</nav>"
            f"<main><h2>{title}</h2><p>{text}</p></main><footer>footer</footer></body></html>")


@pytest.fixture
def lipsum(tmp_path, monkeypatch):
    ca, cert, key = tls_files(tmp_path, *HOSTS)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in HOSTS:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 443))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    with PageServer(ssl_context=context) as server:
        pages = {host: _page(*content).encode() for host, content in HOSTS.items()}
        server.routes["/"] = lambda h: server.send(h, pages[h.headers["Host"]])
        real_dial = _pinned.default_dialer

        def dial(address, timeout):
            ip, port = address
            assert ip == "127.0.0.1" and port == 443  # what the guard checked and pinned
            return real_dial((ip, server.port), timeout)

        monkeypatch.setattr(_pinned, "default_dialer", dial)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
        monkeypatch.setenv("AICHAIN_ALLOW_PRIVATE_URLS", "1")
        yield server


def test_seed_sample_3_runs_verbatim(sim_env, lipsum, capsys):
    ns = runpy.run_path(str(SEED / "sample3_chain.py"))
    results = ns["results"]
    assert len(results) == 3
    for (_host, (title, text)), result in zip(HOSTS.items(), results, strict=True):
        # Each summary was built from its own page: the simulator echoes the prompt it got.
        assert result.startswith("Summary: Summarise in one sentence: # " + title)
        assert text in result and "menu links" not in result
    out = capsys.readouterr().out
    assert out.strip().endswith("done=3 failed=0")
    assert lipsum.hits["/"] == 3 and sim_env.stats.requests == 3


def test_without_the_opt_in_the_private_address_is_refused(sim_env, lipsum, monkeypatch, capsys):
    monkeypatch.delenv("AICHAIN_ALLOW_PRIVATE_URLS")
    ns = runpy.run_path(str(SEED / "sample3_chain.py"))
    assert ns["results"] == [None, None, None]
    assert capsys.readouterr().out.strip().endswith("done=0 failed=3")
    assert lipsum.hits["/"] == 0 and sim_env.stats.requests == 0
    for record in ns["pool"].records:
        assert isinstance(record.error, ChainStepError) and record.error.step == 0
        assert isinstance(record.error.__cause__, UnsafeURLError)
        assert "127.0.0.1" in str(record.error.__cause__)


def test_seed_sample_3_runs_verbatim_over_html_pdf_and_docx(sim_env, lipsum, capsys):
    """The same verbatim sample when one site serves a PDF and another a Word file."""
    pytest.importorskip("pypdfium2", reason="the [documents] extra is part of the test extra")
    from . import _docgen

    (fr, de, es) = HOSTS
    bodies = {
        fr: (_page(*HOSTS[fr]).encode(), "text/html; charset=utf-8"),
        de: (_docgen.titled_pdf(*HOSTS[de]), "application/pdf"),
        es: (_docgen.titled_docx(*HOSTS[es]), "application/vnd.openxmlformats-officedocument."
                                              "wordprocessingml.document"),
    }

    def route(handler):
        body, content_type = bodies[handler.headers["Host"]]
        lipsum.send(handler, body, content_type=content_type)

    lipsum.routes["/"] = route
    ns = runpy.run_path(str(SEED / "sample3_chain.py"))
    for (title, text), result in zip(HOSTS.values(), ns["results"], strict=True):
        assert result.startswith("Summary: Summarise in one sentence: # " + title), result
        assert text in result
    assert capsys.readouterr().out.strip().endswith("done=3 failed=0")
    assert lipsum.hits["/"] == 3 and sim_env.stats.requests == 3
