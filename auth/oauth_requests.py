# authlib's request classes are untyped: this module, which subclasses them, is checked in
# basic mode.
# pyright: basic
"""An OAuth 2.0 request as authlib sees it, built from what the async edge already read,
and the (status, body, headers) triple authlib answers with."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, cast

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload

OAuthResponse = tuple[int, Any, list[tuple[str, str]]]


class _Payload(OAuth2Payload):
    """Parameters with their repeats kept: authlib refuses repeated PKCE parameters."""

    def __init__(self, data: dict[str, str], datalist: dict[str, list[str]]) -> None:
        self._data = data
        self._datalist = defaultdict(list, datalist)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


def form_data(request: OAuth2Request) -> dict[str, str]:
    """The request's parameters, query and form together (the first of each)."""
    return cast(_Payload, request.payload).data


class FormRequest(OAuth2Request):
    """An OAuth 2.0 request built from what the async edge already read."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Mapping[str, list[str]],
        form: Mapping[str, list[str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)  # case-insensitive, like HTTP
        self._args = {k: v[0] for k, v in query.items() if v}
        self._form = {k: v[0] for k, v in form.items() if v}
        datalist: dict[str, list[str]] = {k: list(v) for k, v in query.items()}
        for k, v in form.items():
            datalist.setdefault(k, []).extend(v)
        self.payload = _Payload({**self._args, **self._form}, datalist)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form
