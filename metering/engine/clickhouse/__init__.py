"""Events in ClickHouse: every question of the `Events` protocol answered in ClickHouse SQL.

* `connection`: one client interface over chdb (embedded) and a ClickHouse server.
* `schema`: the events table, and the deduplicated source reads use.
* `sql`: SQL expressions for property paths and the value rules of contract §2.
* `reads`: `ClickHouseEvents`, the `Events` implementation.
"""
