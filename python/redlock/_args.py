"""Argument checks and conversions: clear TypeError/ValueError messages
before anything reaches the engine."""

from __future__ import annotations

import datetime
import math
import os
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

# The engine refuses longer resource names.
MAX_NAME_BYTES = 1024
# No duration beyond this is meaningful to the engine (its own limits are far
# lower); it also keeps every conversion to milliseconds exact.
MAX_SECONDS = 1e9

Seconds = Union[int, float, datetime.timedelta]


def _describe(value: Any) -> str:
    return type(value).__name__


def seconds(name: str, value: Any, *, allow_zero: bool = True) -> float:
    """A duration in seconds, as redis-py takes them: an int or a float
    (a datetime.timedelta also works). Refuses bool, NaN, infinities,
    negative and huge values."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds (int or float), not {_describe(value)}")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{name} must be a number of seconds, not NaN")
    if value < 0:
        raise ValueError(f"{name} must not be negative (got {value!r})")
    if value == 0 and not allow_zero:
        raise ValueError(f"{name} must be positive (got {value!r})")
    if value > MAX_SECONDS:
        raise ValueError(f"{name}={value!r} s is too large (at most {MAX_SECONDS:g} s)")
    return float(value)


def ms(name: str, value: Any, *, allow_zero: bool = True) -> int:
    """seconds() in whole milliseconds, the engine's resolution: rounded to
    the nearest, and a positive value below 1 ms counts as 1 ms."""
    s = seconds(name, value, allow_zero=allow_zero)
    out = int(round(s * 1000))
    return 1 if out == 0 and s > 0 else out


def us(name: str, value: Any) -> int:
    s = seconds(name, value)
    out = int(round(s * 1_000_000))
    return 1 if out == 0 and s > 0 else out


def optional_ms(name: str, value: Any, *, allow_zero: bool = True) -> Optional[int]:
    return None if value is None else ms(name, value, allow_zero=allow_zero)


def wait_ms(name: str, value: Any) -> int:
    """A wait bound: None or math.inf waits for ever (-1 to the engine)."""
    if value is None:
        return -1
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return -1
    return ms(name, value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {_describe(value)}")
    return value


def number(name: str, value: Any, low: float, high: float, *, high_open: bool = True,
           low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name}={value!r} is out of range {left}{low:g}, {high:g}{right}")
    return float(value)


def count(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {_describe(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name}={value!r} is out of range [{low}, {high}]")
    return value


def choice(name: str, value: Any, choices: Tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                        f"not {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {_describe(value)}")
    return value


def name_bytes(value: Any) -> bytes:
    """A lock name: str (encoded UTF-8) or bytes-like, 1 to 1024 bytes."""
    if isinstance(value, str):
        try:
            out = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"lock name {value!r} cannot be encoded as UTF-8: {e.reason}") from None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out = bytes(value)
    else:
        raise TypeError(f"lock name must be str or bytes, not {_describe(value)}")
    if not out:
        raise ValueError("lock name is empty")
    if len(out) > MAX_NAME_BYTES:
        raise ValueError(f"lock name is {len(out)} bytes long; at most {MAX_NAME_BYTES} are allowed")
    return out


def node_list(value: Any) -> List[str]:
    if isinstance(value, (str, bytes)):
        raise TypeError(
            "nodes must be a list of addresses such as ['127.0.0.1:7001', '127.0.0.1:7002'], "
            f"not a single {_describe(value)}")
    try:
        items: Iterable[Any] = iter(value)
    except TypeError:
        raise TypeError(f"nodes must be a list of addresses, not {_describe(value)}") from None
    out = []
    for i, node in enumerate(items):
        if not isinstance(node, str):
            raise TypeError(f"nodes[{i}] must be a str such as '127.0.0.1:7001', not {_describe(node)}")
        out.append(node)
    if not out:
        raise ValueError("nodes is empty: a lock needs at least one Redis node")
    return out


TLS_KEYS = ("ca_file", "ca_dir", "cert_file", "key_file", "server_name", "verify")


def tls(value: Any) -> dict:
    """The tls option: None, or a mapping with some of TLS_KEYS (paths as
    str or os.PathLike, verify a bool). Returns every key, with defaults."""
    out: dict = {k: "" for k in TLS_KEYS}
    out["verify"] = True
    if value is None:
        return out
    if not isinstance(value, Mapping):
        raise TypeError(f"tls must be a dict such as dict(ca_file='ca.crt'), not {_describe(value)}")
    for key, item in value.items():
        if key not in TLS_KEYS:
            raise TypeError(f"tls has no option {key!r} (it takes {', '.join(TLS_KEYS)})")
        if key == "verify":
            out[key] = flag("tls['verify']", item)
        elif key == "server_name":
            out[key] = text("tls['server_name']", item)
        elif item is not None:
            if not isinstance(item, (str, os.PathLike)):
                raise TypeError(f"tls[{key!r}] must be a path (str or os.PathLike), "
                                f"not {_describe(item)}")
            out[key] = os.fspath(item)
    return out
