"""The TP-Link Kasa wire protocol: cipher, framing, requests and replies. No I/O here."""
