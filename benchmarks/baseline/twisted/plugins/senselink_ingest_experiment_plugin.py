"""twistd plugin for the benchmark's experiment: our daemon with the ingest proposals applied."""

from twisted.application.service import ServiceMaker

senselink_ingest_experiment = ServiceMaker(
    "SenseLink (ingest experiment)",
    "senselink_ingest_experiment",
    "Benchmark experiment: twistd senselink with quiet library loggers and an energy day cache",
    "senselink-ingest-experiment",
)
