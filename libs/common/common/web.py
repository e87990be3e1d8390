"""An `@http` entrypoint that speaks JSON both ways, errors included.

Nameko's own `@http` answers errors in plain text; clients of a JSON API want a JSON body
with a status that says whose fault it was.
"""

import json

from nameko.exceptions import BadRequest
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, LengthRequired, RequestEntityTooLarge
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

from common.errors import Conflict, InvalidInput, NotFound
from common.settings import WebSettings, settings_of

STATUS_BY_ERROR = {InvalidInput: 400, BadRequest: 400, NotFound: 404, Conflict: 409}


def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def request_json(request) -> object:
    """The request body as JSON, or `InvalidInput` (400) when it is not JSON."""
    try:
        return json.loads(request.get_data(as_text=True))
    except ValueError as error:
        raise InvalidInput(f"request body is not valid JSON: {error}") from None
    except RecursionError:  # e.g. [[[[...]]]] 200,000 deep: the parser recurses per level
        raise InvalidInput("request body is nested too deeply") from None


def error_response(error: HTTPException) -> Response:
    response = json_response({"error": type(error).__name__, "message": error.description}, error.code)
    response.headers.extend(
        (name, value) for name, value in error.get_headers() if name.lower() != "content-type"
    )
    return response


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, with its own errors (unknown route, wrong method) as JSON too, and a
    limit on request bodies: a body announced longer than `max_body` is refused (413) before any
    of it is read or a worker is spawned. A chunked body (no length announced) is refused (411):
    eventlet's server does not mark it as terminated, so werkzeug would read it as empty."""

    def __init__(self, server, max_body: int):
        super().__init__(server)
        self.max_body = max_body

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        request.max_content_length = self.max_body
        adapter = self.url_map.bind_to_environ(environ)
        try:
            if (request.content_length or 0) > self.max_body:
                raise RequestEntityTooLarge(f"the body is over the limit of {self.max_body} bytes")
            if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                raise LengthRequired("send the body with a Content-Length, not chunked")
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except RequestRedirect as redirect:  # e.g. to the canonical URL: not an error
            response = redirect
        except HTTPException as error:
            response = error_response(error)
        return response(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self, settings_of(self.container, WebSettings).HTTP_MAX_BODY_BYTES)


class JsonHttpHandler(HttpRequestHandler):
    server = JsonWebServer()

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status, body = result if isinstance(result, tuple) else (200, result)
        return json_response(body, status)

    def response_from_exception(self, exc):
        if isinstance(exc, HTTPException):  # werkzeug's own, raised while reading the request
            return error_response(exc)
        status = next((code for kind, code in STATUS_BY_ERROR.items() if isinstance(exc, kind)), 500)
        body = {"error": type(exc).__name__, "message": str(exc) if status < 500 else "internal error"}
        if isinstance(exc, InvalidInput):
            body["problems"] = exc.problems
        return json_response(body, status)


http = JsonHttpHandler.decorator
