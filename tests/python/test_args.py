"""Bad arguments raise TypeError or ValueError with a message that names
the argument; nothing crashes, nothing reaches the nodes."""

from __future__ import annotations

import datetime
import math

import pytest

import redlock

NAN = float("nan")
INF = float("inf")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(nodes=[]), ValueError, "nodes is empty"),
        (dict(nodes="127.0.0.1:7001"), TypeError, "list of addresses"),
        (dict(nodes=None), TypeError, "nodes must be a list"),
        (dict(nodes=[7001]), TypeError, r"nodes\[0\] must be a str"),
        (dict(nodes=["127.0.0.1"]), ValueError, "missing port"),
        (dict(nodes=["127.0.0.1:99999"]), ValueError, "port must be a number"),
        (dict(nodes=["127.0.0.1:7001", "127.0.0.1:7001"]), ValueError, "listed twice"),
        (dict(drift_factor=NAN), ValueError, "drift_factor"),
        (dict(drift_factor=0.7), ValueError, "drift_factor"),
        (dict(drift_factor="0.1"), TypeError, "drift_factor"),
        (dict(node_timeout=-1), ValueError, "node_timeout must not be negative"),
        (dict(node_timeout=0), ValueError, "node_timeout must be positive"),
        (dict(release_timeout=NAN), ValueError, "release_timeout must be a number of seconds, not NaN"),
        (dict(connect_timeout=INF), ValueError, "connect_timeout=inf s is too large"),
        (dict(max_ttl=1e30), ValueError, "max_ttl=1e\\+30 s is too large"),
        (dict(max_ttl=True), TypeError, "max_ttl must be a number of seconds"),
        (dict(max_ttl=1e7), ValueError, "max_ttl .* is out of range"),
        (dict(restart_grace="0"), TypeError, "restart_grace"),
        (dict(restart_grace=-0.5), ValueError, "restart_grace"),
        (dict(clock_check_interval=0.001), ValueError, "clock_check_interval"),
        (dict(fencing="yes"), TypeError, "fencing must be True or False"),
        (dict(username=1), TypeError, "username"),
        (dict(busy_poll=1.0), ValueError, "busy_poll"),
        (dict(blocking_spin=0.5), ValueError, "blocking_spin"),
        (dict(blocking_spin=-0.001), ValueError, "blocking_spin"),
        (dict(reconnect_min=3, reconnect_max=2), ValueError, "reconnect"),
        (dict(release_wait="all"), ValueError, "release_wait must be one of 'majority', 'every_node', not 'all'"),
        (dict(release_wait=None), TypeError, "release_wait must be one of"),
    ],
)
def test_client_arguments(kwargs, error, message):
    args = dict(nodes=["127.0.0.1:1"], connect_timeout=0.05)
    args.update(kwargs)
    nodes = args.pop("nodes")
    with pytest.raises(error, match=message):
        redlock.Client(nodes, **args)


def test_unknown_option():
    with pytest.raises(TypeError, match="unexpected keyword"):
        redlock.Client(["127.0.0.1:1"], nodez=1)


@pytest.fixture(scope="module")
def offline():
    """A client whose node is not there: argument checks never need one."""
    c = redlock.Client(["127.0.0.1:1"], connect_timeout=0.05, restart_grace=0)
    yield c
    c.close()


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((None,), {}, TypeError, "lock name must be str or bytes, not NoneType"),
        ((42,), {}, TypeError, "lock name must be str or bytes, not int"),
        (("",), {}, ValueError, "lock name is empty"),
        ((b"",), {}, ValueError, "lock name is empty"),
        (("x" * 1025,), {}, ValueError, "at most 1024"),
        (("\ud800",), {}, ValueError, "cannot be encoded as UTF-8"),
        (("x",), dict(timeout=None), ValueError, "never expires"),
        (("x",), dict(timeout=-1), ValueError, "timeout must not be negative"),
        (("x",), dict(timeout=0), ValueError, "timeout must be positive"),
        (("x",), dict(timeout=NAN), ValueError, "timeout must be a number of seconds, not NaN"),
        (("x",), dict(timeout=INF), ValueError, "too large"),
        (("x",), dict(timeout="10"), TypeError, "timeout must be a number of seconds"),
        (("x",), dict(timeout=120), ValueError, "exceeds the client's max_ttl=60 s"),
        (("x",), dict(sleep=-0.1), ValueError, "sleep must not be negative"),
        (("x",), dict(blocking="no"), TypeError, "blocking must be True or False"),
        (("x",), dict(contest_gate=1), TypeError, "contest_gate must be True or False"),
        (("x",), dict(blocking_timeout=-1), ValueError, "blocking_timeout must not be negative"),
        (("x",), dict(blocking_timeout=NAN), ValueError, "blocking_timeout"),
        (("x",), dict(thread_local=None), TypeError, "thread_local"),
        (("x",), dict(lock_class=int), TypeError, "lock_class must be a subclass of redlock.(Async)?Lock"),
        (("x",), dict(auto_extend=True, max_extensions=0), ValueError, "auto_extend needs a bound"),
        (("x",), dict(auto_extend=True, extend_at_remaining=1.5), ValueError, "extend_at_remaining"),
        (("x",), dict(max_extensions=-1), ValueError, "max_extensions"),
        (("x",), dict(max_extensions=2.5), TypeError, "max_extensions must be an int"),
        (("x",), dict(retry_jitter=-1), ValueError, "retry_jitter"),
        (("x",), dict(min_validity=0), ValueError, "min_validity"),
        (("x",), dict(no_such_option=1), TypeError, "unexpected keyword"),
    ],
)
def test_lock_arguments(offline, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        offline.lock(*args, **kwargs)
    with pytest.raises(error, match=message):
        offline.async_lock(*args, **kwargs)


def test_durations_accept_ints_floats_and_timedeltas(offline):
    assert offline.lock("x", timeout=5).timeout == 5.0
    assert offline.lock("x", timeout=datetime.timedelta(seconds=2)).timeout == 2.0
    assert offline.lock("x", blocking_timeout=math.inf).blocking_timeout == math.inf


def test_acquire_arguments(offline):
    lock = offline.lock("x")
    with pytest.raises(ValueError, match="custom tokens are not supported"):
        lock.acquire(token="abc")
    with pytest.raises(ValueError, match="blocking_timeout must not be negative"):
        lock.acquire(blocking_timeout=-5)
    with pytest.raises(TypeError, match="blocking must be True or False"):
        lock.acquire(blocking=1)
    with pytest.raises(ValueError, match="sleep"):
        lock.acquire(sleep=NAN)


def test_extend_and_release_arguments(client, name):
    lock = client.lock(name, timeout=5)
    with pytest.raises(redlock.LockError, match="not owned or is already unlocked"):
        lock.release()
    assert lock.acquire()
    try:
        with pytest.raises(ValueError, match="additional_time must not be negative"):
            lock.extend(-1)
        with pytest.raises(ValueError, match="additional_time must be positive"):
            lock.extend(0)
        with pytest.raises(TypeError, match="additional_time must be a number of seconds"):
            lock.extend("1")
        with pytest.raises(ValueError, match="NaN"):
            lock.extend(NAN)
        with pytest.raises(ValueError, match="exceeds the client's max_ttl"):
            lock.extend(1000)
        with pytest.raises(TypeError, match="replace_ttl"):
            lock.extend(1, replace_ttl="yes")
        assert lock.owned()  # none of it touched the lock
    finally:
        lock.release()


def test_engine_refuses_a_ttl_too_short(client, name):
    # Below what the drift allowance leaves: the engine's own check, as a
    # ValueError (InvalidArgument) naming the ttl.
    with pytest.raises(ValueError, match="too short") as info:
        client.lock(name, timeout=0.002).acquire()
    assert isinstance(info.value, redlock.InvalidArgument)


def test_prometheus_prefix_type(offline):
    with pytest.raises(TypeError, match="prefix"):
        offline.prometheus(1)


def test_native_layer_refuses_out_of_range_values(offline):
    # The private layer checks again: no crash on absurd values.
    spec_args = dict(ttl_ms=1000, retry_delay_ms=1, retry_jitter_ms=0, min_validity_ms=1,
                     node_timeout_ms=0, wake_on_release=True, auto_extend=False,
                     extend_at_remaining=0.5, extend_ttl_ms=0, max_extensions=1, max_hold_ms=0)
    for field, value in [("ttl_ms", -1), ("ttl_ms", 2**62), ("retry_delay_ms", -5),
                         ("extend_at_remaining", NAN)]:
        with pytest.raises(ValueError):
            redlock._native.AcquireSpec(**{**spec_args, field: value})
    with pytest.raises(TypeError):
        redlock._native.AcquireSpec(**{**spec_args, "ttl_ms": 2**70})
    spec = redlock._native.AcquireSpec(**spec_args)
    with pytest.raises(ValueError):
        offline._native.acquire(b"x", spec, -7)


def test_client_defaults_are_the_librarys():
    """The Python keyword defaults are the C++ ClientOptions defaults."""
    import inspect

    from redlock import _native

    signature = inspect.signature(redlock.Client.__init__)
    for name, value in _native.defaults().items():
        assert signature.parameters[name].default == pytest.approx(value), name
