"""The web interface: a JSON API for the plugs, Prometheus metrics and a live status page.

Off unless the config has a top-level C{web} section::

    web:
      listen: tcp:8080:interface=127.0.0.1   # a Twisted server endpoint string
      token: ${SENSELINK_TOKEN}              # needed by requests that change state

Routes: C{GET /api/plugs}, C{GET /api/plugs/<id>}, C{GET /api/plugs/<id>/history},
C{PUT /api/plugs/<id>} (mutable plugs; C{Authorization: Bearer <token>}),
C{GET /api/status}, C{GET /api/events} (Server-Sent Events), C{GET /metrics}
(Prometheus text format), C{GET /} (the status page) and its files under
C{/static/}.

One module per concern:

  - L{documents}: the JSON documents (plugs, sources, status, history, snapshot)
  - L{api}: the JSON API resources, JSON errors and 405s, request body limits
  - L{events}: the event stream, bounded per client
  - L{metrics}: the Prometheus collector and C{/metrics}
  - L{page}: the HTML status page and its static files (C{static/})
  - L{interface}: C{WebInterface}, the resource tree over the running daemon,
    and the site
  - L{connections}: the site's connections, bounded: caps per listener and per
    peer (descriptors kept in reserve), header and body deadlines, the 413
    answered from a request's head
  - L{listener}: the listening services, C{make_service} (the C{web} section)
    and C{make_listener} (one more, e.g. for Home Assistant's ingress);
    C{warn_if_short}, the warning about a short token

The daemon imports this package only when C{web} is configured: it loads
C{twisted.web} and C{prometheus_client}. The daemon is duck-typed here (its
C{plugs}, C{sources}, C{counters}, C{meter}, C{history}, C{polling},
C{quiet}, C{target}, C{config}, C{reactor}, C{set_power} and C{switch});
nothing in this package imports the daemon or the service tree.
"""

from senselink.web.listener import make_listener, make_service, warn_if_short

__all__ = ("make_listener", "make_service", "warn_if_short")
