"""The workbench's HTTP API: plain Starlette routes under /api/v1, served next to the Streamlit
app (`app.py` passes `api_routes()` to `st.App`) and testable on their own.

Endpoints (the OpenAPI document at /api/v1/openapi.json is the reference):

* `POST /api/v1/events` – one event object, or `{"events": [...]}` with up to 1,000 of them
  (contract §1 rules). Answers `{"accepted", "duplicates", "rejected", "errors": [{"index",
  "field", "reason"}]}`. A batch is stored in one transaction: whole or not at all; a bad event
  in a batch is reported and the good ones are stored (like a file import). A single event that
  breaks a rule is a 422. Idempotent: an event whose `idempotency_key` (or, without one, its
  content hash) is already stored counts as a duplicate.
* `GET /api/v1/metrics`, `GET /api/v1/metrics/{code}`, `GET /api/v1/usage?metric=&customer_id=
  &from=&to=` (the engine's aggregate over [from, to) with its groups), `GET /api/v1/health`.
* Live quotas (contract §8, `metering.quotas`): hard limits checked on `POST /events` (field
  `quota`), `GET /api/v1/entitlements/{customer_id}/{metric}?quantity=` and `GET /api/v1/alerts`
  (`quota_routes`, `quota_openapi`).
* Errors are JSON `{"error": <code>, "detail": <what was wrong>}`: 401 without the workspace key
  (`Authorization: Bearer <key>`), 404, 405, 413 for bodies over `MAX_BODY_BYTES`, 422 for
  bodies or parameters that cannot be used. Bad input never causes a 500.

Per process the API keeps one engine (`store.make_engine()`, i.e. DATABASE_URL), reads usage
from the process's shared frame cache (the one the app's pages use), and the id of the day's import record (API events are filed
under one import per UTC day, "API 2026-10-03", so the Events page can show and delete them
without one record per request; its counts are updated in the same transaction as the events).

The write path, tuned for throughput (bench/api.py):
* Ordinary bodies are decoded by msgspec into untracked structs and checked by a fast path
  that yields exactly what `ingest.parse_records` yields (tests compare them on generated
  events); anything unusual is decoded again exactly and goes through `parse_records`.
* SQLite: one kept writer connection behind a lock; a batch is one INSERT … SELECT FROM
  json_each(?) plus the counts (the import record, the store's event count), one
  transaction. PostgreSQL: one INSERT … unnest(…) and the same counts.
* At most INGEST_CONCURRENCY requests are worked on at once; `ApiFirstMiddleware` routes
  /api/v1 past Streamlit's middleware; `NoDelayMiddleware` fixes 40 ms delayed-ACK stalls.
No request does work proportional to the store size, except usage queries, which read the
incrementally refreshed columnar frame (new rows only, via store.store_version).

The package's modules: `limits` (sizes and names), `errors`, `intake` (event bodies),
`backend` (the store and the write path), `params` (query parameters), `routes`, `http`
(middleware and lifespan for `st.App`) and `openapi` (the document).
"""

from metering.api.backend import Backend, default_backend
from metering.api.errors import ApiError
from metering.api.http import ApiFirstMiddleware, NoDelayMiddleware, lifespan, middleware
from metering.api.intake import canonical_json, content_keys, fast_rows, validate_events
from metering.api.limits import API_VERSION, MAX_BATCH, MAX_BODY_BYTES, PREFIX
from metering.api.openapi import openapi_document
from metering.api.params import parse_time_param
from metering.api.routes import api_routes

__all__ = [
    "API_VERSION", "ApiError", "ApiFirstMiddleware", "Backend", "MAX_BATCH", "MAX_BODY_BYTES",
    "NoDelayMiddleware", "PREFIX", "api_routes", "canonical_json", "content_keys", "default_backend",
    "fast_rows", "lifespan", "middleware", "openapi_document", "parse_time_param", "validate_events",
]
