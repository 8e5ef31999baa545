from rest_framework.pagination import CursorPagination, PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class IdCursorPagination(CursorPagination):
    """Stable paging for long, growing lists (the audit trail): no count, no offset scans."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"
