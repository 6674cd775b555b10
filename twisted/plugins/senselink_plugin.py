"""twistd plugin: makes ``twistd senselink`` available."""

from twisted.application.service import ServiceMaker

senselink = ServiceMaker(
    "SenseLink",
    "senselink.tap",
    "Virtual TP-Link Kasa HS110 smart plugs for the Sense Home Energy Monitor",
    "senselink",
)
