"""Every tab live: 20 tabs of one browser share one event stream (Chromium opens at most
6 connections to a host over HTTP/1.1, so a stream per tab left tabs 7-20 blank)."""

from twisted.internet import defer

from tests.webpage import CARD, TOKEN, BrowserTestCase

TABS = 20


class TwentyTabsTests(BrowserTestCase):

    def streams(self):
        return len(self.service.web.web.events.clients)

    @defer.inlineCallbacks
    def test_twenty_tabs_all_live_on_one_stream(self):
        b = self.browser
        yield self.open()
        handles = [(yield b.call(lambda d: d.current_window_handle))]
        for _ in range(TABS - 1):
            yield b.call(lambda d: d.switch_to.new_window("tab"))
            yield self.open()
            handles.append((yield b.call(lambda d: d.current_window_handle)))
        self.assertEqual(len(set(handles)), TABS)
        self.assertEqual(self.streams(), 1)           # one stream for the browser

        @defer.inlineCallbacks
        def every_tab_shows(watts, tabs):
            shown = f"{watts:,.1f} W"
            for handle in tabs:
                yield b.call(lambda d: d.switch_to.window(handle))
                yield b.until(CARD + " && c.querySelector('.watts').textContent === "
                              "arguments[1];", f"{shown} in every tab", "ev", shown)

        code, _ = yield self.api.json("PUT", "/api/plugs/ev", {"power": 4321.0}, token=TOKEN)
        self.assertEqual(code, 200)
        yield every_tab_shows(4321.0, handles)

        # The tab that reads the stream closes: another takes over, still one stream.
        yield b.call(lambda d: d.switch_to.window(handles[0]))
        yield b.call(lambda d: d.close())
        code, _ = yield self.api.json("PUT", "/api/plugs/ev", {"power": 1234.5}, token=TOKEN)
        self.assertEqual(code, 200)
        yield every_tab_shows(1234.5, handles[1:])
        self.assertEqual(self.streams(), 1)
        live = yield b.script("return document.getElementById('live').textContent;")
        self.assertEqual(live, "live")
        yield self.assert_console_clean()
