"""The API's error body, ``{"errors": [{"message", "extensions": {"code"}}]}``, for answers
made outside GraphQL: refusals of the HTTP exchange, routing and /metrics."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from repository.errors import ErrorCode


def error_body(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code.value}}]}


async def routing_refusal(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (a method a route does not take, a path no route has) in
    the API's error body instead of plain text, with their headers (``Allow``)."""
    status = getattr(exc, "status_code", 400)
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        # Starlette joins a set: every process its own order, unless put in one
        headers["Allow"] = ", ".join(sorted(
            method.strip() for method in headers.get("Allow", "").split(",") if method.strip()))
        code = ErrorCode.BAD_REQUEST
        message = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
    elif status == 404:
        code, message = ErrorCode.NOT_FOUND, f"nothing is served at {request.url.path}"
    else:
        code, message = ErrorCode.BAD_REQUEST, str(getattr(exc, "detail", "")) or "bad request"
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)
