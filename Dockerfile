# SenseLink on Twisted: virtual TP-Link Kasa HS110 plugs for the Sense Home Energy Monitor.
#
#   docker build -t senselink .
#   docker run -d --name senselink --network host \
#     -v "$PWD/config.yml:/etc/senselink/config.yml:ro" -v senselink-state:/var/lib/senselink senselink
#
# Environment (as the original SenseLink image):
#   CONFIG_LOCATION  config file (default /etc/senselink/config.yml)
#   LOGLEVEL         DEBUG, INFO (default), WARNING or ERROR
#   SENSE_RESPONSE   false: receive and log Sense requests but never answer
#
# The Home Assistant app (senselink_app/Dockerfile) is built the same way.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Install the package with every optional feature (TLS, http sources) from the
# build context, then build Twisted's plugin cache as root: the daemon's user
# cannot write to site-packages.
COPY . /src
ARG SENSELINK_SOURCE="/src[all]"
RUN pip install --no-cache-dir "${SENSELINK_SOURCE}" \
    && rm -rf /src \
    && python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"

# A non-root user; its home is the state directory, where the energy state
# file lives (SENSELINK_STATE_DIR), kept in a volume across containers.
RUN useradd --system --home-dir /var/lib/senselink --create-home --shell /usr/sbin/nologin senselink \
    && mkdir -p /etc/senselink
ENV SENSELINK_STATE_DIR=/var/lib/senselink
VOLUME /var/lib/senselink
WORKDIR /var/lib/senselink
USER senselink

EXPOSE 9999/udp 9999/tcp

# The probe plays the Sense monitor against the daemon itself.
HEALTHCHECK --interval=60s --timeout=15s --start-period=20s --retries=3 \
    CMD ["python", "-m", "senselink", "probe", "--target", "127.0.0.1", "--count", "1", "--timeout", "5"]

# No -c here, so that CONFIG_LOCATION chooses the config as in the original;
# without it the config is /etc/senselink/config.yml. --pidfile= writes no pid file.
CMD ["twistd", "--nodaemon", "--pidfile=", "senselink"]
