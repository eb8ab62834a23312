#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/: NTP requests of every version, mode and trailer
shape, the same behind the 4-octet decide() prefix, and sample configurations. Run once; the
files are committed, and the fuzzers grow their own copies in ./test."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def packet(version, mode, trailer=b"", poll=6):
    head = struct.pack("!BBbbII4sQQQQ", (version << 3) | mode, 0, poll, -20, 0, 0, b"\0\0\0\0",
                       0, 0, 0, 0x1122334455667788)
    return head + trailer


def ef(ftype, length):
    return struct.pack("!HH", ftype, length) + b"\0" * (length - 4)


def mac(key, digest):
    return struct.pack("!I", key) + b"\xab" * digest


def signed_md5(data, key_id, secret):
    import hashlib
    return data + struct.pack("!I", key_id) + hashlib.md5(secret + data).digest()


def requests():
    out = {}
    for v in range(8):
        for m in range(8):
            out[f"v{v}m{m}"] = packet(v, m)
    out["nak"] = packet(4, 3, mac(0, 0))
    out["md5"] = packet(4, 3, mac(1, 16))
    out["sha1"] = packet(3, 3, mac(2, 20))
    out["ms_sntp"] = packet(3, 3, b"\0" * 72)
    out["v2_old_auth"] = packet(2, 3, b"\0" * 6)
    out["ef28"] = packet(4, 3, ef(0x0104, 28))
    out["ef16_mac"] = packet(4, 3, ef(0x0104, 16) + mac(3, 16))
    out["nts"] = packet(4, 3, ef(0x0104, 36) + ef(0x0204, 104) + ef(0x0404, 40))
    out["ef_bad_len"] = packet(4, 3, struct.pack("!HH", 0x0104, 30) + b"\0" * 28)
    out["short"] = packet(4, 3)[:47]
    out["control"] = bytes([0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    out["empty"] = b""
    return out


def control(opcode, data=b"", seq=1):
    head = struct.pack("!BBHHHHH", (2 << 3) | 6, opcode, seq, 0, 0, 0, len(data))
    body = head + data
    return body + b"\0" * (-len(body) % 4)


def mode6_corpus():
    out = {}
    for src, tag in ((0, "lo"), (1, "query"), (2, "none")):
        out[f"rv_{tag}"] = bytes([src]) + control(2)
        out[f"rv_names_{tag}"] = bytes([src]) + control(2, b"stratum,leap,ss_received_r")
    out["unknown"] = bytes([0]) + control(2, b"stratum,nonsense")
    out["readstat"] = bytes([0]) + control(1)
    out["nonce"] = bytes([0]) + control(12)
    out["mru"] = bytes([0]) + control(10, b"nonce=000000000000000000000000, frags=32, mincount=2, "
                                          b"addr.0=10.0.0.5:0, last.0=0xe8d4a51e.00000000, laddr=127.0.0.1")
    out["write"] = bytes([0]) + control(3, b"leap=1")
    out["badcount"] = bytes([0]) + control(2, b"x")[:11] + b"\xff"
    signed = control(2, b"stratum")
    signed += b"\0" * (-len(signed) % 8)
    import hashlib
    out["md5_key1"] = bytes([2]) + signed + struct.pack("!I", 1) + hashlib.md5(b"sesame" + signed).digest()
    return out


def frames_corpus():
    def ip4_udp(payload, sport=40000, dport=123, frag=0):
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, frag, 64, 17, 0,
                           bytes([198, 51, 100, 1]), bytes([192, 0, 2, 1])) + udp
    def ip6_udp(payload):
        udp = struct.pack("!HHHH", 40000, 123, 8 + len(payload), 0) + payload
        return struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + bytes(15) + b"\1" + bytes(15) + b"\2" + udp
    req = packet(4, 3)
    eth = b"\2" * 12
    out = {
        "eth_v4": bytes([1]) + eth + b"\x08\x00" + ip4_udp(req),
        "eth_vlan_v6": bytes([1]) + eth + b"\x81\x00\x00\x07\x86\xdd" + ip6_udp(req),
        "raw_v4": bytes([2]) + ip4_udp(req),
        "sll_v4": bytes([3]) + struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + ip4_udp(req),
        "ipv4_frag": bytes([4]) + ip4_udp(req, frag=0x2000),
        "ipv6": bytes([5]) + ip6_udp(req),
        "sll2_v6": bytes([6]) + struct.pack("!HHIHBB8s", 0x86DD, 0, 1, 1, 0, 6, bytes(8)) + ip6_udp(req),
        "null_v4": bytes([0]) + struct.pack("=I", 2) + ip4_udp(req),
    }
    return out


def history_corpus():
    """The console's parsers (fuzz_history.cc): a history file's head (octet 0: the harness
    appends its checksum), times for --since (2) and api_key hashes (3)."""
    names = [b"requests", b"replies", b"kod"]
    head = b"STRAHIST" + struct.pack("<II", 1, len(names))
    for n in names:
        head += bytes([len(n)]) + n
    head += struct.pack("<I", 3) + struct.pack("<qQq", 1, 3600, 29934720)
    acc = struct.pack("<ddI", 10.0, 12.0, 3) * len(names)
    return {
        "history_head": b"\x00" + head + acc,
        "history_bad_tiers": b"\x00" + head[:-24] + struct.pack("<I", 3) + struct.pack("<qQq", 5, 10, 0),
        "history_raw": b"\x01" + head,
        "when_relative": b"\x02-7d",
        "when_iso": b"\x022026-12-04T10:00:00Z",
        "when_unix": b"\x021796083200",
        "key": b"\x03sha256:" + b"ab" * 32,
    }


def xdp_frame_corpus():
    """Ethernet frames as the XDP program redirects them, after a reply-length octet."""
    frames = frames_corpus()
    req = packet(4, 3)
    def ip4_options(payload):
        udp = struct.pack("!HHHH", 40000, 123, 8 + len(payload), 0) + payload
        return struct.pack("!BBHHHBBH4s4s", 0x47, 0, 28 + len(udp), 1, 0, 64, 17, 0,
                           bytes([198, 51, 100, 1]), bytes([192, 0, 2, 1])) + bytes([1] * 8) + udp
    def ip6_checked(payload):
        udp = struct.pack("!HHHH", 40000, 123, 8 + len(payload), 0x1234) + payload
        return struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + bytes(15) + b"\1" + bytes(15) + b"\2" + udp
    eth = b"\2" * 12
    return {
        "v4": bytes([48]) + frames["eth_v4"][1:],
        "v6": bytes([48]) + eth + b"\x86\xdd" + ip6_checked(req),
        "v6_zero_checksum": bytes([48]) + eth + b"\x86\xdd" + frames["ipv6"][1:],
        "vlan_v6": bytes([48]) + frames["eth_vlan_v6"][1:],
        "qinq_v4": bytes([48]) + eth + b"\x88\xa8\x00\x01\x81\x00\x00\x07\x08\x00" + frames["raw_v4"][1:],
        "v4_options": bytes([48]) + eth + b"\x08\x00" + ip4_options(req),
        "v4_padded": bytes([48]) + frames["eth_v4"][1:] + bytes(20),
        "v4_frag": bytes([48]) + eth + b"\x08\x00" + frames["ipv4_frag"][1:],
        "short": bytes([48]) + frames["eth_v4"][1:40],
    }


def tx_frame_corpus():
    """fuzz_tx_frame.cc: 0 + a sent reply as the error queue returns it; 1 + table operations."""
    frames = xdp_frame_corpus()
    def swap(frame):  # our reply: what xdp_frame_corpus has as requests will do for parsing
        return frame[1:]
    ops = bytes([0, 5, 1, 9,  1, 5, 1, 12,  2, 5, 1, 0,  2, 5, 1, 0,   # save, kernel, take twice
                 0, 6, 2, 1,  0, 6, 3, 1,  2, 6, 2, 0,                   # a duplicate
                 0, 7, 1, 1,  1, 7, 2, 3,  3, 7, 2, 0,  2, 7, 1, 0])     # other peers
    fill = bytes(b for k in range(12) for b in (0, k * 17 % 256, k % 4, k))
    return {
        "loopback_v4": b"\0" + swap(frames["v4"]),
        "ethernet_v6": b"\0" + swap(frames["v6"]),
        "vlan_v6": b"\0" + swap(frames["vlan_v6"]),
        "tunnel_v4": b"\0" + swap(frames["v4"])[14:],
        "cut_short": b"\0" + swap(frames["v4"])[:50],
        "table_ops": b"\1" + ops,
        "table_fill": b"\1" + fill,
    }


def snmp_corpus():
    """fuzz_snmp.cc: stratad's "stats", "unique" and three "top" replies, NUL-separated."""
    import json
    stats = {"ok": True, "uptime": 12.5, "clients": {"records": 3},
             "counters": {"received": 4294967301, "responses_sent": 9, "bad_format": 1},
             "time": {"source": "mirror", "synchronised": True, "leap": 0, "stratum": 2,
                      "refid": "192.0.2.1", "precision": -24, "root_delay": 0.002,
                      "root_dispersion": 0.0005}}
    minute = 1796601600
    unique = {"now": minute, "sketches": [
        {"window": "1m", "start": minute, "end": minute + 60, "kind": "v4", "estimate": 10.4},
        {"window": "1h", "start": minute, "end": minute + 3600, "kind": "v6", "estimate": 2}]}
    top = {"rows": [{"share": 0.25}, {"share": 0.05}]}
    parts = [json.dumps(x).encode() for x in (stats, unique, top, top, {"rows": []})]
    odd = dict(stats, uptime=1e300, time={"stratum": -5, "leap": "x", "precision": 1e300})
    return {"replies": b"\0".join(parts),
            "unsynchronised": b"\0".join([json.dumps(dict(stats, time={"synchronised": False})).encode()]),
            "odd_types": b"\0".join([json.dumps(odd).encode(), b"[1,2]", b"{\"rows\": 5}"]),
            "not_json": b" {\0\0"}


def write(dirname, files):
    d = os.path.join(HERE, "corpus", dirname)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    reqs = requests()
    write("parse", reqs)
    decide = {}
    for name, data in reqs.items():
        decide[name] = bytes([1, 0x9c, 0x40, 20]) + data       # synced, port 40000
        decide[name + "_unsync_drop"] = bytes([8, 0x9c, 0x40, 20]) + data
    decide["port0"] = bytes([1, 0, 0, 20]) + reqs["v4m3"]
    decide["truncated"] = bytes([17, 0, 123, 20]) + reqs["v4m3"]
    # With the client table and rate limiter (bit 5), from a few sources, some too fast.
    for i in range(6):
        decide[f"tracked_{i}"] = bytes([33, i % 3, 0x40, 1 if i % 2 else 200]) + reqs["v4m3"]
    decide["tracked_symmetric"] = bytes([33, 1, 0x40, 0]) + reqs["v4m1"]
    # With keys (tracked): a good MD5 MAC of key 1, a bad one, and the crypto-NAK rules (bit 6).
    good = signed_md5(packet(4, 3), 1, b"sesame")
    decide["tracked_md5_good"] = bytes([33, 2, 0x40, 200]) + good
    decide["tracked_md5_bad"] = bytes([33, 2, 0x40, 200]) + good[:-1] + bytes([good[-1] ^ 1])
    decide["tracked_md5_bad_nak"] = bytes([97, 2, 0x40, 200]) + good[:-1] + bytes([good[-1] ^ 1])
    # NTS (tracked, NTS on): a chrony-shaped request whose cookie no key opens (a NAK).
    decide["tracked_nts"] = bytes([33, 4, 0x40, 200]) + reqs["nts"]
    write("decide", decide)
    configs = {
        "empty": b"",
        "local": b'[time]\nsource = "local"\nstratum = 3\nrefid = "GPS"\n',
        "mirror": b'[time]\nsource = "mirror"\nmirror = "127.0.0.1:11123"\nmirror_timeout = 5\n'
                  b'unsynchronised = "drop"\n',
        "server": b'[server]\nlisten = ["0.0.0.0:123", "[::]:123"]\nthreads = 2\n'
                  b'control = "/tmp/s.sock"\nreceive_buffer = "4MiB"\nbatch = 32\nfreebind = false\n',
        "bad": b'[server]\nthreads = "x"\nlisten = [1]\n[nope]\n',
        "syntax": b'[server\nlisten = [\n',
        "clients": b'[clients]\nmemory = "64MiB"\nmindepth = 10\nmaxage = 30\n'
                   b'[ratelimit]\ninterval = 4\nburst = 2\nleak = 0.1\nv6_prefix = 56\n',
        "access": b'[access]\nrules = ["10.0.0.0/8 nolimit", "192.0.2.0/24 deny", "::/0 noquery"]\n',
    }
    write("config", configs)
    write("keys", {
        "ntp": b"# ntp.keys\n1 MD5 sesame\n2 SHA1 00112233445566778899aabbccddeeff0011223344\n"
               b"3 AES128CMAC 2b7e151628aed2a6abf7158809cf4f3c\n",
        "chrony": b"10 ASCII:text\n11 SHA1 HEX:0011223344556677889900112233445566778899\n"
                  b"12 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c\n",
        "bad": b"0 MD5 x\n1 SHA256 y\n2 AES 00\n3 MD5 HEX:0g\n1 MD5 a\n1 MD5 b\n",
    })
    write("mode6", mode6_corpus())
    write("frames", frames_corpus())
    write("xdp_frame", xdp_frame_corpus())
    write("tx_frame", tx_frame_corpus())
    write("history", history_corpus())
    write("blocks", {  # fuzz_blocks.cc: octet 0 the state file, 1 a control request, 2 a duration
        "state": b"\x00" + b'{"format": "strata-blocks 1", "saved": 1796083000, "blocks": ['
                 b'{"prefix": "192.0.2.0/24", "action": "drop", "reason": "flood", "rule": "network flood", '
                 b'"since": 1796083000, "expires": 1796090000, "offence": 2, "hits": 12345}, '
                 b'{"prefix": "2001:db8::/48", "action": "kod", "reason": "by hand", "rule": "", '
                 b'"since": 1796083000, "expires": 1796090000, "offence": 1, "hits": 0}], '
                 b'"offenders": [{"prefix": "198.51.100.7/32", "until": 1796170000, "offences": 3}]}',
        "state_expired": b"\x00" + b'{"format": "strata-blocks 1", "blocks": [{"prefix": "10.0.0.0/8", '
                         b'"action": "leak", "reason": "", "rule": "", "since": 1, "expires": 2, "offence": 1, '
                         b'"hits": 1}], "offenders": []}',
        "add": b"\x01" + b'{"command": "blocks", "op": "add", "prefix": "203.0.113.0/24", "for": 3600, '
               b'"action": "kod", "reason": "test"}',
        "remove": b"\x01" + b'{"op": "remove", "prefix": "203.0.113.0/24"}',
        "list": b"\x01" + b'{"op": "list"}',
        "duration": b"\x02" + b"90m",
        "format_number": b"\x00" + b'{"format":79608300, "offenders": []}',  # threw (fuzz_blocks found it)
        "huge_hits": b"\x00" + b'{"format": "strata-blocks 1", "blocks": [{"prefix": "192.0.2.0/24", '
                     b'"action": "kod", "reason": "", "rule": "", "since": 1796083000, "expires": 1796090000, '
                     b'"offence": 1, "hits": 77777777777777777777777777777777777777770}], "offenders": []}',
    })
    write("rules", {
        "nested": b"# c\n10.0.0.0/8 nolimit query\n10.1.0.0/16 deny\n10.1.2.3 ignore\n0.0.0.0/0 limited\n",
        "v6": b"2001:db8::/32 noquery\n2001:db8:1::/48 ignore\n::1 query\n::/0 allow\n",
        "edges": b"0.0.0.0/0 deny\n255.255.255.255/32 allow\n128.0.0.0/1 ignore\n",
        "bad": b"bogus allow\n10.0.0.0/33 deny\n10.0.0.0/8\n10.0.0.0/8 allow deny\n",
        "dup": b"192.0.2.0/24 deny\n192.0.2.7/24 allow\n",
    })
    write("snmp", snmp_corpus())
    write("nts_ke", nts_ke_corpus())
    write("nts_ntp", nts_ntp_corpus())


def ke_record(word, body=b""):
    return struct.pack("!HH", word, len(body)) + body


def nts_ke_corpus():
    ntp, end = ke_record(0x8001, b"\0\0"), ke_record(0x8000)
    return {
        "chrony": ntp + ke_record(0x8004, struct.pack("!HH", 30, 15)) + end,
        "server-port": ntp + ke_record(0x8004, struct.pack("!H", 15)) +
                       ke_record(0x8006, b"ntp.example.org") + ke_record(0x8007, struct.pack("!H", 123)) + end,
        "unknown": ntp + ke_record(0x1234, b"abc") + ke_record(0x9234) + end,
        "bad": ke_record(0x0001, b"\0") + ke_record(0x8002, b"\0\1") + ke_record(0x0005, b"x" * 100) + end,
    }


def nts_ntp_corpus():
    def field(t, body):
        return struct.pack("!HH", t, 4 + len(body)) + body
    header = bytes([0x23]) + bytes(47)
    uid = field(0x0104, bytes(range(32)))
    cookie = field(0x0204, bytes([0x11]) * 100)
    auth = field(0x0404, struct.pack("!HH", 16, 16) + bytes(32))
    request = header + uid + cookie + auth
    placeholders = header + uid + cookie + field(0x0304, bytes(100)) * 3 + auth
    short_nonce = header + uid + cookie + field(0x0404, struct.pack("!HH", 8, 16) + bytes(24))
    nak = bytes([0xe4, 0]) + bytes(10) + b"NTSN" + bytes(32) + uid
    reply = bytes([0x24, 2]) + bytes(46) + uid + field(0x0404, struct.pack("!HH", 16, 16 + 104) + bytes(32) + cookie)
    return {
        "request": b"\0" + request,
        "placeholders": b"\0" + placeholders,
        "short-nonce": b"\0" + short_nonce,
        "genuine": b"\1" + bytes([0, 0, 0, 0]) + bytes(range(32)),
        "genuine-7": b"\1" + bytes([7, 0, 0, 0]) + bytes(range(32)),
        "changed": b"\1" + bytes([2, 0, 100, 1]) + bytes(range(32)),
        "nak": b"\2" + bytes(range(32)) + nak,
        "reply": b"\2" + bytes(range(32)) + reply,
        "cookie": b"\3" + bytes([0x42, 0, 0x4f, 0x1a]) + bytes(96),
    }


if __name__ == "__main__":
    main()
