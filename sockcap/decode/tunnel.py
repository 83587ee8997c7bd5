"""PPPoE (RFC 2516), PPP (RFC 1661) and L2TPv2 (RFC 2661) headers: what a tunnel carries.

As in :mod:`sockcap.decode.link`, each function reads one header and says where the next
layer starts and what it is, without decoding it: :data:`Inner` gives the ethertype of an
IP packet inside (PPP's IPv4 and IPv6 are mapped to theirs) or ``NO_NETWORK`` with the
name of the line to show instead ("PPP LCP", "PPPoED PADI", "L2TP SCCRQ"), in the words
of tshark's Protocol and Info columns. The callers in :mod:`~sockcap.decode.frame` and
:mod:`~sockcap.decode.ip` decode the IP packet, one tunnel deep. Every read is checked:
the bytes may end anywhere.
"""

from __future__ import annotations

import struct

from sockcap.decode.link import ETHERTYPE_IPV4, ETHERTYPE_IPV6, NO_NETWORK
from sockcap.decode.records import TUNNEL_L2TP, TUNNEL_PPPOE

ETHERTYPE_PPPOE_DISCOVERY = 0x8863
ETHERTYPE_PPPOE_SESSION = 0x8864
PPPOE_HEADER_LEN = 6  # version/type, code, session id, length (RFC 2516 4)
L2TP_PORT = 1701  # RFC 2661 8.1

# PPP protocol numbers (IANA "PPP DLL Protocol Numbers") and tshark's names for them.
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057
PPP_NAMES = {
    0xC021: "PPP LCP",
    0x8021: "PPP IPCP",
    0x8057: "PPP IPV6CP",
    0xC023: "PPP PAP",
    0xC223: "PPP CHAP",
    0x80FD: "PPP CCP",
    0x00FD: "PPP Comp",
    0x003D: "PPP MP",
    0xC025: "PPP LQR",
    0x8281: "PPP MPLSCP",
}
PPP_ETHERTYPES = {PPP_IPV4: ETHERTYPE_IPV4, PPP_IPV6: ETHERTYPE_IPV6}
PPP_HDLC_HEADER = b"\xff\x03"  # address and control, which L2TP may keep (RFC 2661 3.1)

# PPPoE discovery codes (RFC 2516 5, RFC 5578 for PADG/PADC/PADQ) as tshark shows them.
PPPOE_CODES = {0x09: "PADI", 0x07: "PADO", 0x19: "PADR", 0x65: "PADS", 0xA7: "PADT",
               0x0A: "PADG", 0x0B: "PADC", 0x0C: "PADQ"}

# L2TPv2 header bits (RFC 2661 3.1)
L2TP_TYPE = 0x8000  # T: control message
L2TP_LENGTH = 0x4000  # L: length field present
L2TP_SEQUENCE = 0x0800  # S: Ns and Nr present
L2TP_OFFSET = 0x0200  # O: offset size present
L2TP_VERSION_MASK = 0x000F
L2TP_VERSION = 2  # 3 is L2TPv3 (RFC 3931), left as UDP
L2TP_AVP_HIDDEN = 0x4000  # H bit of an AVP (RFC 2661 4.1)
L2TP_AVP_MESSAGE_TYPE = 0  # attribute 0 with vendor 0: the control message type
# Control message types (RFC 2661 3.2)
L2TP_MESSAGES = {1: "SCCRQ", 2: "SCCRP", 3: "SCCCN", 4: "StopCCN", 6: "HELLO", 7: "OCRQ",
                 8: "OCRP", 9: "OCCN", 10: "ICRQ", 11: "ICRP", 12: "ICCN", 14: "CDN",
                 15: "WEN", 16: "SLI"}

NOTE_PPPOE_LEN = "pppoe length exceeds frame"
NOTE_L2TP_LEN = "bad l2tp length"

# ethertype of the IP packet inside (or NO_NETWORK), its offset (or where the rest
# starts), the line's name when it is not IP, the tunnel it came through ("" for none),
# the layer the captured bytes ended in ("" if none), notes
Inner = tuple[int, int, str, str, str, tuple[str, ...]]

_U16 = struct.Struct("!H").unpack_from
_AVP_HEAD = struct.Struct("!HHHH").unpack_from  # flags and length, vendor, attribute, value


def pppoe_discovery(data: bytes, off: int) -> tuple[str, str]:
    """The name of a PPPoE discovery frame ("PPPoED PADI") and the layer cut, if any."""
    if len(data) < off + 2:
        return "PPPoED", "pppoed"
    code = data[off + 1]
    return "PPPoED " + PPPOE_CODES.get(code, f"0x{code:02x}"), ""


def pppoe_session(data: bytes, off: int, wirelen: int) -> Inner:
    """A PPPoE session header at ``off`` and the PPP header after it."""
    if len(data) < off + PPPOE_HEADER_LEN:
        return NO_NETWORK, len(data), "PPPoE", TUNNEL_PPPOE, "pppoe", ()
    length = _U16(data, off + 4)[0]
    start = off + PPPOE_HEADER_LEN
    inner = ppp(data, start, TUNNEL_PPPOE, hdlc=False)
    if start + length > max(wirelen, len(data)):
        return (*inner[:5], (*inner[5], NOTE_PPPOE_LEN))
    return inner


def ppp(data: bytes, off: int, tunnel: str, *, hdlc: bool) -> Inner:
    """A PPP protocol field at ``off`` (one byte when compressed, RFC 1661 6.5), after
    the HDLC address and control bytes when ``hdlc`` allows them."""
    if hdlc and data[off : off + 1] == PPP_HDLC_HEADER[:1]:  # 0xff: an address byte
        if len(data) < off + 2:
            return NO_NETWORK, len(data), "PPP", tunnel, "ppp", ()
        if data[off + 1] == PPP_HDLC_HEADER[1]:
            off += 2
    if len(data) <= off:
        return NO_NETWORK, len(data), "PPP", tunnel, "ppp", ()
    if data[off] & 1:  # an odd first byte is a whole, compressed protocol field
        proto, off = data[off], off + 1
    elif len(data) < off + 2:
        return NO_NETWORK, len(data), "PPP", tunnel, "ppp", ()
    else:
        proto, off = _U16(data, off)[0], off + 2
    ethertype = PPP_ETHERTYPES.get(proto)
    if ethertype is not None:
        return ethertype, off, "", tunnel, "", ()
    return NO_NETWORK, off, PPP_NAMES.get(proto) or f"PPP 0x{proto:04x}", tunnel, "", ()


def l2tp(data: bytes, off: int, end: int) -> Inner | None:
    """An L2TPv2 message at ``off`` in a UDP payload that ends at ``end``; None when it is
    not one (fewer than two bytes, or another version: the datagram stays UDP)."""
    if len(data) < off + 2 or end < off + 2:
        return None
    bits = _U16(data, off)[0]
    if bits & L2TP_VERSION_MASK != L2TP_VERSION:
        return None
    head = (2 + (2 if bits & L2TP_LENGTH else 0) + 4 + (4 if bits & L2TP_SEQUENCE else 0)
            + (2 if bits & L2TP_OFFSET else 0))
    tunnel = "" if bits & L2TP_TYPE else TUNNEL_L2TP
    if len(data) < off + head:
        return NO_NETWORK, len(data), "L2TP", tunnel, "l2tp", ()
    if bits & L2TP_LENGTH:
        length = _U16(data, off + 2)[0]
        if head <= length <= end - off:
            end = off + length
        else:
            return NO_NETWORK, off, "L2TP", tunnel, "", (NOTE_L2TP_LEN,)
    start = off + head
    if bits & L2TP_OFFSET:
        start += _U16(data, off + head - 2)[0]  # the offset pad follows its size field
    if start > end:
        return NO_NETWORK, off, "L2TP", tunnel, "", (NOTE_L2TP_LEN,)
    if bits & L2TP_TYPE:
        return NO_NETWORK, start, _control_name(data, start, end), "", "", ()
    return ppp(data, start, TUNNEL_L2TP, hdlc=True)


def _control_name(data: bytes, start: int, end: int) -> str:
    """"L2TP SCCRQ" from the Message Type AVP, which comes first (RFC 2661 4.4.1);
    "L2TP ZLB" for an acknowledgement without AVPs; else "L2TP control"."""
    if start >= end:
        return "L2TP ZLB"
    if len(data) < start + 8 or end < start + 8:
        return "L2TP control"
    flags_len, vendor, attribute, value = _AVP_HEAD(data, start)
    if vendor or attribute != L2TP_AVP_MESSAGE_TYPE or flags_len & L2TP_AVP_HIDDEN:
        return "L2TP control"
    return "L2TP " + L2TP_MESSAGES.get(value, f"control {value}")
