"""Where a webhook may send: http(s) to public addresses only, against server-side
request forgery.

The host is resolved and every address it resolves to must be public: no loopback,
link-local (cloud metadata services live there), private, shared, multicast, reserved or
unspecified address, IPv4-mapped IPv6 included. This is checked when a webhook is
created and again before every delivery, and the delivery then connects to an address
that passed (the URL's host still goes in ``Host`` and in TLS's SNI and certificate
check), so a name that resolves differently a second later (DNS rebinding) gains
nothing. ``JOBGRAPH_WEBHOOK_ALLOW_PRIVATE=true`` lifts the address rule, for development
and tests only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from repository.errors import ValidationError
from repository.webhooks import check_url

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_SECONDS = 5.0


def refusal(address: Address) -> str | None:
    """Why an address is not a webhook target, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for reason, flag in (("loopback", address.is_loopback),
                         ("link-local", address.is_link_local),
                         ("private", address.is_private),
                         ("multicast", address.is_multicast),
                         ("unspecified", address.is_unspecified),
                         ("reserved", address.is_reserved)):
        if flag:
            return reason
    if not address.is_global:
        return "not public"
    return None


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (an address literal is its own)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise ValidationError("url", f"the host {host!r} cannot be resolved ({exc})") from None
    found = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0])
                               for info in infos))
    if not found:
        raise ValidationError("url", f"the host {host!r} has no address")
    return found


async def allowed_addresses(url: str, *, allow_private: bool) -> list[Address]:
    """The addresses a delivery to ``url`` may connect to; a VALIDATION_ERROR on ``url``
    when it is not http(s) or any of its addresses is refused."""
    check_url(url)
    parts = urlsplit(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(parts.hostname, port)
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise ValidationError(
                    "url", f"{parts.hostname} resolves to {address}, a {reason} address; "
                    "webhooks only go to public addresses")
    return addresses
