"""The web interface: a JSON API for the plugs, Prometheus metrics and a status page.

Off unless the config has a top-level C{web} section::

    web:
      listen: tcp:8080:interface=127.0.0.1   # a Twisted server endpoint string
      token: ${SENSELINK_TOKEN}              # needed by requests that change state

Routes: C{GET /api/plugs}, C{GET /api/plugs/<id>}, C{PUT /api/plugs/<id>}
(mutable plugs; C{Authorization: Bearer <token>}), C{GET /metrics}
(Prometheus text format), C{GET /} (a status page that refreshes itself).

One module per concern:

  - L{api}: the JSON API (plug resources, JSON answers, request body limits)
  - L{metrics}: the Prometheus collector and C{/metrics}
  - L{page}: the HTML status page
  - L{interface}: C{WebInterface}, the resource tree over the running daemon,
    and the site
  - L{listener}: the listening services, C{make_service} (the C{web} section)
    and C{make_listener} (one more, e.g. for Home Assistant's ingress)

The daemon imports this package only when C{web} is configured: it loads
C{twisted.web} and C{prometheus_client}. The daemon is duck-typed here (its
C{plugs}, C{sources}, C{counters}, C{config}, C{reactor}, C{set_power} and
C{switch}); nothing in this package imports the daemon or the service tree.
"""

from senselink.web.listener import make_listener, make_service

__all__ = ("make_listener", "make_service")
