"""twistd plugin for the change-rate benchmark: our daemon with a UDP control port."""

from twisted.application.service import ServiceMaker

senselink_control = ServiceMaker(
    "SenseLink (benchmark control port)",
    "senselink_control",
    "Benchmark harness: twistd senselink plus a UDP port that changes plug values",
    "senselink-bench-control",
)
