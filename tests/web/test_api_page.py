"""The API the status page uses beyond the plugs: the snapshot a tab starts from, the
token check of Unlock, and a history that gives only what is new."""

from twisted.internet import defer

from tests.websupport import TOKEN, WebTestCase


class PageApiTests(WebTestCase):

    @defer.inlineCallbacks
    def test_snapshot_is_the_streams_first_event(self):
        code, body = yield self.json_call("GET", "/api/snapshot")
        self.assertEqual(code, 200)
        self.assertEqual([p["id"] for p in body["plugs"]], ["fridge", "ev", "lamp", "meter",
                                                             "lights"])
        self.assertIn("spark", body["plugs"][0])
        self.assertEqual(body["status"]["plugs"], 5)
        self.assertEqual(body["status"]["max_plug_watts"], 100000)

    @defer.inlineCallbacks
    def test_token_check(self):
        code, body = yield self.json_call("GET", "/api/token", token=TOKEN)
        self.assertEqual((code, body), (200, {"ok": True}))
        for token in (None, "wrong", TOKEN + "x"):
            code, body = yield self.json_call("GET", "/api/token", token=token)
            self.assertEqual(code, 401, token)
            self.assertIn("Authorization", body["error"])
        code, body = yield self.json_call("PUT", "/api/token", token=TOKEN)
        self.assertEqual(code, 405)

    @defer.inlineCallbacks
    def test_history_since(self):
        code, full = yield self.json_call("GET", "/api/plugs/ev/history")
        self.assertEqual(len(full["days"]), 30)
        self.assertNotIn("since", full)
        since = full["now"]
        self.service.set_power("ev", 321.0)
        code, new = yield self.json_call("GET", f"/api/plugs/ev/history?since={since!r}")
        self.assertEqual(code, 200)
        self.assertEqual(new["since"], since)
        self.assertTrue(all(t > since - 1.0 for t, _ in new["recent"]), new["recent"])
        self.assertEqual(new["recent"][-1][1], 321.0)
        self.assertTrue(all(t + 60 > since - 1.0 for t, *_ in new["minutes"]))
        self.assertLessEqual(len(new["minutes"]), 2)
        self.assertEqual([d for d, _ in new["days"]], [d for d, _ in full["days"][-2:]])
        for bad in ("nan", "inf", "x", "1e999"):
            code, body = yield self.json_call("GET", f"/api/plugs/ev/history?since={bad}")
            self.assertEqual(code, 400, bad)
            self.assertIn("since", body["error"])
