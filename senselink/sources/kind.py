"""What a source kind is: L{ISourceKind}, and L{SourceKind}, the base class of the kinds.

A kind is what a key under C{sources:} names (C{static}, C{hass}, ...): the
config keys its sources and plugs accept, the checks across those keys, each
plug's value before the source reports, and the service that feeds the plugs.
The config loader and the daemon use a kind through this interface only.
"""

from types import MappingProxyType

from zope.interface import Attribute, Interface, implementer


class ISourceKind(Interface):
    name = Attribute("The config name: the key under sources: (e.g. 'hass')")
    doc = Attribute("One line saying where the plugs' watts come from")
    source_fields = Attribute("Mapping of the source's own keys to their Field")
    plug_fields = Attribute("Mapping of plug keys (besides the ones every plug has) to their Field")

    def check(source, where):
        """Cross-key checks of one validated source and its plugs.

        @param source: the L{senselink.config.SourceConfig}; each of its plugs
            has C{where}, the context of that plug's settings.
        @param where: the context of the source's settings: report problems
            with C{where.error(message)}, or C{where.at(options, key).error(...)}.
        """

    def initial(plug_config):
        """C{(watts, on)} of a plug before its source reports anything.

        C{on} is True, False or None (not known).
        """

    def make_service(source, plugs, clock):
        """An C{IService} feeding C{plugs} (a PlugSet) from C{source}, or None.

        None when nothing needs to run (the plugs' values never change, or
        change only through the daemon's API).
        """


@implementer(ISourceKind)
class SourceKind:
    """The base of the kinds: no keys of its own, no checks, nothing to run.

    Subclasses (one per module under L{senselink.sources}) set C{name},
    C{doc}, C{source_fields} and C{plug_fields}, may extend L{check} and
    L{initial}, and implement L{make_service} when their plugs follow
    something outside.
    """

    name = ""
    doc = ""
    source_fields = MappingProxyType({})
    plug_fields = MappingProxyType({})

    def check(self, source, where):
        """Cross-key checks of one source and its plugs; report with C{where.error}."""

    def initial(self, plug_config):
        """0 W and unknown on/off, until the source reports."""
        return 0.0, None

    def make_service(self, source, plugs, clock):
        """An IService feeding C{plugs} (a PlugSet), or None when nothing needs to run."""
        return None
