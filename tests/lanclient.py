"""Kasa clients for the LAN tests, run inside a test's network namespace.

    python -m tests.lanclient sense HOST [--expect N] [--linger S] [--timeout S]
    python -m tests.lanclient discover-single HOST [--timeout S]
    python -m tests.lanclient discover TARGET [--timeout S]

``sense`` sends the Sense request once (to a unicast or broadcast address,
IPv4 or IPv6, link-local with its zone) and collects replies until
``--expect`` arrived, then ``--linger`` seconds more to catch copies, or
until ``--timeout``. ``discover-single`` and ``discover`` are python-kasa's
discovery (what Home Assistant's TP-Link integration runs). Each prints one
JSON object on stdout; every wait is bounded.
"""

import argparse
import asyncio
import json
import socket
import sys
import time

SENSE_REQUEST = b'{"emeter":{"get_realtime":{}},"system":{"get_sysinfo":{}}}'
PORT = 9999


def encrypt(plaintext: bytes) -> bytes:
    key = 171
    out = bytearray()
    for byte in plaintext:
        key ^= byte
        out.append(key)
    return bytes(out)


def decrypt(ciphertext: bytes) -> bytes:
    key = 171
    out = bytearray()
    for byte in ciphertext:
        out.append(key ^ byte)
        key = byte
    return bytes(out)


def sense(host, port, expect, linger, timeout):
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    family, sockaddr = info[0], info[4]
    replies = []
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if family == socket.AF_INET:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.sendto(encrypt(SENSE_REQUEST), sockaddr)
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if len(replies) >= expect:
                deadline = min(deadline, now + linger)
                expect = float("inf")     # from now on, only lingering
            if now >= deadline:
                break
            sock.settimeout(deadline - now)
            try:
                data, addr = sock.recvfrom(65536)
            except socket.timeout:
                break
            sysinfo = json.loads(decrypt(data))["system"]["get_sysinfo"]
            replies.append({"from": [addr[0], addr[1]], "alias": sysinfo.get("alias"),
                            "mac": sysinfo.get("mac")})
    return {"replies": replies}


def describe(device):
    return {"host": device.host, "alias": device.alias, "mac": device.mac,
            "model": device.model}


async def discover_single(host, timeout):
    from kasa import Discover
    try:
        device = await Discover.discover_single(host, discovery_timeout=timeout)
    except Exception as e:       # the client's own words, for the test's failure message
        return {"error": f"{type(e).__name__}: {e}"}
    try:
        return {"device": describe(device)}
    finally:
        await device.disconnect()


async def discover(target, timeout):
    from kasa import Discover
    devices = await Discover.discover(target=target, discovery_timeout=timeout,
                                      discovery_packets=1)
    try:
        return {"devices": [describe(device) for device in devices.values()]}
    finally:
        for device in devices.values():
            await device.disconnect()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.lanclient")
    parser.add_argument("command", choices=["sense", "discover-single", "discover"])
    parser.add_argument("host")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--expect", type=int, default=1)
    parser.add_argument("--linger", type=float, default=0.5)
    parser.add_argument("--timeout", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "sense":
        result = sense(args.host, args.port, args.expect, args.linger, args.timeout)
    elif args.command == "discover-single":
        result = asyncio.run(discover_single(args.host, args.timeout))
    else:
        result = asyncio.run(discover(args.host, args.timeout))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
