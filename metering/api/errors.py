"""Errors the API answers with (JSON `{"error", "detail"}`), and its log."""

from __future__ import annotations


import sys
from typing import Any

from starlette.responses import JSONResponse



# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An answer other than success: status, a short code and a sentence for a person."""

    def __init__(self, status: int, error: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "detail": self.detail, **self.extra}, self.status, headers=self.headers)



def _log(message: str) -> None:
    print(f"metering.api: {message}", file=sys.stderr, flush=True)
