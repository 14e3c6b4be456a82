"""The suite's xdist groups hold together: under `make test` (`-n 2 --dist loadgroup`) every
test of a group runs on one worker, so the group's expensive fixtures are built once."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("groups-check")


def test_a_grouped_test_carries_its_group_to_the_scheduler(request):
    if not request.config.getoption("loadgroup", default=False):
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    # the scheduler groups by this suffix; a pytest that ignores xdist's rename splits groups
    assert request.node.nodeid.endswith("@groups-check"), request.node.nodeid
