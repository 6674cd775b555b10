"""SenseLink: virtual TP-Link Kasa HS110 smart plugs for the Sense Home Energy Monitor."""

__version__ = "0.2.0"
