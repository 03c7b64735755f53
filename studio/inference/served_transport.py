"""The connection pools served models are reached through, dialling only where the policy allows.

Outside desktop mode the address is checked again when the connection is made (a name that
resolved to a public address at the policy's check cannot be re-pointed at a loopback or private
one), and redirects are never followed. Bodies are read up to a cap, never whole on trust.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpcore
import httpx

from studio.hosting import HostingPolicy, PolicyRefusal, _is_internal

_clients: dict[tuple[float, frozenset[str] | None], httpx.Client] = {}
_clients_guard = threading.Lock()


def shared_client(timeout_s: float, policy: HostingPolicy) -> httpx.Client:
    """One connection pool per timeout (and allow-list) for the process (httpx clients are
    thread-safe), so every exchange and comparison cell reuses open connections instead of
    leaking pools. Outside desktop mode the pool dials only addresses the policy allows."""
    hosts = None if policy.visitors_are_operators else policy.served_hosts
    with _clients_guard:
        if (timeout_s, hosts) not in _clients:
            timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
            transport = None if hosts is None else _GuardedTransport(hosts, limits)
            _clients[timeout_s, hosts] = httpx.Client(
                timeout=timeout, limits=limits, transport=transport, follow_redirects=False
            )
        return _clients[timeout_s, hosts]


class _ServedHostsBackend(httpcore.SyncBackend):
    """Connects a visitor's request only where the allow-list lets it go, judged on the address
    actually dialled: a host listed by name (or name:port) as the operator wrote it; any other
    host only with '*' listed, and only to the public addresses it resolves to now, so a name
    whose DNS answer changes after the policy's check (DNS rebinding) cannot reach this machine,
    its network or a cloud metadata service."""

    def __init__(self, served_hosts: frozenset[str]) -> None:
        self.served_hosts = served_hosts

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        name = host.strip("[]").lower()
        dial = super().connect_tcp
        if {name, f"{name}:{port}"} & self.served_hosts:
            return dial(host, port, timeout, local_address, socket_options)
        refusal = PolicyRefusal(
            "served-hosts",
            f"the server {name}:{port} is not one this studio's operator lets visitors reach, or "
            "its address is a loopback, private or link-local one, which '*' in the allow-list "
            "does not cover. Fix: use a public server, or ask the operator to list this host by "
            "name",
            "STUDIO_SERVED_HOSTS",
        )
        if "*" not in self.served_hosts:
            raise refusal
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses or any(_is_internal(address) for address in addresses):
            raise refusal
        error: Exception | None = None
        for address in addresses:  # the checked addresses themselves: nothing is resolved again
            try:
                return dial(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, its connection pool dialling through `_ServedHostsBackend`."""

    def __init__(self, served_hosts: frozenset[str], limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_ServedHostsBackend(served_hosts),
        )


def read_capped(response: httpx.Response, limit: int, partial: bool = False) -> bytes | None:
    """The body, read no further than `limit` bytes: None past it (or the first `limit` bytes
    when partial)."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit] if partial else None
    return b"".join(chunks)
