"""Errors as values: every 4xx/5xx answer is ``{"error": {"code", "message", "detail"}}``.

Handlers raise ``ApiError``; the middleware also turns aiohttp's own HTTP errors (404, 405, 413 ...),
photo and pipeline errors, stage-selection errors and anything unexpected into that shape, so a
client never sees an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from vrhub.pipeline.plugins import SelectionError
from vrhub.pipeline.run import PipelineError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP ``status``, machine-readable ``code``, a sentence for people."""

    def __init__(
        self, status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


def json_error(status: int, code: str, message: str, detail: Any = None, **kwargs: Any) -> web.Response:
    return web.json_response(error_body(code, message, detail), status=status, **kwargs)


_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "This needs credentials."),
    403: ("forbidden", "You may not do that."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("request_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "The request body has a type this address does not accept."),
}


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    code, message = _HTTP_CODES.get(exc.status, (exc.reason.lower().replace(" ", "_"), exc.reason))
    detail: dict[str, Any] | None = None
    if exc.status == 404:
        message = f"There is nothing at {request.path}."
    elif exc.status == 405 and isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        message = f"{request.path} does not accept {request.method}; it accepts {', '.join(allowed)}."
        detail = {"allowed": allowed}
    elif exc.status == 413:
        limit = request.app.get(_max_size_key)
        message = "The upload is too large" + (f"; the limit is {limit / 1e6:.1f} MB." if limit else ".")
        detail = {"limit": limit} if limit else None
    elif exc.text and not exc.text.startswith(f"{exc.status}:"):
        message = exc.text
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "www-authenticate"}}
    return json_error(exc.status, code, message, detail, headers=headers)


#: The upload limit in bytes, for 413 messages (set by make_app).
_max_size_key = web.AppKey("max_upload_bytes", int)
max_upload_key = _max_size_key


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response = await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.code, exc.message, exc.detail, headers=exc.headers)
    except SelectionError as exc:
        return json_error(400, "unknown_stage", str(exc), {"valid": exc.valid})
    except PipelineError as exc:
        status = getattr(exc, "status", 422)
        return json_error(status, exc.code, str(exc), exc.detail or None)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except Exception:  # noqa: BLE001 - a bug must answer JSON, never a traceback
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal_error", "Something went wrong on the server; it has been logged.")
    if (
        isinstance(response, web.Response)
        and response.status >= 400
        and response.content_type != "application/json"
    ):
        code, message = _HTTP_CODES.get(response.status, ("error", response.reason or "error"))
        return json_error(response.status, code, message)
    return response
