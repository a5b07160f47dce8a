"""Hypothesis profiles and the `slow` marker.

Profiles: ``default`` (25 examples), ``slow`` (300 examples; also runs the tests marked
``slow``) and ``ci`` (25 examples, derandomised, failing examples printed as blobs).
``HYPOTHESIS_PROFILE`` picks one; without it, ``ci`` when ``CI=true`` and ``default`` otherwise.
Tests marked ``slow`` are skipped unless the profile is ``slow`` or ``-m`` selects by marker.
"""

import os
import warnings

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis's pytest plugin imports libcst when it reports a failing example, and that
# import warns; the suite turns warnings into errors, which would hide the failure behind
# an internal error. Importing it once here, quietly, keeps failures readable.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import libcst  # noqa: F401
    except ImportError:
        pass

# Building a design goes through formulaic, which is slow for Hypothesis's default deadline.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile("default", max_examples=25, **_COMMON)
settings.register_profile("slow", max_examples=300, **_COMMON)
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, database=None, **_COMMON)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "default")
settings.load_profile(PROFILE)


def pytest_collection_modifyitems(config, items):
    if PROFILE == "slow" or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow: run with HYPOTHESIS_PROFILE=slow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
