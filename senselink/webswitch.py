"""The web interface the config's C{web} section asks for: its listener opened, moved
(the new one opened before the old one closes) or closed, and the power history the
interface shows, kept while it is on."""

from twisted.internet.error import CannotListenError

from senselink.errors import listen_error
from senselink.excerpt import clip
from senselink.history import PowerHistory
from senselink.log import Logger

log = Logger()

# How a listener of the web section is named in a line saying it cannot listen.
WEB_LISTENER = "for the web interface on {where}"


class WebSwitch:
    """The listening service of the C{web} section, a child of C{daemon} (which the web
    interface serves through its public API), and the power history while it listens.

    C{service} is the listening service (None while off), C{settings} the
    C{WebOptions} in force (None: off), C{history} the L{PowerHistory} (None: off).
    """

    def __init__(self, daemon):
        self.daemon = daemon
        self.service = None
        self.settings = None
        self.history = None
        self.opened = None       # (listen, service) opened by open() and not yet taken

    def reconfigure(self, options, starting=False):
        """Listen as C{options} (a C{WebOptions}, or None: off) say.

        Only a changed C{listen} rebinds: the new listener is opened before the old
        one closes (or was opened already by L{open}), so a listen that cannot
        listen (a port in use, no permission) leaves the old one serving. A new
        token applies at once (the interface reads it from the running config at
        each request), so a new short one is a warning now, once, whichever
        listeners serve it.

        @return: why the new listener could not listen (the old one and its
            options stay), or None.
        """
        old, old_options = self.service, self.settings
        old_listen = old_options.listen if old_options is not None else None
        new_listen = options.listen if options is not None else None
        if old_listen == new_listen and (old is not None or options is None):
            self._take(options)
            return None
        if options is None:
            if old is not None:
                self.service = None
                old.disownServiceParent()
            if self.history is not None:
                self.history.stop()
                self.history = None
            log.info("Web interface off")
            self.settings = None
            return None
        opened = self.opened
        self.opened = None
        if opened is None or opened[0] != new_listen:
            if opened is not None:
                opened[1].disownServiceParent()
            service, problem = self._open(options, named=old is None)
            if problem is not None:
                if old is None:
                    log.error("{error}", error=problem)
                    self.settings = options
                    return None if starting else problem
                return f"{problem}; the web interface stays on {old_listen}"
        else:
            service = opened[1]
        if old is not None:
            old.disownServiceParent()
        self.service = service
        self._take(options)
        return None

    def open(self, options):
        """Open the listener C{options} ask for when its C{listen} is not the running one's,
        and keep it (L{set} takes it, L{close_opened} closes it); nothing else changes.

        @return: why it cannot listen (the old listener serves on), or None.
        """
        old_listen = self.settings.listen if self.settings is not None else None
        if options is None or (options.listen == old_listen and self.service is not None):
            return None
        self.close_opened()
        service, problem = self._open(options, named=self.service is None)
        if problem is not None:
            if old_listen is not None:
                problem += f"; the web interface stays on {old_listen}"
            return problem
        self.opened = (options.listen, service)
        return None

    def close_opened(self):
        """Close the listener L{open} opened and L{set} did not take."""
        opened, self.opened = self.opened, None
        if opened is not None:
            opened[1].disownServiceParent()
            if self.service is None and self.history is not None:   # made by open()
                self.history.stop()
                self.history = None

    def _open(self, options, named):
        """C{(service, None)}: the web interface listening as C{options} say, or
        C{(None, why not)}."""
        if self.history is None:
            self.history = PowerHistory(self.daemon.reactor)
            self.history.follow(self.daemon.hub)
        from senselink import web as _web     # loaded only when configured
        service = _web.make_service(self.daemon, options)
        if named:
            service.setName("web")     # (a start-up failure names the listener by it)
        try:
            service.setServiceParent(self.daemon)
        except Exception as e:        # CannotListenError, or what an endpoint raises
            service.disownServiceParent()
            reason = str(listen_error(WEB_LISTENER, e)) \
                if isinstance(e, CannotListenError) else clip(str(e) or type(e).__name__)
            return None, reason
        return service, None

    def _take(self, options):
        """C{options} are in force: a new token shorter than it should be is a warning."""
        if options is not None and options.token != getattr(self.settings, "token", None):
            from senselink import web as _web     # loaded only when configured
            _web.warn_if_short(options.token)
        self.settings = options
