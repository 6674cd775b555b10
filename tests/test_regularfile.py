"""The one way files a person names are read: regular files only, never blocking, capped.

In process: the reader on FIFOs, device nodes, symlinks, directories, sockets and
sparse files made in a temp dir. As a user meets it: the daemon started with a
state file that is not a regular file, and SIGHUP after the config was replaced
by one (the daemon keeps its config, keeps answering, and SIGTERM still stops it).
"""

import os
import shutil
import signal
import socket
import stat
import sys
import tempfile

from twisted.trial import unittest

from senselink.regularfile import UnreadableFile, describe_size, read_regular
from tests.processes import Case, DaemonProcess, limit_memory, sense_replies
from tests.support import LOOPBACK, free_port

CONFIG = ("state_file: {state}\nsources:\n- static:\n    plugs:\n"
          "    - lamp: {{max_watts: 5, mac: '53:75:31:00:0C:01'}}\n")


def char_device(path):
    """A device node like /dev/null (major 1, minor 3): made here, as root may."""
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))


class ReaderTests(unittest.TestCase):
    def setUp(self):
        if os.getuid() != 0:
            raise unittest.SkipTest("device nodes are made with mknod, which needs root")
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def refused(self, path, limit=1024):
        with self.assertRaises(UnreadableFile) as caught:
            read_regular(path, limit, "config file")
        return str(caught.exception)

    def test_a_regular_file_and_a_symlink_to_one(self):
        with open(self.path("c.yml"), "wb") as f:
            f.write(b"sources: []\n")
        os.symlink("c.yml", self.path("link.yml"))
        self.assertEqual(read_regular(self.path("c.yml"), 12), b"sources: []\n")
        self.assertEqual(read_regular(self.path("link.yml"), 12), b"sources: []\n")

    def test_a_fifo_is_refused_at_once(self):
        os.mkfifo(self.path("fifo"))
        self.assertEqual(self.refused(self.path("fifo")), "it is a FIFO (named pipe), not a "
                                                          "regular file")

    def test_devices_are_refused_and_never_read(self):
        char_device(self.path("null"))
        os.symlink("/dev/zero", self.path("zero.yml"))
        for name in ("null", "zero.yml"):
            self.assertEqual(self.refused(self.path(name)),
                             "it is a character device, not a regular file")

    def test_a_directory_and_a_socket(self):
        self.assertEqual(self.refused(self.dir), "it is a directory, not a regular file")
        short = tempfile.mkdtemp()          # a socket's path is short
        self.addCleanup(shutil.rmtree, short)
        path = os.path.join(short, "sock")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path)
            self.assertEqual(self.refused(path), "it is a socket, not a regular file")

    def test_missing(self):
        with self.assertRaises(UnreadableFile) as caught:
            read_regular(self.path("nothing"), 10)
        self.assertTrue(caught.exception.missing)
        self.assertEqual(str(caught.exception), "No such file or directory")
        os.symlink("nothing", self.path("dangling"))
        with self.assertRaises(UnreadableFile) as caught:
            read_regular(self.path("dangling"), 10)
        self.assertTrue(caught.exception.missing)

    def test_a_file_above_the_cap_is_refused_before_it_is_read(self):
        with open(self.path("big"), "wb") as f:
            f.truncate(1 << 30)          # sparse: 1 GiB that takes no room
        self.assertEqual(self.refused(self.path("big"), 4 << 20),
                         "it holds 1073741824 bytes, more than the 4 MiB a config file may hold")
        with open(self.path("exact"), "wb") as f:
            f.write(b"x" * 1024)
        self.assertEqual(len(read_regular(self.path("exact"), 1024)), 1024)
        self.assertIn("more than the 1023 bytes", self.refused(self.path("exact"), 1023))

    def test_sizes_as_a_person_writes_them(self):
        self.assertEqual(describe_size(4 << 20), "4 MiB")
        self.assertEqual(describe_size(16 << 20), "16 MiB")
        self.assertEqual(describe_size(64 << 10), "64 KiB")
        self.assertEqual(describe_size(1000), "1000 bytes")


class StartTests(Case):
    """`python -m senselink` with a state file that is not a regular file: one line, exit 1,
    and the thing at the path left as it was."""

    def setUp(self):
        if os.getuid() != 0:
            raise unittest.SkipTest("device nodes are made with mknod, which needs root")

    def start(self, make):
        directory = self.mktemp_dir()
        state = os.path.join(directory, "state")
        make(state)
        before = os.lstat(state)
        config = os.path.join(directory, "c.yml")
        with open(config, "w") as f:
            f.write(CONFIG.format(state=state))
        result = self.run_quick([sys.executable, "-m", "senselink", "-c", config, "-p",
                                 str(free_port()), "--interface", LOOPBACK], timeout=30,
                                preexec_fn=limit_memory())
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertNotIn("Traceback", output)
        after = os.lstat(state)
        self.assertEqual((after.st_mode, after.st_ino, after.st_rdev, after.st_size),
                         (before.st_mode, before.st_ino, before.st_rdev, before.st_size))
        self.assertEqual(sorted(os.listdir(directory)), ["c.yml", "state"])   # nothing renamed
        return state, output

    def test_a_character_device(self):
        state, output = self.start(char_device)
        self.assertIn(f"senselink: energy state file unusable: cannot read {state}: it is a "
                      f"character device, not a regular file", output)

    def test_a_fifo(self):
        state, output = self.start(os.mkfifo)
        self.assertIn(f"cannot read {state}: it is a FIFO (named pipe), not a regular file", output)

    def test_a_huge_file(self):
        def huge(path):
            with open(path, "wb") as f:
                f.truncate(1 << 30)
        state, output = self.start(huge)
        self.assertIn(f"cannot read {state}: it holds 1073741824 bytes, more than the 16 MiB a "
                      f"state file may hold", output)


class ReloadTests(Case):
    """SIGHUP after the config was replaced by what is not a regular file: the daemon keeps
    its config and keeps answering, and SIGTERM stops it."""

    def reload_with(self, make):
        directory = self.mktemp_dir()
        config = os.path.join(directory, "c.yml")
        with open(config, "w") as f:
            f.write(CONFIG.format(state="false"))
        port = free_port()
        daemon = DaemonProcess(self, [sys.executable, "-m", "senselink", "-c", config, "-p",
                                      str(port), "--interface", LOOPBACK],
                               preexec_fn=limit_memory())
        sense_replies(port, 1)
        os.unlink(config)
        make(config)
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("Reload rejected, still running the previous config")
        self.assertEqual(len(sense_replies(port, 1, attempts=10)), 1)
        daemon.process.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.process.wait(timeout=20), 0)
        output = daemon.stop()
        self.assertNotIn("Traceback", output)
        return config, output

    def test_a_fifo(self):
        config, output = self.reload_with(os.mkfifo)
        self.assertIn(f"{config}: cannot read config: it is a FIFO (named pipe), not a regular "
                      f"file", output)

    def test_a_symlink_to_dev_zero(self):
        config, output = self.reload_with(lambda path: os.symlink("/dev/zero", path))
        self.assertIn(f"{config}: cannot read config: it is a character device, not a regular "
                      f"file", output)
