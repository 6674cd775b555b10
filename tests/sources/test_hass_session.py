"""HassSession alone: messages in, outputs out, the time as plain numbers; no reactor, no
connection, no service."""

import json

from twisted.trial import unittest

from senselink.sessionoutputs import Abort, Close, Send
from senselink.sources.hass.events import (BEGINS, OPENED, Authenticated, AuthRejected,
                                           EntityChanged, Info, MissingEntities, Problem, Ready,
                                           TooLarge)
from senselink.sources.hass.session import HassSession

TOKEN = "eyJhbGciOiJIUzI1NiJ9.session-token.c2lnbmF0dXJl"
AUTH_REQUIRED = json.dumps({"type": "auth_required", "ha_version": "2024.1.6"})
AUTH_OK = json.dumps({"type": "auth_ok", "ha_version": "2024.1.6"})
SUBSCRIBED = json.dumps({"id": 1, "type": "result", "success": True, "result": None})
HEATER = "sensor.heater_power"


def message(**fields):
    return json.dumps(fields).encode("utf-8")


def first_event(states):
    return message(id=1, type="event", event={"a": states})


def of(outputs, output_type):
    return [o for o in outputs if type(o) is output_type]


class SessionTests(unittest.TestCase):

    def session(self, entity_ids=(HEATER,), token=TOKEN):
        return HassSession(entity_ids, token, ping_interval=30, ping_timeout=10,
                           message_timeout=60)

    def ready(self, session, now=0.0, states=None):
        """Through the upgrade, authentication and subscription; the outputs of each step."""
        out = session.start(now)
        out += session.receive(OPENED, now)
        out += session.receive(AUTH_REQUIRED, now)
        out += session.receive(AUTH_OK, now)
        out += session.receive(SUBSCRIBED, now)
        out += session.receive(first_event(states or {}), now)
        return out

    def test_conversation(self):
        s = self.session()
        self.assertEqual(s.start(100.0), [])
        self.assertEqual(s.next_deadline(), 110.0)      # the upgrade must be answered
        self.assertEqual(s.receive(OPENED, 101.0), [])
        self.assertEqual(s.next_deadline(), 111.0)      # auth_required within ping_timeout
        self.assertEqual(s.receive(AUTH_REQUIRED, 102.0),
                         [Send({"type": "auth", "access_token": TOKEN})])
        self.assertEqual(s.next_deadline(), 112.0)
        self.assertEqual(s.receive(AUTH_OK, 103.0), [
            Authenticated("2024.1.6"),
            Send({"id": 1, "type": "subscribe_entities", "entity_ids": [HEATER]})])
        self.assertEqual(s.next_deadline(), 133.0)      # the first ping
        self.assertEqual(s.receive(SUBSCRIBED, 104.0),
                         [Info("subscribed to 1 entities"), Ready()])
        self.assertTrue(s.ready)
        out = s.receive(first_event({HEATER: {"s": "12", "a": {}, "c": "01", "lc": 1.0}}), 105)
        self.assertEqual(out, [EntityChanged(HEATER, {
            "entity_id": HEATER, "state": "12", "attributes": {}, "last_changed": 1.0,
            "last_updated": 1.0, "context": {"id": "01"}})])
        self.assertEqual(s.timeout(133.0), [Send({"id": 2, "type": "ping"})])
        self.assertEqual(s.next_deadline(), 143.0)      # its pong
        self.assertEqual(s.receive(message(id=2, type="pong"), 134.0), [])
        self.assertEqual(s.next_deadline(), 164.0)      # the next ping
        self.assertEqual(s.timeout(164.0), [Send({"id": 3, "type": "ping"})])
        out = s.timeout(174.0)
        self.assertEqual(type(out[-1]), Abort)
        self.assertEqual(of(out, Problem)[0].text, "sent no pong within 10 s: reconnecting")
        self.assertIsNone(s.next_deadline())

    def test_missing_entities_and_the_old_way(self):
        s = self.session((HEATER, "light.lamp"))
        out = self.ready(s, states={HEATER: {"s": "1", "a": {}, "c": "01", "lc": 1.0}})
        self.assertEqual(of(out, MissingEntities), [MissingEntities(("light.lamp",))])
        s = self.session()
        s.start(0)
        s.receive(OPENED, 0)
        s.receive(AUTH_REQUIRED, 0)
        s.receive(AUTH_OK, 0)
        out = s.receive(message(id=1, type="result", success=False, error={
            "code": "unknown_command", "message": "Unknown command."}), 1)
        self.assertEqual(of(out, Send), [
            Send({"id": 2, "type": "subscribe_events", "event_type": "state_changed"}),
            Send({"id": 3, "type": "get_states"})])
        out = s.receive(message(id=3, type="result", success=True, result=[
            {"entity_id": HEATER, "state": "6"}, {"entity_id": "sensor.other", "state": "9"}]), 2)
        self.assertEqual(of(out, EntityChanged),
                         [EntityChanged(HEATER, {"entity_id": HEATER, "state": "6"})])
        self.assertEqual(of(out, Ready), [Ready()])
        self.assertEqual(list(s.cache), [HEATER])

    def test_auth_invalid_and_an_unreadable_token(self):
        s = self.session()
        s.start(0)
        s.receive(OPENED, 0)
        s.receive(AUTH_REQUIRED, 0)
        out = s.receive(message(type="auth_invalid", message="Invalid access token"), 1)
        self.assertEqual(out, [AuthRejected("Invalid access token"), Close(None)])
        self.assertEqual(s.next_deadline(), 11)         # the server's close
        self.assertEqual(s.receive(AUTH_REQUIRED, 2), [])   # no token sent again

        def unreadable():
            raise OSError(2, "No such file or directory")
        s = self.session(token=unreadable)
        s.start(0)
        s.receive(OPENED, 0)
        out = s.receive(AUTH_REQUIRED, 0)
        self.assertEqual([type(o) for o in out], [Problem, Abort])
        self.assertIn("No such file or directory", out[0].text)

    def test_the_upgrade_not_answered(self):
        s = self.session()
        s.start(0)
        out = s.timeout(10)
        self.assertEqual(out[0], Problem("did not answer the websocket upgrade within 10 s: "
                                         "reconnecting", fatal=True))
        self.assertEqual(type(out[1]), Abort)

    def test_a_message_must_end_within_its_deadline(self):
        """Liveness is a whole message or a pong: bytes of a message do not push it back."""
        s = self.session()
        self.ready(s)
        s.timeout(30)                                   # ping 2
        self.assertEqual(s.receive(BEGINS, 35), [])     # a large message begins
        self.assertEqual(s.next_deadline(), 95)         # it must end within 60 s
        self.assertEqual(s.timeout(60), [])             # the pong may wait behind it
        out = s.timeout(95)
        self.assertEqual(out[0].text, "began a message that did not end within 60 s: "
                                      "reconnecting")
        self.assertEqual(type(out[1]), Abort)
        # A message that ends in time counts as the server being alive.
        s = self.session()
        self.ready(s)
        s.timeout(30)
        s.receive(BEGINS, 35)
        s.receive(message(type="event", id=1, event={"c": {}}), 80)
        self.assertEqual(s.next_deadline(), 90)         # the pong, from the whole message on

    def test_too_large(self):
        s = self.session()
        self.ready(s)
        (problem, abort) = s.receive(TooLarge(20_000_000, 16_777_216), 5)
        self.assertEqual(problem.once, "too large")
        self.assertIn("20,000,000 bytes, over max_message_size (16,777,216 bytes)", problem.text)
        self.assertEqual(type(abort), Abort)
