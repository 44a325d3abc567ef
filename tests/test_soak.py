"""A short `make soak` (bench/soak.py) against the real container: wrk past saturation, then
zero socket errors, zero non-2xx answers, the container still up, memory flat after warm-up."""

import pytest

from bench import soak

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_short_soak_at_saturation(image):
    figures, failures = soak.soak(image, seconds=4)
    print(figures)
    assert failures == []
    assert figures["requests"] > 1000  # it really was under load
