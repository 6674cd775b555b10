"""One published plug's watts and kWh, on a clock: L{PlugFeed}.

Watts go out when they change, at most every C{min_interval} seconds (a
faster change waits, and the latest value goes when the interval is over)
and at least every C{max_interval} seconds (the same value again). kWh go
out when the publisher asks (every C{energy_interval} seconds, on connect,
at stop): as the state file keeps them, never below the last value sent.
"""

from senselink.publish.discovery import energy_text, energy_value, power_text


class PlugFeed:
    """One plug's state messages for the publisher's outbox (the publisher, following
    the plug hub, calls L{changed} when the plug changes)."""

    def __init__(self, plug, topics, publisher):
        self.plug = plug
        self.topics = topics
        self.publisher = publisher
        self.clock = publisher.clock
        self.sent_power = None        # the last watts text queued
        self.sent_at = None           # when (clock seconds)
        self.energy = 0.0             # the last kWh queued: the floor of the next
        self.config_sent = {}         # config topic -> payload queued last
        self._wait = None             # a DelayedCall: the end of min_interval
        self._heartbeat = None        # a DelayedCall: max_interval after the last message

    def changed(self, plug, now=None):
        """The plug changed: watts now, or when min_interval is over."""
        if self._wait is not None or power_text(self.plug) == self.sent_power:
            return
        now = self.clock.seconds() if now is None else now
        settings = self.publisher.settings
        if self.sent_at is not None and now - self.sent_at < settings.min_interval:
            self._wait = self.clock.callLater(settings.min_interval - (now - self.sent_at),
                                              self._waited)
            return
        self.power()

    def _waited(self):
        self._wait = None
        if power_text(self.plug) != self.sent_power:
            self.power()

    def power(self):
        """Queue the plug's watts now, and the next heartbeat."""
        text = power_text(self.plug)
        self.sent_power = text
        self.sent_at = self.clock.seconds()
        self.publisher.put(self.topics.power, text)
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        self._heartbeat = self.clock.callLater(self.publisher.settings.max_interval, self.power)

    def energy_now(self, meter):
        """Queue the plug's kWh from C{meter}, never less than the last sent: those a
        crash cannot take back (as the state file has them), so that after a restart
        the counter goes on from at least what was published."""
        kept = meter.kept_kwh(self.plug)
        if kept is None:          # the state file is not loaded or saved yet
            return
        self.energy = max(self.energy, energy_value(kept))
        self.publisher.put(self.topics.energy, energy_text(self.energy))

    def configs(self, force=False):
        """Queue the plug's discovery configs that changed (all of them with C{force})."""
        for topic, payload in self.topics.configs(self.plug).items():
            if force or self.config_sent.get(topic) != payload:
                self.config_sent[topic] = payload
                self.publisher.put(topic, payload, qos=1)

    def rebind(self, plug, topics):
        """Follow C{plug} (the same plug, kept or rebuilt by a reload) under C{topics}."""
        self.plug = plug
        self.topics = topics

    def stop(self):
        for call in (self._wait, self._heartbeat):
            if call is not None and call.active():
                call.cancel()
        self._wait = self._heartbeat = None
