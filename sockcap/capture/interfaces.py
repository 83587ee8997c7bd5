"""The machine's network interfaces, as ``sockcap interfaces`` lists them.

Names, state and link type come from ``/sys/class/net`` (the kernel's own view, no
privilege needed); addresses from ``ip -j addr`` (iproute2's JSON), or, where ``ip`` is
missing, from ``/proc/net/if_inet6`` and the ``SIOCGIFADDR`` ioctl (one IPv4 address per
interface). Linux only, like the in-process capture backend.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import socket
import struct
import subprocess
from typing import NamedTuple

from sockcap.systools import find_tool

SYS_NET = "/sys/class/net"
IFF_UP = 0x1
SIOCGIFADDR = 0x8915
ARPHRD_NAMES = {1: "EN10MB (Ethernet)", 772: "EN10MB (Loopback)", 65534: "RAW (no link layer)",
                776: "RAW (IPv6-in-IPv4)", 778: "RAW (GRE)", 280: "CAN"}


class InterfaceInfo(NamedTuple):
    name: str
    ifindex: int
    up: bool
    state: str  # the kernel's operstate: "up", "down", "unknown" (loopback), ...
    link: str  # pcap link type as sockcap captures it
    addresses: tuple[str, ...]


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def list_interfaces() -> list[InterfaceInfo]:
    """Every interface, in index order."""
    try:
        names = os.listdir(SYS_NET)
    except OSError:
        names = [name for _, name in socket.if_nameindex()]
    addrs = _addresses(names)
    infos = [_info(name, addrs.get(name, ())) for name in names]
    return sorted(infos, key=lambda i: i.ifindex)


def _info(name: str, addresses: tuple[str, ...]) -> InterfaceInfo:
    base = os.path.join(SYS_NET, name)
    flags = int(_read(os.path.join(base, "flags"), "0"), 16)
    arphrd = int(_read(os.path.join(base, "type"), "-1"))
    return InterfaceInfo(name, int(_read(os.path.join(base, "ifindex"), "0")), bool(flags & IFF_UP),
                         _read(os.path.join(base, "operstate"), "unknown"),
                         ARPHRD_NAMES.get(arphrd, f"ARPHRD {arphrd}"), addresses)


def _addresses(names: list[str]) -> dict[str, tuple[str, ...]]:
    ip = find_tool("ip")
    if ip is not None:
        try:
            res = subprocess.run([ip, "-j", "addr", "show"], capture_output=True, text=True,
                                 timeout=10, check=True)
            return {link["ifname"]: tuple(f"{a['local']}/{a['prefixlen']}"
                                          for a in link.get("addr_info", []))
                    for link in json.loads(res.stdout)}
        except (OSError, subprocess.SubprocessError, ValueError, KeyError):
            pass
    return _addresses_from_kernel(names)


def _addresses_from_kernel(names: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {name: [] for name in names}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            try:
                raw = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                found[name].append(socket.inet_ntoa(raw[20:24]))
            except OSError:
                pass
    for line in _read("/proc/net/if_inet6").splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[5] in found:
            addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
            found[parts[5]].append(f"{addr}/{int(parts[2], 16)}")
    return {name: tuple(a) for name, a in found.items()}
