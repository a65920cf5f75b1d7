"""The API's limits and fixed names."""

from __future__ import annotations






PREFIX = "/api/v1"
MAX_BODY_BYTES = 1 << 20  # 1 MiB
MAX_BATCH = 1_000
# How far ahead of the server's clock an API event may be (as Stripe refuses meter events
# dated in the future): a clock skew passes, a typo such as 2099 does not. Files may hold
# planned (future) usage; their import result counts it.
MAX_FUTURE_S = 300
INGEST_CONCURRENCY = 2
# The served app's GIL switch interval (Python's default is 5 ms). An SQLite write hands the
# GIL back and forth about five times (BEGIN, INSERT, UPDATE, COMMIT); each time, while another
# request validates in Python, taking it back can wait a whole interval: +20 ms per batch
# (measured: a 1,000-event write took ~37 ms next to a validating thread at 5 ms, ~24 ms at
# 0.5 ms). 1 ms also keeps the pages' script threads responsive while the API is busy.
SWITCH_INTERVAL_S = 0.001
API_VERSION = "1.0.0"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
