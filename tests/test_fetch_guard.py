"""The SSRF guard of the URL fetcher (reliability catalogue 2.C, 46-55).

Every hostile input must be refused before any connection to its target. The proof is
twofold: the loopback page server counts every request it gets, and the fetcher's dialer
(its only way to open a socket) is a spy that records every address it is asked for.
Tests that need a "public" host patch ``socket.getaddrinfo`` to answer a public address
and let the spy dialer serve that address from the loopback server: the policy runs on
the real public address, and no packet leaves the machine.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from yait_aichain.errors import FetchError, UnsafeURLError
from yait_aichain.tools import convertToMD

from ._tls import tls_files
from yait_aichain.tools._fetch import Fetcher
from yait_aichain.tools._netguard import address_problem, parse_target
from ._pageserver import PageServer
from yait_aichain.tools._pinned import PinnedAdapter, pin

PUBLIC = "93.184.216.34"
PUBLIC_2 = "151.101.1.69"
PAGE = "<html><head><title>Fine</title></head><body><p>fine page</p></body></html>"


# --------------------------------------------------------------------------- fixtures


def _redirect(h):
    query = parse_qs(urlsplit(h.path).query)
    PageServer.send(h, b"", status=int(query.get("status", ["302"])[0]), content_type=None,
                    headers={"Location": query["to"][0]})


def _loop(h):
    n = int(parse_qs(urlsplit(h.path).query)["n"][0])
    PageServer.send(h, b"moved", status=302, headers={"Location": f"/loop?n={n + 1}"})


@pytest.fixture(scope="module")
def server():
    with PageServer() as srv:
        srv.add_page("/page", PAGE)
        srv.add_page("/secret", "<p>SECRET internal page</p>")
        srv.add_route("/redirect", _redirect)
        srv.add_route("/loop", _loop)
        yield srv


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, server):
    for var in ("AICHAIN_ALLOW_PRIVATE_URLS", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    server.reset()


class SpyDialer:
    """Records every (ip, port) the fetcher connects to; serves them all from the
    loopback server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.targets: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, address, timeout):
        with self._lock:
            self.targets.append(address)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", self.port))  # no getaddrinfo: tests patch it
        return sock


class FakeDNS:
    """Stands in for socket.getaddrinfo: ``answers[host]`` is a list of answers, one
    per call (the last one repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        seq = self.answers[host]
        ips = seq[min(self.calls.count(host), len(seq)) - 1]
        out = []
        for ip in ips:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, port, 0, 0) if fam == socket.AF_INET6 else (ip, port)
            out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
        return out


@pytest.fixture
def spy(server):
    return SpyDialer(server.port)


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDNS({"public.test": [[PUBLIC]]})
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


def make_fetcher(spy, **kw) -> Fetcher:
    kw.setdefault("timeout", 5.0)
    return Fetcher(dialer=spy, **kw)


# ------------------------------------------------------------- the hostile catalogue

HOSTILE_URLS = [
    # 46 loopback and unspecified
    "http://127.0.0.1:{port}/secret",
    "http://localhost:{port}/secret",
    "http://[::1]:{port}/secret",
    "http://0.0.0.0:{port}/secret",
    "http://0:{port}/secret",
    "http://[::]:{port}/secret",
    "http://127.0.0.1.:{port}/secret",
    # 47 metadata, CGNAT, private, link-local, multicast, reserved
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://100.64.0.1/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    # 48 IPv4 in other spellings
    "http://2130706433:{port}/secret",
    "http://0x7f000001:{port}/secret",
    "http://0177.0.0.1:{port}/secret",
    "http://127.1:{port}/secret",
    "http://0x7f.1:{port}/secret",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/secret",  # full-width digits
    # 49 IPv6 embedding IPv4
    "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[::127.0.0.1]/",
    # 54 parser confusion: the host is 127.0.0.1 in each
    "http://a.com@127.0.0.1:{port}/secret",
    "http://127.0.0.1:{port}#@a.com/secret",
    "http://127.0.0.1:{port}\\@a.com/secret",
    "http://user:pw@a.com@127.0.0.1:{port}/secret",
    "https:\\\\127.0.0.1:{port}/secret",
]


@pytest.mark.parametrize("template", HOSTILE_URLS)
def test_hostile_address_is_refused_before_any_connection(template, server, spy):
    url = template.format(port=server.port)
    with pytest.raises(UnsafeURLError) as info:
        make_fetcher(spy).fetch(url)
    assert spy.targets == []
    assert server.hits["/secret"] == 0
    message = str(info.value)
    assert "refusing" in message or "invalid" in message
    assert len(message) < 300


@pytest.mark.parametrize("template", HOSTILE_URLS[:7] + HOSTILE_URLS[19:27])
def test_hostile_address_refused_by_default_tool_with_real_sockets(template, server):
    # No test seam at all: the production dialer and resolver.
    with pytest.raises(UnsafeURLError):
        convertToMD().run(template.format(port=server.port))
    assert server.hits["/secret"] == 0


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "FILE:///etc/passwd", "gopher://127.0.0.1:70/_x", "dict://127.0.0.1:11211/",
    "ftp://example.com/x", "data:text/plain,hello", "data:text/html,<html><body>x</body></html>",
    "javascript:alert(1)", "ldap://127.0.0.1/",
    "http:/127.0.0.1/", "http:127.0.0.1/", "//169.254.169.254/latest/",
])
def test_bad_schemes_are_refused_never_read_as_paths(url, spy):
    with pytest.raises(UnsafeURLError) as info:
        convertToMD().run(url)
    assert "scheme" in str(info.value)
    if not url.startswith("//"):
        with pytest.raises(UnsafeURLError):
            make_fetcher(spy).fetch(url)
    assert spy.targets == []


def test_numeric_spellings_are_read_like_inet_aton():
    cases = {"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
             "127.1": "127.0.0.1", "0": "0.0.0.0", "0x7f.0.1": "127.0.0.1", "1.2.3": "1.2.0.3"}
    for host, expected in cases.items():
        assert parse_target(f"http://{host}/").host == expected
    for bad in ("1.2.3.4.5", "256.1.1.1", "08.0.0.1", "1..2.3", "example.123", ".example.com",
                "a..b", "a" * 64 + ".com", "exa mple.com", "[::1", "[fe80::1%25eth0]"):
        with pytest.raises(UnsafeURLError):
            parse_target(f"http://{bad}/")


def test_policy_allows_public_and_explains_refusals():
    assert address_problem(ipaddress.ip_address(PUBLIC)) is None
    assert address_problem(ipaddress.ip_address("2606:4700::1111")) is None
    assert "metadata" in address_problem(ipaddress.ip_address("169.254.169.254"))
    assert "CGNAT" in address_problem(ipaddress.ip_address("100.64.1.1"))
    # allow_private opens loopback and private ranges, never metadata or multicast
    assert address_problem(ipaddress.ip_address("127.0.0.1"), allow_private=True) is None
    assert address_problem(ipaddress.ip_address("10.1.2.3"), allow_private=True) is None
    for ip in ("169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254", "224.0.0.1",
               "0.0.0.0"):
        assert address_problem(ipaddress.ip_address(ip), allow_private=True)


# ---------------------------------------------------------------- names and rebinding


@pytest.mark.parametrize("answers", [
    [["169.254.169.254"]],        # metadata.google.internal style
    [["10.0.0.5"]],               # internal name
    [[PUBLIC, "127.0.0.1"]],      # 50: mixed answers
    [["::ffff:127.0.0.1"]],
])
def test_name_resolving_to_forbidden_address_is_refused(answers, dns, spy):
    dns.answers["metadata.google.internal"] = answers
    with pytest.raises(UnsafeURLError) as info:
        make_fetcher(spy).fetch("http://metadata.google.internal/computeMetadata/v1/")
    assert "metadata.google.internal" in str(info.value)
    assert spy.targets == []
    assert dns.calls == ["metadata.google.internal"]


def test_dns_rebinding_connects_to_the_checked_address(dns, spy, server):
    # 51: the first answer is public, every later one loopback.
    dns.answers["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    fetcher = make_fetcher(spy)
    page = fetcher.fetch(f"http://rebind.test:{server.port}/page")
    assert b"fine page" in page.body
    assert dns.calls == ["rebind.test"]  # resolved once for the hop
    assert spy.targets == [(PUBLIC, server.port)]  # connected to what was checked
    # The next fetch resolves again, sees loopback, and is refused without connecting.
    with pytest.raises(UnsafeURLError):
        fetcher.fetch(f"http://rebind.test:{server.port}/page")
    assert spy.targets == [(PUBLIC, server.port)]
    assert server.requests[-1][1]["Host"] == f"rebind.test:{server.port}"


def test_unpinned_request_is_refused_by_the_adapter():
    request = requests.Request("GET", "http://127.0.0.1:9/").prepare()
    with pytest.raises(requests.exceptions.InvalidURL):
        PinnedAdapter().send(request, timeout=1)


def test_https_pool_targets_ip_but_checks_the_real_name():
    adapter = PinnedAdapter()
    request = pin(requests.Request("GET", "https://example.com/x").prepare(), PUBLIC, "example.com")
    pool = adapter.get_connection_with_tls_context(request, verify=True)
    assert pool.host == PUBLIC
    assert pool.port == 443
    assert pool.conn_kw["server_hostname"] == "example.com"  # SNI
    assert pool.assert_hostname == "example.com"  # certificate check
    adapter.close()


# ------------------------------------------------------------------------ redirects


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:{port}/secret",
    "http://127.0.0.1:6379/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://127.0.0.1/",
    "//127.0.0.1:{port}/secret",
    "/\\127.0.0.1:{port}/secret",
    "http://internal.test/",
])
def test_redirect_to_forbidden_target_is_refused_and_names_the_hop(target, dns, spy, server):
    dns.answers["internal.test"] = [["192.168.0.10"]]
    location = target.format(port=server.port)
    url = f"http://public.test:{server.port}/redirect?to={requests.utils.quote(location, safe='')}"
    with pytest.raises(UnsafeURLError) as info:
        make_fetcher(spy).fetch(url)
    assert "redirect 1" in str(info.value)
    assert server.hits["/redirect"] == 1
    assert server.hits["/secret"] == 0
    assert spy.targets == [(PUBLIC, server.port)]  # only the public first hop


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_between_public_hosts_is_followed_and_rechecked(status, dns, spy, server):
    dns.answers["other.test"] = [[PUBLIC_2]]
    to = f"http://other.test:{server.port}/page"
    quoted = requests.utils.quote(to, safe="")
    page = make_fetcher(spy).fetch(
        f"http://public.test:{server.port}/redirect?status={status}&to={quoted}")
    assert b"fine page" in page.body
    assert page.url == to
    assert dns.calls == ["public.test", "other.test"]  # one lookup per hop
    assert spy.targets == [(PUBLIC, server.port), (PUBLIC_2, server.port)]


def test_relative_redirect_and_too_many_redirects(dns, spy, server):
    fetcher = make_fetcher(spy, max_redirects=5)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(f"http://public.test:{server.port}/loop?n=0")
    assert "too many redirects" in str(info.value)
    assert server.hits["/loop"] == 6
    server.reset()
    page = make_fetcher(spy, max_redirects=5).fetch(
        f"http://public.test:{server.port}/redirect?to=/page")
    assert b"fine page" in page.body


# -------------------------------------------------------------- environment, headers


def test_proxy_environment_is_ignored(monkeypatch, server, spy):
    with PageServer() as proxy:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(var, proxy.url("/"))
        with pytest.raises(UnsafeURLError):
            convertToMD().run(server.url("/secret"))
        assert "fine page" in convertToMD(allow_private=True).run(server.url("/page"))
        assert sum(proxy.hits.values()) == 0
    assert server.hits["/secret"] == 0 and server.hits["/page"] == 1


def test_no_credentials_or_keys_are_sent(monkeypatch, server):
    canary = "sk-CANARY-1234567890abcdef"
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(var, canary)
    tool = convertToMD(allow_private=True)
    tool.run(f"http://user:{canary}@127.0.0.1:{server.port}/page")
    path, headers = server.requests[-1]
    assert path == "/page"
    assert canary not in repr(headers)
    assert "Authorization" not in headers and "Cookie" not in headers
    assert headers["User-Agent"].startswith("yait_aichain/")


def test_unresolvable_host_is_a_fetch_error(dns, spy):
    with pytest.raises(FetchError, match="nowhere.test"):
        make_fetcher(spy).fetch("http://nowhere.test/")


# --------------------------------------------------------------------------- https


@pytest.fixture
def tls_server(tmp_path):
    ca, cert, key = tls_files(tmp_path, "secure.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    with PageServer(ssl_context=context) as srv:
        srv.add_page("/page", PAGE)
        srv.sni_names = names
        srv.ca = str(ca)
        yield srv


def test_https_pinned_connection_keeps_sni_and_certificate_check(tls_server, dns):
    dns.answers["secure.test"] = [[PUBLIC], ["127.0.0.1"]]
    dns.answers["impostor.test"] = [[PUBLIC_2]]
    spy = SpyDialer(tls_server.port)
    fetcher = Fetcher(dialer=spy, verify=tls_server.ca, timeout=5)
    page = fetcher.fetch(f"https://secure.test:{tls_server.port}/page")
    assert b"fine page" in page.body
    assert spy.targets == [(PUBLIC, tls_server.port)]  # the checked address
    assert tls_server.sni_names == ["secure.test"]  # SNI carries the real name
    assert tls_server.requests[-1][1]["Host"] == f"secure.test:{tls_server.port}"
    # Same server and CA, but the certificate is not for this name: refused.
    with pytest.raises(FetchError, match="impostor.test") as info:
        fetcher.fetch(f"https://impostor.test:{tls_server.port}/page")
    assert "certificate" in str(info.value).lower() or "hostname" in str(info.value).lower()
    assert tls_server.hits["/page"] == 1
