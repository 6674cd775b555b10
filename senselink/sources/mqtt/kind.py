"""The C{mqtt} kind: its settings classes and its checks across keys (L{MqttKind})."""

from senselink.config import SourceKind, check_power_paths
from senselink.config.schema import PlugSettings
from senselink.config.settings import field_table
from senselink.mqtt.topics import filter_problem
from senselink.power import PowerModel
from senselink.sources.mqtt.service import MqttService
from senselink.sources.mqtt.settings import MqttPlugSettings, MqttSourceSettings


class MqttKind(SourceKind):
    name = "mqtt"
    doc = "Plugs that follow MQTT topics"
    source_settings = MqttSourceSettings
    plug_settings = MqttPlugSettings
    source_fields = field_table(MqttSourceSettings)
    plug_fields = field_table(MqttPlugSettings, besides=PlugSettings)

    def check(self, source, where):
        if source.settings.password is not None and source.settings.username is None:
            where.child("password").error("a password needs a username (MQTT sends none without)")
        for plug in source.plugs:
            here = plug.where or where
            settings = plug.settings
            topics = [role for role, topic, _ in settings.routes if topic is not None]
            if not topics:
                here.error("an mqtt plug needs power_topic, state_topic or attribute_topic")
            if "power" in topics and "attribute" in topics:
                here.error("power_topic and attribute_topic cannot be used together: "
                           "the power is either measured or derived from the attribute")
            for role, topic, keypath in settings.routes:
                if topic is not None:
                    problem = filter_problem(topic)
                    if problem:
                        here.child(f"{role}_topic").error(f"{problem}, got {topic!r}")
                elif keypath is not None:
                    here.child(f"{role}_topic_keypath").error(
                        f"{role}_topic_keypath needs {role}_topic")
            for key in check_power_paths(settings, here, single="power_topic_keypath"):
                if "power" not in topics and key != "power_topic_keypath":
                    here.child(key).error(f"{key} needs power_topic")
            if settings.state_power is not None and "state" not in topics:
                here.child("state_power").error("state_power needs state_topic")
            if ("attribute" in topics and settings.power_curve is None
                    and settings.attribute_max is None):
                here.child("attribute_topic").error(
                    "attribute_topic needs attribute_max (or a power_curve) to scale "
                    "the attribute to watts")

    def initial(self, plug):
        return PowerModel.from_settings(plug.settings, plug.max_plug_watts).off_usage, None

    def make_service(self, source, plugs, clock):
        return MqttService(source, plugs, clock)
