"""Kasa requests and replies as plain data: classification and reply building.

Nothing here does I/O; the responder hands in bytes and sends out bytes.
"""

import json
from types import MappingProxyType

from senselink.kasa.cipher import decrypt, encrypt, rekey

# The exact request a Sense monitor broadcasts, in the compact form it sends.
SENSE_REQUEST = b'{"emeter":{"get_realtime":{}},"system":{"get_sysinfo":{}}}'
SENSE_REQUEST_ENCRYPTED = encrypt(SENSE_REQUEST)

# Field values that made Sense accept plugs in practice (see the HS110 fixtures).
HS110_MODEL = "HS110(US)"
HS110_SW_VER = "1.2.5 Build 171206 Rel.085954"
HS110_HW_VER = "1.0"
DEVICE_TYPE = "IOT.SMARTPLUGSWITCH"
HS110_DEV_NAME = "Wi-Fi Smart Plug With Energy Monitoring"

SENSE = "sense"
ECHO = "echo"
OTHER = "other"

_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class MalformedRequest(ValueError):
    """The bytes are not a Kasa request: not decryptable to a JSON object."""


def decode(ciphertext: bytes) -> dict:
    """Decrypt and parse one request; raise L{MalformedRequest} unless it is a JSON object."""
    try:
        request = json.loads(decrypt(ciphertext))
    except (ValueError, RecursionError) as e:
        raise MalformedRequest(f"not JSON after decryption ({e.__class__.__name__})") from None
    if not isinstance(request, dict):
        raise MalformedRequest(f"JSON {type(request).__name__}, not an object")
    return request


def check_modules(request: dict):
    """Raise L{MalformedRequest} unless every member of C{request} is a JSON object.

    Kasa requests map module names (and C{context}) to objects; anything else
    is not a request a device answers.
    """
    for name, value in request.items():
        if not isinstance(value, dict):
            raise MalformedRequest(f"member {name!r} is not an object")


def is_reply(request: dict) -> bool:
    """Whether a generic request is really a device reply (echoed back, or another device's).

    Replies carry C{err_code} in each module or method object; requests never
    do. Answering replies could make two responders answer each other forever.
    """
    for module, methods in request.items():
        if isinstance(methods, dict):
            if "err_code" in methods:
                return True
            for result in methods.values():
                if isinstance(result, dict) and "err_code" in result:
                    return True
    return False


def describe(request) -> str:
    """The modules and methods of a request, for logs: never the arguments (they may hold
    credentials, e.g. C{cnCloud.bind})."""
    if not isinstance(request, dict):
        return type(request).__name__
    names = []
    for module, methods in request.items():
        if module == "context":
            continue
        if isinstance(methods, dict) and methods:
            names.extend(f"{module}.{method}" for method in methods)
        else:
            names.append(str(module))
    return ", ".join(names) or "(empty)"


def classify(request: dict) -> str:
    """Tell a Sense poll, an echoed reply and any other request apart.

    A request holding both C{emeter.get_realtime} and C{system.get_sysinfo}
    is a reply echoed back to us when C{get_realtime} is not empty (ignore
    it, or replies storm), and a Sense poll when it is empty and the request
    has no other module. Kasa clients that add modules (Node-RED's discovery
    asks for more) are answered as clients, by the strip device.
    """
    emeter = request.get("emeter")
    system = request.get("system")
    if isinstance(emeter, dict) and isinstance(system, dict):
        realtime = emeter.get("get_realtime")
        if isinstance(realtime, dict) and isinstance(system.get("get_sysinfo"), dict):
            if realtime:
                return ECHO
            if len(request) == 2:
                return SENSE
    return OTHER


def classify_datagram(ciphertext: bytes):
    """Classify raw encrypted bytes; returns C{(request type, request or None)}.

    The Sense poll is recognised by comparing bytes, without parsing JSON.
    Raises L{MalformedRequest}.
    """
    if ciphertext == SENSE_REQUEST_ENCRYPTED:
        return SENSE, None
    request = decode(ciphertext)
    return classify(request), request


def encode(reply: dict) -> bytes:
    """Serialise and encrypt a reply (UDP form, no length prefix)."""
    return encrypt(_json_dumps(reply).encode("utf-8"))


# Readings in replies are kept in range whatever the input: a non-finite or
# negative number is 0, a larger one is MAX_READING (a W, V, A or kWh value no
# real plug reports). The daemon bounds watts well below (max_plug_watts).
MAX_READING = 1e9


def reading(value) -> float:
    """C{value} as a finite float in 0..L{MAX_READING}."""
    value = float(value)
    if not value > 0.0:            # also NaN
        return 0.0
    return value if value < MAX_READING else MAX_READING


def realtime(power: float, voltage: float, total_kwh: float = 0.0) -> dict:
    """The C{emeter.get_realtime} result of an HS110 (W, V, A, kWh)."""
    power, voltage, total_kwh = reading(power), reading(voltage), reading(total_kwh)
    return {
        "current": round(power / voltage, 6) if voltage else 0.0,
        "voltage": voltage,
        "power": round(power, 3),
        "total": round(total_kwh, 6),
        "err_code": 0,
    }


def hs110_sysinfo(*, alias: str, mac: str, device_id: str, relay_state: int, on_time: int = 0) -> dict:
    """A realistic HS110(US) C{system.get_sysinfo} result."""
    return {
        "err_code": 0,
        "sw_ver": HS110_SW_VER,
        "hw_ver": HS110_HW_VER,
        "type": DEVICE_TYPE,
        "model": HS110_MODEL,
        "mac": mac.upper(),
        "dev_name": HS110_DEV_NAME,
        "alias": alias,
        "relay_state": relay_state,
        "on_time": on_time,
        "active_mode": "none",
        "feature": "TIM:ENE",
        "updating": 0,
        "icon_hash": "",
        "rssi": -52,
        "led_off": 0,
        "longitude_i": 0,
        "latitude_i": 0,
        "hwId": device_id[:32].upper().ljust(32, "0"),
        "fwId": "00000000000000000000000000000000",
        "deviceId": device_id.upper(),
        "oemId": device_id[-32:].upper().rjust(32, "0"),
    }


def sense_reply(*, alias, mac, device_id, power, voltage, on, total_kwh=0.0) -> dict:
    """The reply an HS110 sends to the Sense poll: realtime emeter and sysinfo."""
    return {
        "emeter": {"get_realtime": realtime(power, voltage, total_kwh)},
        "system": {
            "get_sysinfo": hs110_sysinfo(
                alias=alias, mac=mac, device_id=device_id, relay_state=1 if on else 0
            )
        },
    }


class SenseReplyEncoder:
    """The encrypted L{sense_reply} of one plug, rebuilt in a few microseconds.

    The reply's JSON text is constant but for four values: C{current},
    C{power} and C{total} near its start, and C{relay_state} in the middle
    of the sysinfo. The text before the first number is encrypted once; the
    short run of numbers is formatted and encrypted on each change; the rest
    (a few hundred bytes, one version per relay state) is chained once from
    key 0 and continued from the numbers' last ciphertext byte with
    L{cipher.rekey}. The bytes are exactly C{encode(sense_reply(...))}
    (tests compare them), about ten times faster than building the
    dictionary and serialising and encrypting it whole.
    """

    __slots__ = ("identity", "_head", "_key", "_voltage", "_voltage_text", "_tails")

    def __init__(self, *, alias, mac, device_id, voltage):
        self.identity = (alias, mac, device_id, voltage)   # what the reply was made for
        voltage = reading(voltage)
        self._voltage = voltage
        self._voltage_text = _number(voltage)
        marker = '"relay_state":0,'
        sysinfo = _json_dumps(hs110_sysinfo(alias=alias, mac=mac, device_id=device_id,
                                            relay_state=0))
        # A quote inside a JSON string is escaped, so the marker can only be the key.
        at = sysinfo.index(marker) + len(marker) - 2
        self._tails = [
            chain(f',"err_code":0}}}},"system":{{"get_sysinfo":{sysinfo[:at]}{relay_state}'
                  f'{sysinfo[at + 1:]}}}}}'.encode("utf-8"))
            for relay_state in (0, 1)]
        self._head = encrypt(b'{"emeter":{"get_realtime":{"current":')
        self._key = self._head[-1]

    def encode(self, power, on, total_kwh=0.0) -> bytes:
        power, total_kwh = reading(power), reading(total_kwh)
        voltage = self._voltage
        current = _rounded(power / voltage, 6) if voltage else "0.0"
        numbers = (f'{current},"voltage":{self._voltage_text},"power":{_rounded(power, 3)},'
                   f'"total":{_rounded(total_kwh, 6)}').encode("ascii")
        middle = encrypt(numbers, self._key)
        return b"".join((self._head, middle, rekey(self._tails[1 if on else 0], middle[-1])))


_FIXED = MappingProxyType({3: ("%.3f", 1e12), 6: ("%.6f", 1e9)})


def _rounded(value, digits) -> str:
    """C{json.dumps(round(value, digits))}, without C{round} and C{repr} where possible.

    C{"%.Nf"} rounds exactly like C{round(value, N)}; with the trailing zeros
    stripped it is the C{repr} of the rounded float as long as that repr
    needs no exponent (C{1e-4 <= x}) and the float can tell every N-digit
    decimal apart (below 1e12 for 3 digits, 1e9 for 6). Other values take
    the slow, obviously right way.
    """
    if value.__class__ is float:
        form, limit = _FIXED[digits]
        if 1e-4 <= value < limit:
            text = (form % value).rstrip("0")
            return text + "0" if text[-1] == "." else text
        if value == 0.0:
            return "-0.0" if str(value)[0] == "-" else "0.0"
    return _number(round(value, digits))


def _number(value) -> str:
    """A number as C{json.dumps} writes it (floats by C{repr})."""
    if value.__class__ is float and value - value == 0.0:
        return float.__repr__(value)
    return _json_dumps(value)


def chain(text: bytes) -> bytes:
    """C{encrypt(text, 0)}: a constant part of a message, to be continued with L{rekey}."""
    return encrypt(text, 0)


def module_error(module: str) -> dict:
    """A real device's reply to a module it does not have."""
    return {module: {"err_code": -1, "err_msg": "module not support"}}


def method_error(module: str, method: str) -> dict:
    """A real device's reply to an unknown method of a module it has."""
    return {module: {method: {"err_code": -2, "err_msg": "member not support"}}}
