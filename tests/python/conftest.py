"""Fixtures of the Python tests: a 5-node cluster of real redis-server
processes per test module, and a client per test (restart_grace=0: the
nodes were just started empty, so no lock can predate them).

The clients wait up to NODE_TIMEOUT for each node instead of the default
fraction of the ttl (10 ms for the short locks the tests use): the machine
running the tests may be loaded, and a node that answers late counts as a
"no" vote."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import redlock  # noqa: E402  (PYTHONPATH points at the build tree's package)
from cluster import Cluster, scaled  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(5)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def nodes(cluster):
    yield cluster.nodes
    # A test that paused nodes resumes them; this is the safety net.
    cluster.resume_all()


NODE_TIMEOUT = 0.1


@pytest.fixture
def client(nodes):
    c = redlock.Client(nodes, restart_grace=0, node_timeout=NODE_TIMEOUT)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def other(nodes):
    """A second, independent client: another process, as far as the nodes
    can tell."""
    c = redlock.Client(nodes, restart_grace=0, node_timeout=NODE_TIMEOUT)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def name(request):
    """A lock name of this test's own, so that tests never share a key."""
    return f"py:{request.node.name}:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bound():
    return scaled
