"""The columnar event frame (moved to metering.engine; these names stay importable from here)."""

from metering.engine.columns import (
    DECIMAL,
    MISSING,
    NOT_NUMBER,
    OK,
    OUT_OF_RANGE,
    Categories,
    PathColumn,
    from_us,
    to_us,
)
from metering.engine.frame import EventFrame, FrameCache, shared_frames

__all__ = [
    "DECIMAL", "MISSING", "NOT_NUMBER", "OK", "OUT_OF_RANGE", "Categories", "EventFrame", "FrameCache",
    "PathColumn", "from_us", "shared_frames", "to_us",
]
