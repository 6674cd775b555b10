"""twistd plugin for the benchmark's experiment: our daemon writing with socket.sendto."""

from twisted.application.service import ServiceMaker

senselink_sendto_experiment = ServiceMaker(
    "SenseLink (sendto experiment)",
    "senselink_sendto_experiment",
    "Benchmark experiment: twistd senselink with replies written by socket.sendto",
    "senselink-sendto-experiment",
)
