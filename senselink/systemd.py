"""systemd's notify protocol, without libsystemd: one datagram per message.

Under a C{Type=notify} unit systemd names a Unix datagram socket in
C{NOTIFY_SOCKET} (a path, or C{@name} for a name in the abstract namespace)
and reads newline-separated C{KEY=value} fields from each datagram. The
daemon sends:

  - C{READY=1} once the Kasa ports listen and the config is loaded, with a
    C{STATUS=} line (plug count, source states) that follows changes;
  - C{RELOADING=1} (with C{MONOTONIC_USEC=}) when a reload begins and
    C{READY=1} when it has been applied or rejected;
  - C{STOPPING=1} when it stops;
  - C{WATCHDOG=1} every half C{WATCHDOG_USEC}, from a timer on the reactor, so
    that the pings stop while the reactor is blocked and systemd restarts a
    daemon that hangs. C{WATCHDOG_PID}, when set, must be our process id.

L{SystemdNotify} is a child service of the daemon (see
L{senselink.service.makeService}); nothing here runs without C{NOTIFY_SOCKET}.
Sending never blocks and never raises: a full or missing socket is logged once.
"""

import os
import socket
import time

from twisted.application.internet import TimerService
from twisted.application.service import MultiService

from senselink.log import Logger

log = Logger()

STATUS_INTERVAL = 5.0       # seconds between checks whether STATUS= changed
MAX_STATUS = 200            # characters of a STATUS= line


def notify_address(value):
    """The socket address in C{NOTIFY_SOCKET}: a path, C{'\\0name'} for C{@name}, or None.

    Other forms (C{vsock:...}, relative paths) are not supported and give None.
    """
    value = (value or "").strip()
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ, pid=None):
    """Seconds between C{WATCHDOG=1} pings, half of C{WATCHDOG_USEC}; None when the
    watchdog is off or meant for another process (C{WATCHDOG_PID})."""
    try:
        usec = int(environ.get("WATCHDOG_USEC") or 0)
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2e6


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as systemd wants it with C{RELOADING=1}."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends notify messages to one socket address; never blocks, never raises."""

    def __init__(self, address):
        self.address = address
        self.socket = None          # made at the first send, after close() too
        self._failing = False       # the last send failed (logged once until one succeeds)

    @classmethod
    def from_environment(cls, environ=None):
        """A Notifier for C{NOTIFY_SOCKET}, or None when it is unset or unsupported."""
        environ = os.environ if environ is None else environ
        value = environ.get("NOTIFY_SOCKET")
        address = notify_address(value)
        if address is None:
            if value:
                log.warn("NOTIFY_SOCKET={value!r} is not a path or an @abstract name; not "
                         "notifying systemd", value=value[:200])
            return None
        return cls(address)

    def send(self, *fields) -> bool:
        """Send C{fields} (C{"READY=1"}, C{"STATUS=..."}) as one datagram."""
        data = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self.socket is None:
                self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.socket.setblocking(False)
            self.socket.sendto(data, self.address)
        except OSError as e:
            if not self._failing:
                self._failing = True
                log.warn("Cannot notify systemd at {address}: {reason}",
                         address=self.address.replace("\0", "@"),
                         reason=e.strerror or str(e))
            return False
        if self._failing:
            self._failing = False
            log.info("Notifying systemd again")
        return True

    def close(self):
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def status_text(plugs, sources) -> str:
    """The C{STATUS=} line: plugs (a PlugSet), how many Sense sees, and which of
    C{sources} (source services) are connected."""
    n = len(plugs)
    text = f"{n} {'plug' if n == 1 else 'plugs'}, {len(plugs.reported)} reported to Sense"
    if sources:
        down = [f"{s.kind} {s.label}".strip() for s in sources if not s.connected]
        text += f"; sources: {len(sources) - len(down)} of {len(sources)} connected"
        if down:
            text += f" (not connected: {', '.join(down)})"
    if len(text) > MAX_STATUS:
        text = text[:MAX_STATUS - 3] + "..."
    return text


class SystemdNotify(MultiService):
    """Child of the L{senselink.daemon.Daemon}: tells systemd how the daemon is doing.

    Added last to the daemon, it starts once the Kasa listeners have started
    and stops first. C{reloader} (a L{senselink.reload.Reloader}) tells it
    about reloads. C{status()} is the C{STATUS=} text now (see L{status_text}). Its
    timers run on C{clock}.
    """

    name = "systemd"

    def __init__(self, status, notifier, *, clock, reloader=None, watchdog=None,
                 status_interval=STATUS_INTERVAL):
        super().__init__()
        self.status = status
        self.notifier = notifier
        self.watchdog = watchdog
        self.pings = 0
        self._status = None
        self._reload_note = ""      # how the last reload failed, for STATUS=
        status = TimerService(status_interval, self.update_status)
        status.clock = clock
        status.setServiceParent(self)
        if watchdog:
            pinger = TimerService(watchdog, self.ping)
            pinger.clock = clock
            pinger.setServiceParent(self)
        if reloader is not None:
            reloader.watchers.append(self)

    @classmethod
    def from_environment(cls, status, clock, reloader=None, environ=None):
        """The service for C{NOTIFY_SOCKET} and C{WATCHDOG_USEC}, or None outside systemd."""
        environ = os.environ if environ is None else environ
        notifier = Notifier.from_environment(environ)
        if notifier is None:
            return None
        return cls(status, notifier, clock=clock, reloader=reloader,
                   watchdog=watchdog_interval(environ))

    def startService(self):
        self._status = self.status()
        self.notifier.send("READY=1", "STATUS=" + self._status)
        if self.watchdog:
            log.info("Notifying systemd, watchdog ping every {interval:.1f} s",
                     interval=self.watchdog)
        else:
            log.info("Notifying systemd (no watchdog)")
        super().startService()

    def stopService(self):
        self.notifier.send("STOPPING=1", "STATUS=Stopping")
        d = super().stopService()
        self.notifier.close()
        return d

    def ping(self):
        if self.notifier.send("WATCHDOG=1"):
            self.pings += 1

    def update_status(self):
        """Send C{STATUS=} when it changed since the last one sent."""
        text = self._with_note(self.status())
        if text != self._status:
            self._status = text
            self.notifier.send("STATUS=" + text)

    # -- told by the reloader --

    def reloading(self):
        self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}",
                           "STATUS=Reloading the config")

    def reloaded(self, applied, why=None):
        """READY=1 after every reload, with a STATUS= saying how a failed one failed:
        rejected (an invalid config), or not applied and why (the old config serves)."""
        self._reload_note = ("" if applied else "; the last reload was rejected" if not why
                             else f"; the last reload was not applied: {why}")
        self._status = self._with_note(self.status())
        self.notifier.send("READY=1", "STATUS=" + self._status)

    def _with_note(self, text):
        text += self._reload_note
        return text if len(text) <= MAX_STATUS else text[:MAX_STATUS - 3] + "..."
