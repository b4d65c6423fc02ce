"""REST API views."""

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response


@api_view(["GET"])
def api_root(request: Request) -> Response:
    """What the API serves."""
    return Response({"name": "Data Refinery", "version": 1})
