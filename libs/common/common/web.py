"""An `@http` entrypoint that speaks JSON both ways, errors included.

Nameko's own `@http` answers errors in plain text; clients of a JSON API want a JSON body
with a status that says whose fault it was.
"""

import json

from nameko.exceptions import BadRequest
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from common.errors import InvalidInput, NotFound

STATUS_BY_ERROR = {InvalidInput: 400, BadRequest: 400, NotFound: 404}


def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def request_json(request) -> object:
    """The request body as JSON, or `InvalidInput` (400) when it is not JSON."""
    try:
        return json.loads(request.get_data(as_text=True))
    except ValueError as error:
        raise InvalidInput(f"request body is not valid JSON: {error}") from None


class JsonHttpHandler(HttpRequestHandler):
    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status, body = result if isinstance(result, tuple) else (200, result)
        return json_response(body, status)

    def response_from_exception(self, exc):
        status = next((code for kind, code in STATUS_BY_ERROR.items() if isinstance(exc, kind)), 500)
        body = {"error": type(exc).__name__, "message": str(exc) if status < 500 else "internal error"}
        if isinstance(exc, InvalidInput):
            body["problems"] = exc.problems
        return json_response(body, status)


http = JsonHttpHandler.decorator
