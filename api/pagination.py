"""Pages of a list: `?limit=` rows (at most REFINERY_API_MAX_PAGE_SIZE, however
many are asked for) from `?offset=`."""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination

from api.filters import bad_parameters, whole_number


class Pagination(LimitOffsetPagination):
    @property
    def max_limit(self) -> int:
        return settings.REFINERY_API_MAX_PAGE_SIZE

    def _parameter(self, request, name: str, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return None
        try:
            value = whole_number(raw)
        except ValueError:
            raise bad_parameters({name: ["not a whole number"]}, request.query_params) from None
        if value < minimum:
            raise bad_parameters({name: [f"at least {minimum}"]}, request.query_params)
        return value

    def get_limit(self, request) -> int:
        limit = self._parameter(request, self.limit_query_param, minimum=1)
        return min(self.default_limit if limit is None else limit, self.max_limit)

    def get_offset(self, request) -> int:
        return self._parameter(request, self.offset_query_param, minimum=0) or 0
