"""Which URLs and addresses the fetcher may connect to.

A URL is parsed once, the way browsers do (WHATWG: the last ``@`` ends the userinfo, a
backslash ends the authority, ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and
``127.1`` are IPv4 addresses), and the request is built from that parse only, so the
host checked is the host connected to. A name is resolved once and every answer must
pass the address policy; the fetcher connects to one of those checked addresses and
never resolves the name again, so DNS rebinding cannot swap the target.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import idna

from .. import _watchdog
from ..errors import FetchError, FetchTimeoutError, UnsafeURLError

__all__ = ["ALLOW_PRIVATE_ENV", "CONTROL", "SCHEME", "Resolver", "Target", "address_problem",
           "allow_private_from_env", "parse_target", "resolve_checked", "short", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

ALLOW_PRIVATE_ENV = "AICHAIN_ALLOW_PRIVATE_URLS"
_TRUTHY = {"1", "true", "yes", "on"}

# Refused even with allow_private: nothing on a trusted network needs them, and they are
# where cloud credentials live (AWS/GCP/Azure, AWS IPv6, ECS tasks, Alibaba).
_METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_BROADCAST = ipaddress.ip_address("255.255.255.255")
# (test, why) in order; the first that holds is the reason given.
_Checks = tuple[tuple[Callable[[IPAddress], bool], str], ...]
_NEVER: _Checks = (
    (lambda ip: ip in _METADATA, "a cloud metadata address"),
    (lambda ip: ip.is_unspecified, "an unspecified address"),
    (lambda ip: ip.is_multicast, "a multicast address"),
    (lambda ip: ip == _BROADCAST, "a broadcast address"),
)
_NOT_PUBLIC: _Checks = (
    (lambda ip: ip.is_loopback, "a loopback address"),
    (lambda ip: ip.is_link_local, "a link-local address"),
    (lambda ip: ip in _CGNAT, "a shared (CGNAT) address"),
    (lambda ip: ip.is_private, "a private address"),
    (lambda ip: ip.is_reserved, "a reserved address"),
    (lambda ip: not ip.is_global, "not a globally routable address"),
)

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")  # a URL's scheme (group 1)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # ignored by browsers inside URLs
_HOST_OK = re.compile(r"^[a-z0-9_\-.]+$")
_HOST_PORT = re.compile(r"(\[[^\]]*\]|(?!\[)[^:]*)(?::(.*))?")  # "[v6]" or a name, then ":port"
_IPV4_PART = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*")  # hex ("0x" is 0), octal, decimal
# Kept as is in the path: unreserved, sub-delims, ":@/?" and "%" (already-encoded bytes).
_PATH_SAFE = "/?:@!$&'()*+,;=%-._~"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def allow_private_from_env() -> bool:
    """True when ``AICHAIN_ALLOW_PRIVATE_URLS`` is 1/true/yes/on."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in _TRUTHY


def short(text: str, limit: int = 120) -> str:
    """``text`` cut to ``limit`` characters, for error messages."""
    text = CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Target:
    """One parsed http(s) URL. ``url`` is rebuilt from the parts that are checked, with
    no userinfo and no fragment: it is exactly what is requested."""

    scheme: str
    host: str  # lower-case ASCII name, or an IP address without brackets
    port: int
    path: str  # path and query, starting with "/"
    ip: IPAddress | None  # set when the host is an IP literal

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a browser or inet_aton() reads in ``host``, or None if the host
    is a name. Raises UnsafeURLError for a host that looks numeric but is invalid."""
    parts = (host[:-1] if host.endswith(".") else host).split(".")  # "127.0.0.1." too
    if not re.fullmatch(r"[0-9]+|0x[0-9a-f]*", parts[-1]):
        return None
    nums = [int(p[2:] or "0", 16) if p[:2] == "0x" else int(p, 8 if p[0] == "0" else 10)
            for p in parts if _IPV4_PART.fullmatch(p)]
    # Up to four parts; all but the last are one byte, the last fills the bytes left.
    if (len(nums) < len(parts) or len(nums) > 4 or any(v > 255 for v in nums[:-1])
            or nums[-1] >= 256 ** (5 - len(nums))):
        raise UnsafeURLError(f"invalid numeric host {short(host)!r}")
    *head, tail = nums
    return ipaddress.IPv4Address(sum(v << (8 * (3 - i)) for i, v in enumerate(head)) + tail)


def _parse_host(raw: str, url: str) -> tuple[str, IPAddress | None]:
    if raw.startswith("["):
        try:  # no zone ID ("%eth0"): it names an interface of this machine
            ip6 = ipaddress.IPv6Address(raw[1:-1] if raw.endswith("]") and "%" not in raw else "")
        except ValueError:
            raise UnsafeURLError(f"invalid IPv6 host in {short(url)}") from None
        return str(ip6), ip6
    if not raw:
        raise UnsafeURLError(f"no host in {short(url)}")
    if "%" in raw:
        raise UnsafeURLError(f"percent-encoded host in {short(url)} is not allowed")
    try:
        # UTS #46 mapping, as browsers do: it also turns full-width digits into ASCII,
        # so the numeric check below runs on what would really be resolved.
        host = idna.encode(raw, uts46=True).decode("ascii") if not raw.isascii() else raw
    except idna.IDNAError:
        raise UnsafeURLError(f"invalid host name in {short(url)}") from None
    host = host.lower()
    if not _HOST_OK.match(host):
        raise UnsafeURLError(f"invalid characters in host of {short(url)}")
    ip4 = _numeric_ipv4(host)
    if ip4 is not None:
        return str(ip4), ip4
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(0 < len(label) <= 63 for label in name.split(".")):
        raise UnsafeURLError(f"invalid host name in {short(url)}")
    return name, None


def parse_target(url: str) -> Target:
    """Parse an http(s) URL; UnsafeURLError for another scheme, no ``//`` after the
    scheme, control characters, a malformed host or port."""
    url = url.strip()
    if CONTROL.search(url):
        raise UnsafeURLError(f"control characters in URL {short(url)}")
    m = SCHEME.match(url)
    if not m:
        raise UnsafeURLError(f"not an absolute http(s) URL: {short(url)}")
    scheme = m.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeURLError(
            f"scheme {scheme!r} is not allowed (only http and https): {short(url)}"
        )
    rest = url[m.end():].replace("\\", "/")  # browsers read "\" as "/" in http(s) URLs
    if not rest.startswith("//"):
        raise UnsafeURLError(f"missing '//' after the scheme in {short(url)}")
    rest = rest[2:]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    m = _HOST_PORT.fullmatch(authority.rpartition("@")[2])  # userinfo is never sent
    if m is None:
        raise UnsafeURLError(f"invalid host in {short(url)}")
    raw_host, port_text = m.group(1), m.group(2) or ""
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise UnsafeURLError(f"invalid port in {short(url)}")
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    host, ip = _parse_host(raw_host, url)
    path = quote(tail.split("#", 1)[0], safe=_PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    return Target(scheme=scheme, host=host, port=port, path=path, ip=ip)


def address_problem(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why the fetcher must not connect to ``ip``, or None when it may: without
    ``allow_private`` only globally routable unicast addresses pass, and ``_NEVER`` never."""
    if isinstance(ip, ipaddress.IPv6Address):
        decided, why = _ipv6_problem(ip, allow_private)
        if decided:
            return why
    return _first(_NEVER, ip) or (None if allow_private else _first(_NOT_PUBLIC, ip))


def _ipv6_problem(ip: ipaddress.IPv6Address, allow_private: bool) -> tuple[bool, str | None]:
    """(True, verdict) when an IPv6 form decides on its own, else (False, None)."""
    if ip.ipv4_mapped is not None:
        return True, address_problem(ip.ipv4_mapped, allow_private=allow_private)
    if ip.teredo is not None or ((int(ip) >> 32) == 0 and int(ip) > 1):
        # Teredo and the deprecated IPv4-compatible form ::a.b.c.d hide an IPv4
        # address that no policy below would see.
        return True, "an IPv6 address that tunnels IPv4"
    if ip in _NAT64_LOCAL:
        return True, "a local-use NAT64 address"
    # The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address carries.
    inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else ip.sixtofour
    if inner is not None:
        why = address_problem(inner, allow_private=allow_private)
        if why:
            return True, f"{why} (embedded in {ip})"
        if ip in _NAT64:
            # DNS64 answers on IPv6-only networks: the embedded address decides
            # (Python calls the whole ::/8 block, NAT64 included, "reserved").
            return True, None
    return False, None


def _first(checks: _Checks, ip: IPAddress) -> str | None:
    return next((why for check, why in checks if check(ip)), None)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _lookup(target: Target, resolver: Resolver | None) -> list[IPAddress]:
    lookup = resolver or system_resolver
    try:
        # Under the fetch's deadline: the system resolver ignores every socket timeout.
        answers = _watchdog.call_within(
            lambda: lookup(target.host, target.port), _watchdog.remaining(None),
            f"resolving {short(target.host)!r}",
        )
    except TimeoutError as exc:
        raise FetchTimeoutError(f"{exc}", url=target.url) from exc
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {short(target.host)!r}: {exc}") from exc
    candidates = []
    for answer in answers:
        try:
            candidates.append(ipaddress.ip_address(answer))
        except ValueError:
            raise UnsafeURLError(
                f"host {short(target.host)!r} resolved to a non-address {short(str(answer))!r}"
            ) from None
    if not candidates:
        raise FetchError(f"host {short(target.host)!r} has no addresses")
    return candidates


def resolve_checked(target: Target, *, allow_private: bool,
                    resolver: Resolver | None = None) -> list[IPAddress]:
    """The addresses ``target`` may be fetched from, in resolver order. Every answer is
    checked and one bad answer refuses the host (UnsafeURLError naming host and address):
    a mixed answer is how rebinding attacks hedge. FetchError: the name does not resolve."""
    candidates = [target.ip] if target.ip is not None else _lookup(target, resolver)
    checked: list[IPAddress] = []
    for ip in candidates:
        why = address_problem(ip, allow_private=allow_private)
        if why:
            shown = target.host if target.ip is not None else f"{target.host} ({ip})"
            raise UnsafeURLError(f"refusing to fetch {short(shown)}: {why}")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # its ::ffff: form would need a dual-stack socket
        checked.append(ip)
    return list(dict.fromkeys(checked))  # each address once, in resolver order
