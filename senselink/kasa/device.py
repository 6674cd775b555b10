"""The daemon as one Kasa device: an HS300-style power strip whose children are plugs.

Kasa clients (python-kasa, Home Assistant, Node-RED, the Kasa app) keep one
device per IP address, so every virtual plug behind one address is shown to
them as a child socket of one strip, as a real HS300 shows its six outlets.

L{HS300Strip.handle} answers one decoded request (a dict of modules, each a
dict of methods, and an optional C{"context":{"child_ids":[...]}}) with the
reply dict a real strip would send. Nothing here does I/O; the plug values
come from a L{StripChildren} handed in by the daemon.

Replies follow real devices (see the HS300 fixtures): every method answer
carries C{"err_code":0}; an unknown module gets C{module not support}, an
unknown method of a known module C{member not support}. The virtual plugs are
read-only: requests that would change something (C{set_relay_state},
C{set_dev_alias}, C{reboot}, C{erase_emeter_stat}, ...) get an error reply and
change nothing.
"""

from types import MappingProxyType
from datetime import datetime, timezone

from senselink.kasa import messages

HS300_MODEL = "HS300(US)"
HS300_SW_VER = "1.0.21 Build 210524 Rel.161309"
HS300_HW_VER = "1.0"

MODULE_NOT_SUPPORTED = MappingProxyType({"err_code": -1, "err_msg": "module not support"})
MEMBER_NOT_SUPPORTED = MappingProxyType({"err_code": -2, "err_msg": "member not support"})
INVALID_ARGUMENT = -3
READ_ONLY_MESSAGE = "not allowed: SenseLink plugs are read-only"

# The time zone index a Kasa device reports in time.get_timezone, for the host's
# current UTC offset (minutes). Zones without daylight saving time where the
# firmware's list has one, so the index and the reported local time agree.
_TZ_INDEX = MappingProxyType({
    -720: 0, -660: 1, -600: 2, -540: 3, -480: 5, -420: 7, -360: 12, -300: 17,
    -270: 20, -240: 22, -210: 27, -180: 30, -120: 34, -60: 36, 0: 38, 60: 45,
    120: 53, 180: 60, 210: 64, 240: 65, 270: 71, 300: 72, 330: 75, 345: 77,
    360: 79, 390: 81, 420: 82, 480: 86, 540: 90, 570: 94, 600: 95, 660: 102,
    720: 105, 780: 107, 840: 109,
})
UTC_INDEX = 38


def child_id(device_id: str, index: int) -> str:
    """A child socket's id as real strips form it: the device id and two digits."""
    return f"{device_id}{index:02d}"


def _ok(result: dict) -> dict:
    result["err_code"] = 0
    return result


def _error(code: int, message: str) -> dict:
    return {"err_code": code, "err_msg": message}


def refused() -> dict:
    """The answer to a request that would change the device."""
    return _error(INVALID_ARGUMENT, READ_ONLY_MESSAGE)


def time_fields(now: datetime):
    """C{(get_time result, get_timezone result)} for an aware local datetime.

    When the UTC offset has no index in the firmware's list, the time is
    reported in UTC with the UTC index, so the two always agree.
    """
    offset = now.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    index = _TZ_INDEX.get(minutes)
    if index is None or offset is None:
        now = now.astimezone(timezone.utc)
        index = UTC_INDEX
    get_time = {"year": now.year, "month": now.month, "mday": now.day,
                "hour": now.hour, "min": now.minute, "sec": now.second}
    return get_time, {"index": index}


class ChildState:
    """One child socket's values at the moment of a request."""

    __slots__ = ("alias", "on", "watts", "voltage", "on_time", "total_kwh")

    def __init__(self, alias, on, watts, voltage, on_time=0, total_kwh=0.0):
        self.alias = alias
        self.on = on
        self.watts = watts
        self.voltage = voltage
        self.on_time = on_time
        self.total_kwh = total_kwh


class StripChildren:
    """What the strip reads; the daemon implements it over its plugs.

    Indexes are child slots, 0-based, in a fixed order.
    """

    def children(self):
        """A list of L{ChildState}, one per child socket."""
        raise NotImplementedError

    def day_energy(self, index, year, month):
        """C{[(day, kWh), ...]} of child C{index} in that month, in day order."""
        raise NotImplementedError

    def month_energy(self, index, year):
        """C{[(month, kWh), ...]} of child C{index} in that year, in month order."""
        raise NotImplementedError

    def now(self) -> datetime:
        """The host's clock as an aware local datetime."""
        raise NotImplementedError


def _year_month(args, need_month):
    """Validated C{(year, month)} from get_daystat/get_monthstat arguments, or None."""
    if not isinstance(args, dict):
        return None
    year = args.get("year")
    month = args.get("month") if need_month else 1
    for value in (year, month):
        if isinstance(value, bool) or not isinstance(value, int):
            return None
    if not 1 <= month <= 12 or not 1970 <= year <= 9999:
        return None
    return year, month


class HS300Strip:
    """An HS300-style strip answering generic Kasa requests for its children."""

    def __init__(self, source: StripChildren, *, alias: str, mac: str, device_id: str):
        self.source = source
        self.alias = alias
        self.mac = mac.upper()
        self.device_id = device_id.upper()
        self._modules = {
            "system": self._system,
            "emeter": self._emeter,
            "time": self._time,
            "schedule": self._schedule,
            "anti_theft": self._anti_theft,
            "count_down": self._count_down,
            "cnCloud": self._cloud,
        }

    # -- identity --

    def child_ids(self, count):
        return [child_id(self.device_id, i) for i in range(count)]

    def child_index(self, wanted, count):
        """The slot of a child id (the full id, or just its two digits), or None."""
        if not isinstance(wanted, str):
            return None
        wanted = wanted.upper()
        if len(wanted) == 2 and wanted.isdigit():
            index = int(wanted)
        elif len(wanted) == len(self.device_id) + 2 and wanted.startswith(self.device_id) \
                and wanted[-2:].isdigit():
            index = int(wanted[-2:])
        else:
            return None
        return index if index < count else None

    def sysinfo(self, children=None) -> dict:
        if children is None:
            children = self.source.children()
        ids = self.child_ids(len(children))
        return {
            "sw_ver": HS300_SW_VER,
            "hw_ver": HS300_HW_VER,
            "model": HS300_MODEL,
            "deviceId": self.device_id,
            "oemId": self.device_id[-32:].rjust(32, "0"),
            "hwId": self.device_id[:32].ljust(32, "0"),
            "rssi": -52,
            "latitude_i": 0,
            "longitude_i": 0,
            "alias": self.alias,
            "status": "new",
            "mic_type": messages.DEVICE_TYPE,
            "feature": "TIM:ENE",
            "mac": self.mac,
            "updating": 0,
            "led_off": 0,
            "children": [
                {"id": cid, "state": 1 if child.on else 0, "alias": child.alias,
                 "on_time": int(messages.reading(child.on_time)) if child.on else 0,
                 "next_action": {"type": -1}}
                for cid, child in zip(ids, children)
            ],
            "child_num": len(children),
            "err_code": 0,
        }

    # -- requests --

    def handle(self, request: dict) -> dict:
        """The reply to one decoded request (never raises for odd input)."""
        children = self.source.children()
        targets = None          # None: the whole strip; else a list of slots or None entries
        context = request.get("context")
        if isinstance(context, dict) and "child_ids" in context:
            ids = context["child_ids"]
            if not isinstance(ids, list):
                ids = [ids]
            targets = [self.child_index(cid, len(children)) for cid in ids]
        reply = {}
        for module, methods in request.items():
            if module == "context":
                continue
            answer = self._modules.get(module)
            if answer is None:
                reply[module] = dict(MODULE_NOT_SUPPORTED)
                continue
            if not isinstance(methods, dict):
                reply[module] = _error(INVALID_ARGUMENT, "invalid argument")
                continue
            out = {}
            for method, args in methods.items():
                out[method] = answer(method, args, children, targets)
            reply[module] = out
        return reply

    @staticmethod
    def refused_in(reply: dict):
        """C{module.method} names a reply refused as state-changing (for logs)."""
        out = []
        for module, methods in reply.items():
            if isinstance(methods, dict):
                for method, result in methods.items():
                    if isinstance(result, dict) and result.get("err_msg") == READ_ONLY_MESSAGE:
                        out.append(f"{module}.{method}")
        return out

    # -- modules: each returns the result of one method --

    @staticmethod
    def _other(method):
        """Unknown or state-changing method of a module we have."""
        if method.startswith("get_"):
            return dict(MEMBER_NOT_SUPPORTED)
        return refused()

    def _system(self, method, args, children, targets):
        if method == "get_sysinfo":
            return self.sysinfo(children)
        return self._other(method)

    def _emeter(self, method, args, children, targets):
        if method not in ("get_realtime", "get_daystat", "get_monthstat"):
            return self._other(method)
        if targets is None:
            slots = range(len(children))
        else:
            if not targets or any(slot is None for slot in targets):
                return _error(INVALID_ARGUMENT, "invalid argument: unknown child id")
            slots = targets[:1]   # a strip's meter answers for one socket
        if method == "get_realtime":
            return self._realtime([children[i] for i in slots])
        if method == "get_daystat":
            when = _year_month(args, True)
            if when is None:
                return _error(INVALID_ARGUMENT, "invalid argument: year and month expected")
            year, month = when
            days = _sum_lists(self.source.day_energy(i, year, month) for i in slots)
            return _ok({"day_list": [{"year": year, "month": month, "day": day,
                                      "energy_wh": int(round(messages.reading(kwh) * 1000))}
                                     for day, kwh in days]})
        when = _year_month(args, False)
        if when is None:
            return _error(INVALID_ARGUMENT, "invalid argument: year expected")
        year = when[0]
        months = _sum_lists(self.source.month_energy(i, year) for i in slots)
        return _ok({"month_list": [{"year": year, "month": month,
                                    "energy_wh": int(round(messages.reading(kwh) * 1000))}
                                   for month, kwh in months]})

    @staticmethod
    def _realtime(children):
        """A real HS300's realtime reading: integer mW, mV, mA and Wh.

        Without a child id it is the whole strip: power, current and energy
        summed, voltage averaged.
        """
        power = messages.reading(sum(messages.reading(c.watts) for c in children))
        current = messages.reading(sum(messages.reading(c.watts) / c.voltage
                                       for c in children if messages.reading(c.voltage)))
        voltage = (messages.reading(sum(messages.reading(c.voltage) for c in children)
                                    / len(children))) if children else 120.0
        total = messages.reading(sum(messages.reading(c.total_kwh) for c in children))
        return {
            "voltage_mv": int(round(voltage * 1000)),
            "current_ma": int(round(current * 1000)),
            "power_mw": int(round(power * 1000)),
            "total_wh": int(round(total * 1000)),
            "err_code": 0,
        }

    def _time(self, method, args, children, targets):
        if method in ("get_time", "get_timezone"):
            get_time, get_timezone = time_fields(self.source.now())
            return _ok(get_time if method == "get_time" else get_timezone)
        return self._other(method)

    def _schedule(self, method, args, children, targets):
        if method == "get_rules":
            return _ok({"rule_list": [], "version": 2, "enable": 1})
        if method == "get_next_action":
            return _ok({"type": -1})
        if method == "get_daystat":
            return _ok({"day_list": []})
        if method == "get_monthstat":
            return _ok({"month_list": []})
        return self._other(method)

    def _anti_theft(self, method, args, children, targets):
        if method == "get_rules":
            return _ok({"rule_list": [], "version": 2, "enable": 0})
        if method == "get_next_action":
            return _ok({"type": -1})
        return self._other(method)

    def _count_down(self, method, args, children, targets):
        if method == "get_rules":
            return _ok({"rule_list": []})
        return self._other(method)

    def _cloud(self, method, args, children, targets):
        if method == "get_info":
            return _ok({"username": "", "server": "n-devs.tplinkcloud.com", "binded": 0,
                        "cld_connection": 0, "illegalType": 0, "stopConnect": 0,
                        "tcspStatus": 0, "fwDlPage": "", "tcspInfo": "", "fwNotifyType": -1})
        return self._other(method)


def _sum_lists(lists):
    """Merge C{[(key, kWh), ...]} lists, summing equal keys, in key order."""
    total = {}
    for entries in lists:
        for key, kwh in entries:
            total[key] = total.get(key, 0.0) + kwh
    return sorted(total.items())


def local_now(seconds: float, tz=None) -> datetime:
    """An aware datetime for epoch C{seconds}: in C{tz}, else in the host's local zone."""
    if tz is not None:
        return datetime.fromtimestamp(seconds, tz)
    return datetime.fromtimestamp(seconds).astimezone()
