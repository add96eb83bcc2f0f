"""Webhook URL safety: only http(s), and never an address in a denied network (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from herald.errors import HeraldError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (the socket module's getaddrinfo by default).
Resolve = Callable[[str, int], Sequence[str]]

SCHEMES = ("http", "https")


def _networks(named: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), name) for net, name in named)


# Most specific first: an address is reported under the first rule that holds it.
DEFAULT_DENY = _networks(
    [
        ("169.254.169.254/32", "cloud metadata"),
        ("fd00:ec2::254/128", "cloud metadata"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("0.0.0.0/8", "this network"),
        ("::/128", "unspecified"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("255.255.255.255/32", "broadcast"),
    ]
)
LOOPBACK = _networks([("127.0.0.0/8", "loopback"), ("::1/128", "loopback")])
PRIVATE = _networks(
    [
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared address space"),
        ("fc00::/7", "unique local"),
    ]
)

NetworkRules = Sequence[tuple[IPNetwork, str]]


class UnsafeUrl(HeraldError):
    """A webhook URL is refused; the message names the rule (fit for a 422 answer)."""

    def __init__(self, reason: str, *, rule: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed the checks, with the addresses its host resolved to then."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def networks(specs: Iterable[str], name: str) -> tuple[tuple[IPNetwork, str], ...]:
    """Rules from CIDR strings (e.g. settings), each reported under ``name``."""
    return _networks((spec, name) for spec in specs)


def denied_by(
    address: str, deny_networks: NetworkRules, allow_networks: NetworkRules | None = None
) -> str | None:
    """The rule that refuses ``address`` (``"169.254.0.0/16 (link-local)"``), or None.

    An address in ``allow_networks`` is allowed whatever the deny list says; an IPv4 address
    mapped into IPv6 (``::ffff:a.b.c.d``) is judged as the IPv4 address it carries.
    """
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_networks and any(ip in net for net, _ in allow_networks):
        return None
    for net, name in deny_networks:
        if ip in net:
            return f"{net} ({name})"
    return None


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def split_url(url: str) -> tuple[str, str, int]:
    """The scheme, host and port of an http(s) URL; :class:`UnsafeUrl` if it is not one."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"url {url!r} is not a valid URL: {exc}", rule="syntax") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeUrl(
            f"url scheme {scheme or '(none)'!r} is not allowed: only http and https", rule="scheme"
        )
    host = parts.hostname
    if not host:
        raise UnsafeUrl(f"url {url!r} has no host", rule="host")
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


def literal_address(host: str) -> str | None:
    """``host`` as an IP address string if it is an IP literal, else None."""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def check_addresses(
    host: str,
    addresses: Sequence[str],
    *,
    deny_networks: NetworkRules,
    allow_networks: NetworkRules | None = None,
) -> None:
    """Refuse (:class:`UnsafeUrl`) when any of ``host``'s addresses is in a denied network."""
    for address in addresses:
        rule = denied_by(address, deny_networks, allow_networks)
        if rule is not None:
            shown = "is" if literal_address(host) is not None else "resolves to"
            raise UnsafeUrl(
                f"url host {host!r} {shown} {address}, in denied network {rule}", rule=rule
            )


def check_url(
    url: str,
    *,
    deny_networks: NetworkRules = DEFAULT_DENY,
    allow_networks: NetworkRules | None = None,
    resolve: Resolve = _system_resolve,
) -> CheckedUrl:
    """Check ``url`` for use as a webhook: http(s), a host that resolves, no denied address.

    Every address the host resolves to must pass (one denied address refuses the URL).
    This is a check at one moment: DNS may answer differently later, so the deliverer
    checks again the addresses it connects to.
    """
    scheme, host, port = split_url(url)
    literal = literal_address(host)
    if literal is not None:
        addresses: Sequence[str] = [literal]
    else:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            raise UnsafeUrl(f"url host {host!r} does not resolve: {exc}", rule="dns") from exc
        if not addresses:
            raise UnsafeUrl(f"url host {host!r} does not resolve to any address", rule="dns")
    check_addresses(host, addresses, deny_networks=deny_networks, allow_networks=allow_networks)
    return CheckedUrl(url, scheme, host, port, tuple(addresses))
