"""Project-wide pytest setup: hypothesis runs without a per-example deadline.

The suite runs on a 2-core machine, often beside a server it started; a timing deadline there
only produces flaky failures, and speed is measured by bench/, not by tests.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("workbench", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("workbench")
