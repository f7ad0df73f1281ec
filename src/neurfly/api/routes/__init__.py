"""Routers of the REST API, one module per resource."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status

from neurfly.api.schemas import ErrorResponse

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request."},
    401: {"model": ErrorResponse, "description": "Missing, invalid, revoked or expired token."},
    403: {"model": ErrorResponse, "description": "The caller's role does not allow this."},
    404: {"model": ErrorResponse, "description": "Not found, or owned by a team the caller cannot see."},
    409: {"model": ErrorResponse, "description": "Conflicts with the current state."},
    413: {"model": ErrorResponse, "description": "Request body too large."},
    503: {"model": ErrorResponse, "description": "The database is busy or unreachable; retry later."},
}


def invalid(loc: tuple[str | int, ...], message: str, kind: str = "value_error") -> HTTPException:
    """Return a 422 error shaped like FastAPI's own validation errors, naming the invalid value at ``loc``."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": list(loc), "msg": message, "type": kind}])
