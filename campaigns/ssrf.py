"""Outbound HTTP to URLs that tenants type in, without letting them reach our network.

`check_url` refuses non-http(s) schemes, credentials in the URL, and hosts that are — or
resolve to — loopback, private, link-local, multicast, reserved, unspecified, shared
(100.64/10), cloud-metadata or otherwise non-global addresses, in every spelling the C
library accepts (decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short `127.1`,
IPv6-mapped `::ffff:127.0.0.1`, NAT64 `64:ff9b::a00:1`). Every address a name resolves to
must pass, and `post` connects to the checked address itself (with the original Host
header and TLS server name), so a DNS answer that changes between check and connect —
rebinding — cannot redirect the request. Redirects are followed by hand (at most
MAX_REDIRECTS), each hop checked again.

`settings.WEBHOOKS_ALLOW_LOOPBACK` (default False) lets development and tests deliver to
127.0.0.1/::1 only; private networks stay refused.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

MAX_REDIRECTS = 3
TIMEOUT = 5.0
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[..., list]


class UnsafeURL(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (for Host and SNI)
    port: int
    path: str  # path + query
    addresses: tuple[str, ...]  # checked, connect to these


def allow_loopback() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_LOOPBACK", False))


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour:
        return ip.sixtofour
    return None


def address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, loopback_ok: bool) -> str | None:
    """Why `ip` may not be contacted, or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return address_problem(inner, loopback_ok=loopback_ok)
    if ip in METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return None if loopback_ok else "a loopback address"
    for label, flag in (("an unspecified address", ip.is_unspecified), ("a link-local address", ip.is_link_local),
                        ("a multicast address", ip.is_multicast), ("a private address", ip.is_private),
                        ("a reserved address", ip.is_reserved)):
        if flag:
            return label
    if not ip.is_global:
        return "not a public address"
    return None


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host spelled as an IP literal means, in any form inet_aton accepts."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        pass
    try:
        # TRICKY: inet_aton (what getaddrinfo uses) reads "0177.1", "0x7f.0.0.1" and
        # "2130706433" as 127.0.0.1; ipaddress refuses them, so ask the C parser too.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def check_url(url: str, *, resolver: Resolver | None = None, loopback_ok: bool | None = None) -> Target:
    resolver = resolver or socket.getaddrinfo
    loopback_ok = allow_loopback() if loopback_ok is None else loopback_ok
    if not isinstance(url, str) or len(url) > 2000 or any(c in url for c in "\r\n\t "):
        raise UnsafeURL("invalid_url", "Enter a URL without spaces or line breaks (≤ 2,000 characters).")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("invalid_url", "That is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("unsafe_scheme", "Only http and https URLs can receive webhooks.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("credentials_in_url", "Put no user name or password in the URL; verify the signature instead.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("invalid_url", "The URL needs a host.")
    port = port or (443 if parts.scheme == "https" else 80)
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            if not loopback_ok:
                raise UnsafeURL("unsafe_address", f"{host} is a loopback name.")
        try:
            infos = resolver(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            raise UnsafeURL("unresolvable", f"{host} does not resolve.") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if not addresses:
            raise UnsafeURL("unresolvable", f"{host} does not resolve.")
    for ip in addresses:
        problem = address_problem(ip, loopback_ok=loopback_ok)
        if problem:
            raise UnsafeURL("unsafe_address", f"{host} is (or resolves to) {problem}.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, tuple(dict.fromkeys(str(ip) for ip in addresses)))


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a checked address while verifying the certificate for the URL's host."""

    def __init__(self, address: str, server_hostname: str, port: int, timeout: float):
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._server_hostname = server_hostname

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    url: str  # the last hop


def _request_once(target: Target, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    last_error: Exception | None = None
    for address in target.addresses:
        if target.scheme == "https":
            conn = _PinnedHTTPSConnection(address, target.host, target.port, TIMEOUT)
        else:
            conn = http.client.HTTPConnection(address, target.port, timeout=TIMEOUT)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        if ":" in target.host:
            host_header = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
        try:
            conn.request("POST", target.path, body=body, headers={**headers, "Host": host_header})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(4096)
        except OSError as error:
            last_error = error
        finally:
            conn.close()
    raise last_error or OSError("no address to connect to")


def post(url: str, *, body: bytes, headers: dict[str, str], resolver: Resolver | None = None) -> Response:
    """POST `body` to `url`, re-checking every redirect hop; raises UnsafeURL or OSError."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = check_url(current, resolver=resolver)
        status, response_headers, content = _request_once(target, body, headers)
        if status in (301, 302, 303, 307, 308) and response_headers.get("location"):
            # Re-POST the same signed body: the signature covers id, timestamp and body, not the URL.
            current = urljoin(current, response_headers["location"])
            continue
        return Response(status, content, current)
    raise UnsafeURL("too_many_redirects", f"More than {MAX_REDIRECTS} redirects.")
