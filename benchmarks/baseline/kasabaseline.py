"""The minimal Twisted Kasa server the benchmark compares against: no parsing at all.

Every datagram received is answered with the N pre-built, pre-encrypted
replies read from a file (4-byte big-endian length before each), either
through Twisted's ``transport.write`` (``--mode write``) or straight through
the socket's ``sendto`` (``--mode sendto``). It is the limit of Twisted and of
the kernel on the machine: a real server cannot do less per request.

Started by twistd exactly like the daemon:
``twistd -n --pidfile= kasabaseline -r replies.bin -p PORT --mode write``
"""

import struct

from twisted.application.internet import UDPServer
from twisted.internet.protocol import DatagramProtocol
from twisted.python import usage


def read_replies(path):
    with open(path, "rb") as f:
        data = f.read()
    replies, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        replies.append(data[offset + 4:offset + 4 + length])
        offset += 4 + length
    return replies


class WriteProtocol(DatagramProtocol):
    noisy = False

    def __init__(self, replies):
        self.replies = replies

    def datagramReceived(self, data, addr):
        write = self.transport.write
        for reply in self.replies:
            write(reply, addr)


class SendtoProtocol(WriteProtocol):
    def datagramReceived(self, data, addr):
        sendto = self.transport.socket.sendto
        for reply in self.replies:
            try:
                sendto(reply, addr)
            except BlockingIOError:
                pass  # a full send buffer drops the datagram, as udp.Port.write does


class Options(usage.Options):
    optParameters = [
        ["replies", "r", None, "file of length-prefixed encrypted replies"],
        ["port", "p", 9999, "UDP port", int],
        ["interface", None, "127.0.0.1", "address to listen on"],
        ["mode", None, "write", "write (transport.write) or sendto (socket.sendto)"],
    ]

    def postOptions(self):
        if self["replies"] is None:
            raise usage.UsageError("--replies is required")
        if self["mode"] not in ("write", "sendto"):
            raise usage.UsageError("--mode is write or sendto")


def makeService(options):
    protocol = (WriteProtocol if options["mode"] == "write" else SendtoProtocol)(
        read_replies(options["replies"]))
    return UDPServer(options["port"], protocol, interface=options["interface"])
