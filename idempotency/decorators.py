"""`@idempotent`: Stripe-style `Idempotency-Key` handling for DRF POST view methods."""

import functools
import re
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http.request import RawPostDataException
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import Conflict, Unprocessable
from idempotency import services
from idempotency.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")

_P = ParamSpec("_P")
_V = TypeVar("_V")
ViewMethod = Callable[Concatenate[_V, Request, _P], Response]


def idempotent(view_method: ViewMethod[_V, _P]) -> ViewMethod[_V, _P]:
    """Makes a POST view method safe to retry with the same `Idempotency-Key` header.

    Without the header, or for an anonymous user, the view runs unchanged. Otherwise the key
    (1 to 255 printable ASCII characters, else 400) is claimed for the user by inserting an
    `IdempotencyRecord` in its own transaction, with the method, the path (and query string)
    and a fingerprint of the body (JSON is compared by content: key order and spaces do not
    count). Then:

    - the key was used with another body, method or path: 422, the view does not run;
    - the key's first request has finished: its stored status and body are returned with
      `Idempotent-Replayed: true`, the view does not run;
    - the key's first request is still running: the request waits for it (requests with one
      key run one at a time, under a PostgreSQL advisory lock on (user, key)) and then gets its
      answer as above, or runs the view if the first left nothing stored; after
      IDEMPOTENCY_WAIT_SECONDS (default 10) it gets a 409 instead. A record left in flight by a
      request that died is a 409 at once;
    - the key is new: the view runs. A response it returns with a status below 500 is stored
      (a second short write, after the view's own transactions have committed). A 5xx response,
      or any exception the view raises (including DRF's 400/403/404/409 APIExceptions, turned
      into responses only after this decorator), deletes the record: nothing is stored, and
      the client may fix the request and retry with the same key.

    Side effects: writes `IdempotencyRecord` rows. Reads `request.body`, so a request whose
    body was already consumed (a multipart form read by the session CSRF check) or is larger
    than DATA_UPLOAD_MAX_MEMORY_SIZE gets a 400 when it carries the header. Only the status
    and body are replayed, not other headers. Use it outside ATOMIC_REQUESTS: inside an outer
    transaction the claim is invisible to other requests until that transaction commits.
    """

    @functools.wraps(view_method)
    def wrapper(view: _V, request: Request, /, *args: _P.args, **kwargs: _P.kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return view_method(view, request, *args, **kwargs)
        if not _VALID_KEY.fullmatch(key):
            raise ValidationError({HEADER: ["Use 1 to 255 printable ASCII characters."]})
        method, path = request.method or "", request.get_full_path()
        fingerprint = services.request_fingerprint(_body(request))
        with services.key_lock(user_id=request.user.pk, key=key):
            record, created = services.claim(
                user_id=request.user.pk, key=key, method=method, path=path, fingerprint=fingerprint
            )
            if not created:
                return _answer_again(record, (method, path, fingerprint))
            try:
                response = view_method(view, request, *args, **kwargs)
            except BaseException:
                services.release(record)
                raise
            if response.status_code >= 500:
                services.release(record)
            else:
                services.complete(record, status_code=response.status_code, body=response.data)
            return response

    wrapper.idempotent = True  # type: ignore[attr-defined]  # read by core.schema
    return wrapper


def _body(request: Request) -> bytes:
    try:
        return request.body
    except (RawPostDataException, RequestDataTooBig):
        raise ValidationError(
            {HEADER: ["Not supported with this request body; send the request without it."]}
        ) from None


def _answer_again(record: IdempotencyRecord, request: tuple[str, str, str]) -> Response:
    """The answer to a (method, path, fingerprint) request whose key is already taken."""
    if (record.method, record.path, record.request_fingerprint) != request:
        raise Unprocessable("This Idempotency-Key was used with another request.")
    if record.completed_at is None:
        raise Conflict("A request with this Idempotency-Key is still in progress.")
    return Response(
        record.response_body, status=record.status_code, headers={REPLAYED_HEADER: "true"}
    )
