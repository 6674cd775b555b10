"""senselink.sources.tls: one loader, one set of messages, for every source's certificate files."""

import os
import subprocess
import sys

from twisted.trial import unittest

from senselink.config import ConfigError, load_text
from senselink.sources.tls import (CertificateFileError, UnverifiedTLS, client_tls, load_ca_file,
                                   load_certificates, load_client_certificate)
from tests.httpserver import self_signed_pem
from tests.processes import ROOT

# A PEM block that is not a certificate inside.
GARBAGE = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


class FilesTestCase(unittest.TestCase):

    def setUp(self):
        self.directory = self.mktemp()
        os.makedirs(self.directory)

    def file(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def certificate(self, name):
        """C{(ca path, certificate PEM, key PEM)} of a new self-signed certificate."""
        directory = os.path.join(self.directory, name)
        os.makedirs(directory)
        return self_signed_pem(directory)


class LoaderTests(FilesTestCase):

    def test_bundle(self):
        _, first, _ = self.certificate("a")
        _, second, _ = self.certificate("b")
        path = self.file("bundle.pem", b"comment\n" + first + b"\n" + second)
        certificates = load_certificates(path)
        self.assertEqual([c.dumpPEM() for c in certificates], [first, second])
        self.assertIsNotNone(load_ca_file(path))

    def test_messages(self):
        missing = os.path.join(self.directory, "missing.pem")
        empty = self.file("empty.pem", b"not a certificate\n")
        garbage = self.file("garbage.pem", GARBAGE)
        for call, message in [
            (lambda: load_ca_file(missing),
             f"cannot read ca_file {missing!r}: No such file or directory"),
            (lambda: load_ca_file(self.directory),
             f"cannot read ca_file {self.directory!r}: it is a directory, not a regular file"),
            (lambda: load_ca_file(empty), f"ca_file {empty!r} holds no PEM certificate"),
            (lambda: load_ca_file(garbage),
             f"ca_file {garbage!r} holds a PEM certificate that cannot be read ("),
        ]:
            with self.assertRaises(CertificateFileError) as caught:
                call()
            self.assertTrue(str(caught.exception).startswith(message), str(caught.exception))

    def test_client_certificate(self):
        _, cert, key = self.certificate("client")
        _, _, other_key = self.certificate("other")
        cert_file, key_file = self.file("c.pem", cert), self.file("k.pem", key)
        mine = load_client_certificate(cert_file, key_file)
        self.assertEqual(mine.dumpPEM().count(b"-----BEGIN"), 2)    # key and certificate
        missing = os.path.join(self.directory, "missing.key")
        with self.assertRaises(CertificateFileError) as caught:
            load_client_certificate(cert_file, missing)
        self.assertEqual(str(caught.exception),
                         f"cannot read key_file {missing!r}: No such file or directory")
        for bad_cert, bad_key in [(key_file, key_file),
                                  (cert_file, self.file("o.pem", other_key))]:
            with self.assertRaises(CertificateFileError) as caught:
                load_client_certificate(bad_cert, bad_key)
            self.assertEqual(str(caught.exception),
                             f"cert_file {bad_cert!r} and key_file {bad_key!r} are not a PEM "
                             f"certificate and its unencrypted key")

    def test_connection_creators(self):
        ca_file, _, _ = self.certificate("ca")
        self.assertIsNotNone(client_tls("example.org", trust=load_ca_file(ca_file)))
        self.assertIsNotNone(client_tls("example.org"))
        self.assertIsNotNone(UnverifiedTLS("example.org").clientConnectionForTLS(None))

    def test_openssl_is_loaded_only_when_used(self):
        code = ("import sys, senselink.sources.tls; "
                "print('OpenSSL' in sys.modules, 'twisted.internet.ssl' in sys.modules)")
        root = ROOT
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": root}, timeout=60, check=True)
        self.assertEqual(output.stdout.split(), ["False", "False"])


class ConfigMessageTests(FilesTestCase):
    """A bad file reads the same in the config errors of all three sources."""

    def problem(self, source):
        with self.assertRaises(ConfigError) as caught:
            load_text("sources:\n" + source, "c.yml")
        (problem,) = caught.exception.problems
        return problem

    def sources(self, path):
        return {
            "hass.ca_file": f"- hass:\n    url: wss://hass\n    auth_token: abc\n"
                            f"    ca_file: {path}\n    plugs:\n    - P:\n"
                            f"        entity_id: light.x\n",
            "http.ca_file": f"- http:\n    url: https://meter/\n    ca_file: {path}\n"
                            f"    plugs:\n    - P: {{}}\n",
            "mqtt.tls": f"- mqtt:\n    host: broker\n    tls:\n      ca_file: {path}\n"
                        f"    plugs:\n    - P:\n        power_topic: p\n",
        }

    def test_same_message_for_every_source(self):
        missing = os.path.join(self.directory, "missing.pem")
        empty = self.file("empty.pem", b"")
        for path, message in [(missing, f"cannot read ca_file {missing!r}: No such file or "
                                         f"directory"),
                              (empty, f"ca_file {empty!r} holds no PEM certificate")]:
            for key, source in self.sources(path).items():
                problem = self.problem(source)
                self.assertRegex(problem, r"^c\.yml:\d+: sources\[0\]\." + key.replace(".", r"\.")
                                 + ": ")
                self.assertTrue(problem.endswith(": " + message), problem)

    def test_good_file(self):
        ca_file, _, _ = self.certificate("ca")
        for source in self.sources(ca_file).values():
            config = load_text("sources:\n" + source, "c.yml")
            self.assertEqual(len(config.sources), 1)
