"""A fake Home Assistant Supervisor for tests, on 127.0.0.1: the two things the app asks it.

  GET /addons/self/info   the app's info; C{data.ingress_port} is what the run script reads
  /core/api/websocket     Home Assistant's websocket API through the Supervisor's proxy
  /core/websocket         (the same; the Supervisor serves both paths)
                          (the test Home Assistant server of L{tests.hass_server})

Both want C{Authorization: Bearer <token>} (the websocket in its C{auth} message),
as with the C{SUPERVISOR_TOKEN} the Supervisor gives an app.
"""

import json

from autobahn.twisted.resource import WebSocketResource
from twisted.internet import reactor
from twisted.web.resource import Resource

from tests.hass_server import FakeHomeAssistant
from tests.httpserver import TrackingSite


class AppInfo(Resource):
    isLeaf = True

    def __init__(self, supervisor):
        super().__init__()
        self.supervisor = supervisor

    def render_GET(self, request):
        authorization = request.getHeader(b"authorization")
        self.supervisor.info_requests.append(authorization)
        request.setHeader(b"Content-Type", b"application/json")
        if authorization != b"Bearer " + self.supervisor.token.encode():
            request.setResponseCode(401)
            return b'{"result": "error", "message": "Unauthorized"}'
        data = {"name": "SenseLink", "slug": "senselink", "ingress": True,
                "ingress_port": self.supervisor.ingress_port, "host_network": True}
        return json.dumps({"result": "ok", "data": data}).encode()


class FakeSupervisor:
    """C{home} is the L{FakeHomeAssistant} behind C{/core/api/websocket}; C{url} is what the
    app's C{SUPERVISOR_API} would be."""

    def __init__(self, testcase, token, ingress_port):
        self.token = token
        self.ingress_port = ingress_port
        self.info_requests = []        # the Authorization header of each info request
        self.home = FakeHomeAssistant(token)
        root = Resource()
        addons = Resource()
        own = Resource()
        own.putChild(b"info", AppInfo(self))
        addons.putChild(b"self", own)
        root.putChild(b"addons", addons)
        core, api = Resource(), Resource()
        core.putChild(b"websocket", WebSocketResource(self.home.factory))
        api.putChild(b"websocket", WebSocketResource(self.home.factory))
        core.putChild(b"api", api)
        root.putChild(b"core", core)
        self.site = TrackingSite(root)
        self.listening = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        testcase.addCleanup(self.stop)
        self.port = self.listening.getHost().port
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        """Stop listening and end every connection (websockets took theirs from the site)."""
        self.home.drop_connections()
        for protocol in self.site.protocols:
            transport = getattr(protocol, "transport", None)
            if transport is not None and transport.connected:
                transport.abortConnection()
        return self.listening.stopListening()
