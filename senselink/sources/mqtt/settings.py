"""What an MQTT source's connection and routes are made from: ports, the plugs' topic
roles, a stable client id, TLS files. Shared by the kind (config), the service and
the routes, so that none of them imports another for these."""

import hashlib
import socket

from senselink.sources.tls import load_ca_file, load_client_certificate

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883

ROLES = ("power", "state", "attribute")


def tls_certificates(tls):
    """C{(trust root or None, client certificate or None)} from the files of a C{tls} setting.

    @raise CertificateFileError: a file cannot be used.
    """
    trust = load_ca_file(tls["ca_file"]) if tls.get("ca_file") else None
    mine = None
    if tls.get("cert_file"):
        mine = load_client_certificate(tls["cert_file"], tls["key_file"])
    return trust, mine


def default_client_id(source):
    """A client id that stays the same across restarts of this host with this config."""
    seed = "\0".join(str(part) for part in (
        socket.gethostname(), source.options.get("host"), source.options.get("port"),
        source.options.get("username"), source.index))
    return "senselink-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]
