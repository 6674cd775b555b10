"""Messages to plugs: which plugs a topic feeds, and what a payload does to each.

Each plug's use of a topic is a L{Route} to its L{senselink.power.Feed}. A
payload that cannot be used (not UTF-8, not JSON, too deep, too large,
nothing at the keypath, not a number) leaves the plug as it was and is
logged once per topic and plug until a good value arrives, with at most
200 characters of it and its full size. At most L{MAX_COMPLAINTS} topic and
plug pairs have an open complaint (a wildcard lets a broker send on any number
of topics): past that, one line says so and the rest are only counted
(C{Router.unlogged}).
"""

from senselink.excerpt import MAX_MESSAGE, clip, excerpt
from senselink.log import Logger
from senselink.mqtt.topics import has_wildcard, matches
from senselink.power import Feed, PowerModel, UnreadableValue
from senselink.readings import PowerPaths
from senselink.sources.base import Complaints
from senselink.sources.mqtt import payload as payloads

log = Logger()

MAX_COMPLAINTS = 100         # topic and plug pairs with an open complaint, at most


class Route:
    """One plug's use of one topic: which feed method and which keypath."""

    __slots__ = ("feed", "role", "keypath", "apply")

    def __init__(self, feed, role, keypath):
        self.feed = feed
        self.role = role
        self.keypath = keypath
        self.apply = getattr(feed, role)     # Feed.power, Feed.state or Feed.attribute

    @property
    def plug(self):
        return self.feed.plug


class Router:
    """The routes of one source's plugs, by topic filter; applies each message."""

    def __init__(self, source, plugs, clock):
        """
        @param source: the source's config; C{plugs}: the plugs by id.
        """
        self.complaints = Complaints(log)
        self.max_payload = source.settings.max_payload_size
        self.debug = False
        self.feeds = []
        self.routes = {}           # topic filter -> [Route]
        for plug_config in source.plugs:
            self._add_plug(plug_config, plugs[plug_config.id], clock)
        self.topics = list(self.routes)
        self._wildcards = [(f, r) for f, r in self.routes.items() if has_wildcard(f)]
        self.messages = 0
        self.applied = 0           # messages a plug took a value from
        self.unlogged = 0          # unusable messages not logged: too many complaints open

    def _add_plug(self, plug_config, plug, clock):
        settings = plug_config.settings
        feed = Feed(plug, PowerModel.from_settings(settings, plug_config.max_plug_watts), clock,
                    timeout=settings.timeout_duration,
                    uses_power=settings.power_topic is not None,
                    uses_attribute=settings.attribute_topic is not None)
        self.feeds.append(feed)
        for role, topic, keypath in settings.routes:
            if topic is not None:
                if role == "power":     # several values in one payload: a PowerPaths
                    keypath = PowerPaths.from_settings(settings, single=None) or keypath
                self.routes.setdefault(topic, []).append(Route(feed, role, keypath))

    def plugs_on(self, topic_filter):
        """The ids of the plugs a topic filter feeds, in config order, each once."""
        return list(dict.fromkeys(route.plug.id for route in self.routes.get(topic_filter, ())))

    def routes_for(self, topic):
        """Every route a message on C{topic} (a topic name, no wildcards) reaches."""
        found = list(self.routes.get(topic, ()))
        for topic_filter, routes in self._wildcards:
            if matches(topic_filter, topic):
                found.extend(routes)
        return found

    # -- messages --

    def message(self, topic, payload, retain=False):
        """Apply one message to the plugs on its topic; whether any took a value from it."""
        return self.publish(topic, payload, 0, retain, None, False)

    def publish(self, topic, payload, qos, retain, packet_id, dup):
        """L{message} with the fields of a PUBLISH, as the decoder hands them over.

        The hot path of the source: one call per message, the usual plain
        payload read here rather than in another call.
        """
        self.messages += 1
        routes = self.routes.get(topic) if not self._wildcards else self.routes_for(topic)
        if routes is None:
            return False
        delivered = parsed = False
        for route in routes:
            keypath = route.keypath
            try:
                if keypath is None:
                    try:
                        value = payload.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        raise UnreadableValue("the payload is not UTF-8 text") from None
                    if not value:
                        raise UnreadableValue("the payload is empty")
                else:
                    if not parsed:              # once per message, for every keypath route
                        parsed = True
                        document, problem = payloads.parse(payload)
                    if problem is not None:
                        raise UnreadableValue(problem)
                    value = payloads.at(document, keypath)
                watts = route.apply(value)
            except UnreadableValue as e:
                self._unreadable(route, topic, payload, len(payload), str(e))
                continue
            delivered = True
            if self.complaints.open:
                self.complaints.resolved(
                    (topic, route.plug.id), "MQTT {topic}: the {role} of plug {plug} is "
                    "readable again", topic=_topic(topic), role=route.role,
                    plug=route.plug.id)
            if self.debug:
                self._debug(route, topic, value, watts, retain)
        if delivered:
            self.applied += 1
        return delivered

    def oversized(self, topic, head, size):
        """A message whose payload was over C{max_payload_size}: every plug keeps its value."""
        self.messages += 1
        for route in self.routes_for(topic):
            self._unreadable(route, topic, head, size,
                             f"the payload is over max_payload_size ({self.max_payload} bytes)")

    def _debug(self, route, topic, value, watts, retain):
        log.debug("MQTT {topic}{retained}: {role} {value} -> plug {plug} {watts} W",
                  topic=_topic(topic), retained=" (retained)" if retain else "",
                  role=route.role, value=excerpt(value),
                  plug=route.plug.id, watts=watts)

    def _unreadable(self, route, topic, payload, size, problem):
        """Log a payload the plug cannot use, once per topic and plug until it reads again.

        C{payload} is all of it or, when it was over the limit, its first bytes;
        C{size} is its full size.
        """
        complaints = self.complaints
        key = (topic, route.plug.id)
        if key not in complaints.open and len(complaints.open) >= MAX_COMPLAINTS:
            if not self.unlogged:
                log.warn("MQTT: payloads that cannot be used arrive on more than {n} topic and "
                         "plug pairs; the others are counted, not logged one by one",
                         n=MAX_COMPLAINTS)
            self.unlogged += 1
            return False
        complaints.problem(
            key, "MQTT {topic}: cannot use {payload} for the {role} of plug "
            "{plug}: {problem}; the plug keeps {watts} W",
            topic=_topic(topic), payload=excerpt(payload, size), role=route.role,
            plug=route.plug.id, problem=clip(problem, MAX_MESSAGE), watts=route.plug.watts)
        return False


def _topic(topic):
    """A topic for a log line: as it is when short and printable, else its excerpt."""
    return clip(topic) if topic.isprintable() else excerpt(topic)
