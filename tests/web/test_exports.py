"""The CSV downloads of a plug's history: 24 hours per minute and kWh per day."""

import csv
import io

from twisted.internet import defer

from senselink.web.exports import filename
from tests.websupport import WebTestCase


class ExportTests(WebTestCase):

    def test_filename_keeps_safe_characters(self):
        self.assertEqual(filename("ev", "days"), b"senselink-ev-days.csv")
        self.assertEqual(filename('a"b/\u00e9 c', "history"), b"senselink-a_b___c-history.csv")

    @defer.inlineCallbacks
    def test_csv_downloads(self):
        response, content = yield self.call("GET", "/api/plugs/ev/history.csv")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [b"text/csv; charset=utf-8; header=present"])
        self.assertEqual(response.headers.getRawHeaders(b"content-disposition"),
                         [b'attachment; filename="senselink-ev-history.csv"'])
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
        self.assertGreaterEqual(len(rows), 1)
        self.assertEqual(float(rows[-1]["mean_watts"]), 1500.0)
        self.assertRegex(rows[-1]["minute_utc"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00Z$")
        self.assertEqual(int(rows[-1]["epoch_seconds"]) % 60, 0)
        response, content = yield self.call("GET", "/api/plugs/ev/days.csv")
        self.assertEqual(response.code, 200)
        rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
        self.assertEqual(rows[0], ["date", "kwh"])
        self.assertGreaterEqual(len(rows), 2)
        self.assertRegex(rows[-1][0], r"^\d{4}-\d\d-\d\d$")
        self.assertGreaterEqual(float(rows[-1][1]), 0.0)
        response, _ = yield self.call("GET", "/api/plugs/nosuch/days.csv")
        self.assertEqual(response.code, 404)
        response, _ = yield self.call("PUT", "/api/plugs/ev/days.csv")
        self.assertEqual(response.code, 405)
