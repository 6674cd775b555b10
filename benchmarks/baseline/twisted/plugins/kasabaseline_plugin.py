"""twistd plugin for the benchmark's minimal Twisted Kasa server (``twistd kasabaseline``)."""

from twisted.application.service import ServiceMaker

kasabaseline = ServiceMaker(
    "Kasa baseline",
    "kasabaseline",
    "Minimal Twisted Kasa server for the benchmark: N pre-built replies per datagram",
    "kasabaseline",
)
