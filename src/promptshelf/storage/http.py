"""``HTTPStorage``: a :class:`VersionStorage` over a promptshelf server's REST API.

``open_storage("http://host:8420")`` (or ``https://``) returns one, so
``VersionManager``, the command line and ``migrate`` work against a server
unchanged, and the contract suite runs on it. Ids and versions are validated
here before any request (the base class does it), and again by the server.
Errors come back as problem+json with our ``error_code`` and are raised as the
library's own classes (:mod:`promptshelf.client.wire`).

No caching: every call is a request, so reads see every write that completed
before them (the server's store decides). For cached reads use
:class:`promptshelf.client.PromptClient`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from ..client.protocol import build_headers, check_url
from ..client.wire import (
    API,
    decode_version_body,
    error_from_response,
    prompt_path,
    q,
    version_from_data,
)
from ..errors import LabelNotFoundError, ProtocolError, ServerUnavailableError
from ..models import LabelEvent, PromptVersion, TrashEntry
from .base import VersionStorage, encode_version
from .verify import Action, Problem, RepairReport, VerifyReport

#: Prompts asked for per page when listing.
PAGE = 500


class HTTPStorage(VersionStorage):
    """Every call one (or, for listings, a few) HTTP requests to a promptshelf server."""

    backend_name = "http"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        create: bool = True,
    ) -> None:
        """``create`` is accepted for ``open_storage``'s sake: a server's store always exists."""
        self.url = check_url(url)
        self._http = httpx.Client(
            base_url=self.url, headers=build_headers(api_key), timeout=timeout
        )

    # -- transport ---------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200,),
        params: dict[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        context: dict[str, Any] | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self._http.request(
                method, path, params=params, json=body, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ServerUnavailableError(
                f"cannot reach the promptshelf server at {self.url}: {type(exc).__name__}: {exc}",
                context={"url": self.url},
            ) from exc
        if response.status_code in ok:
            return response
        raise error_from_response(response.status_code, response.content, context)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ProtocolError(
                f"{response.request.method} {response.request.url.path}: malformed JSON: {exc}"
            ) from None

    # -- versions ----------------------------------------------------------------------

    def _save(self, version: PromptVersion) -> None:
        self._call(
            "PUT",
            f"{prompt_path(version.prompt_id)}/versions/{q(version.version)}",
            ok=(200, 201),
            content=encode_version(version),
            context={"prompt_id": version.prompt_id, "version": version.version},
        )

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        response = self._call(
            "GET", f"{prompt_path(prompt_id)}/versions/{q(version)}", ok=(200, 404)
        )
        if response.status_code == 404:
            self._not_found_ok(response)
            return None
        return decode_version_body(response.content, f"{prompt_id} {version}")

    def _get_latest(self, prompt_id: str) -> PromptVersion | None:
        response = self._call(
            "GET", prompt_path(prompt_id), ok=(200, 404), params={"version": "latest"}
        )
        if response.status_code == 404:
            self._not_found_ok(response)
            return None
        return decode_version_body(response.content, f"{prompt_id} latest")

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        items = self._versions_page(prompt_id, full=True)
        return [version_from_data(item, f"{prompt_id} versions") for item in items]

    def _version_numbers(self, prompt_id: str) -> list[str]:
        items = self._versions_page(prompt_id, full=False)
        return [str(item["version"] if isinstance(item, dict) else item) for item in items]

    def _versions_page(self, prompt_id: str, full: bool) -> list[Any]:
        response = self._call(
            "GET",
            f"{prompt_path(prompt_id)}/versions",
            params={"full": "true" if full else "false"},
        )
        body = self._json(response)
        items = body.get("items", body.get("versions")) if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise ProtocolError(f"{prompt_id}: the version listing is not a list")
        return items

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        response = self._call(
            "DELETE",
            f"{prompt_path(prompt_id)}/versions/{q(version)}",
            ok=(200, 204, 404),
            params={"force": "true"} if force else None,
            context={"prompt_id": prompt_id, "version": version},
        )
        if response.status_code == 404:
            self._not_found_ok(response)
            return False
        return True

    def _not_found_ok(self, response: httpx.Response) -> None:
        """A 404 from a missing route (an older server) is an error, not "no such version"."""
        try:
            code = response.json().get("error_code")
        except (ValueError, AttributeError):
            code = None
        if code in (None, "HTTP-NOT-FOUND"):
            raise error_from_response(response.status_code, response.content)

    def _prompts(self) -> list[str]:
        found: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": str(PAGE), "fields": "id"}
            if cursor:
                params["cursor"] = cursor
            body = self._json(self._call("GET", f"{API}/prompts", params=params))
            for item in body.get("items", []):
                found.append(item if isinstance(item, str) else str(item["prompt_id"]))
            cursor = body.get("next_cursor")
            if not cursor:
                return sorted(found)

    def _clear(self) -> None:
        self._call("POST", f"{API}/admin/clear", ok=(200, 204), body={"confirm": True})

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        stats = self._json(self._call("GET", f"{API}/admin/stats"))
        if not isinstance(stats, dict):
            raise ProtocolError("the server's stats are not an object")
        return {**stats, "backend": self.backend_name, "server_backend": stats.get("backend")}

    # -- labels ------------------------------------------------------------------------

    def _change_label(
        self,
        prompt_id: str,
        label: str,
        version: str | None,
        actor: str | None,
        reason: str | None,
    ) -> LabelEvent | None:
        path = f"{prompt_path(prompt_id)}/labels/{q(label)}"
        context = {"prompt_id": prompt_id, "label": label}
        if version is None:
            response = self._call(
                "DELETE",
                path,
                ok=(200, 204, 404),
                params={k: v for k, v in (("actor", actor), ("reason", reason)) if v is not None},
                context=context,
            )
            if response.status_code == 404:
                try:
                    code = response.json().get("error_code")
                except (ValueError, AttributeError):
                    code = None
                if code == LabelNotFoundError.default_code:
                    return None
                raise error_from_response(404, response.content, context)
            if response.status_code == 204 or not response.content:
                return None
            return self._event(self._json(response))
        body = {"version": version, "actor": actor, "reason": reason}
        context["version"] = version
        response = self._call("PUT", path, ok=(200, 201), body=body, context=context)
        return self._event(self._json(response))

    def _event(self, data: Any) -> LabelEvent:
        if isinstance(data, dict) and "event" in data:
            data = data["event"]
        return LabelEvent.model_validate(data)

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        body = self._json(self._call("GET", f"{prompt_path(prompt_id)}/labels/history"))
        items = body.get("items", body.get("events")) if isinstance(body, dict) else body
        return [LabelEvent.model_validate(item) for item in items or []]

    def _labels(self, prompt_id: str) -> dict[str, str]:
        body = self._json(self._call("GET", f"{prompt_path(prompt_id)}/labels"))
        labels = body.get("labels", body) if isinstance(body, dict) else body
        if isinstance(labels, list):
            return {str(item["label"]): str(item["version"]) for item in labels}
        return {str(k): str(v) for k, v in labels.items()}

    # -- the trash ---------------------------------------------------------------------

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        params = {"prompt_id": prompt_id} if prompt_id is not None else None
        body = self._json(self._call("GET", f"{API}/trash", params=params))
        items = body.get("items", []) if isinstance(body, dict) else body
        return [TrashEntry.model_validate(item) for item in items]

    def _restore(self, prompt_id: str, version: str) -> None:
        self._call(
            "POST",
            f"{API}/trash/{q(prompt_id)}/{q(version)}/restore",
            ok=(200, 201),
            context={"prompt_id": prompt_id, "version": version},
        )

    def _empty_trash(self, cutoff: datetime | None) -> int:
        params = {"before": cutoff.isoformat()} if cutoff is not None else None
        body = self._json(self._call("DELETE", f"{API}/trash", params=params))
        return int(body.get("removed", 0))

    # -- maintenance -------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        self._check_open()
        data = self._json(self._call("POST", f"{API}/admin/verify"))
        report = VerifyReport(
            str(data.get("backend", self.backend_name)),
            int(data.get("checked_prompts", 0)),
            int(data.get("checked_versions", 0)),
        )
        report.problems = [Problem(**p) for p in data.get("problems", [])]
        return report

    def repair(self) -> RepairReport:
        self._check_open()
        data = self._json(self._call("POST", f"{API}/admin/repair"))
        report = RepairReport(str(data.get("backend", self.backend_name)))
        report.actions = [Action(**a) for a in data.get("actions", [])]
        return report

    # -- documents ---------------------------------------------------------------------

    def _doc_path(self, namespace: str, key: str | None = None) -> str:
        path = f"{API}/admin/documents/{q(namespace)}"
        return path if key is None else f"{path}/{q(key)}"

    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        response = self._call("GET", self._doc_path(namespace, key), ok=(200, 404))
        if response.status_code == 404:
            return None
        body = self._json(response)
        return _raw(body["data"]), int(body["revision"])

    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        body = self._json(self._call("GET", self._doc_path(namespace)))
        return {
            str(item["key"]): (_raw(item["data"]), int(item["revision"]))
            for item in body.get("items", [])
        }

    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        body = {"data": json.loads(data), "expected_revision": expected}
        response = self._call(
            "PUT",
            self._doc_path(namespace, key),
            ok=(200, 201),
            body=body,
            context={"namespace": namespace, "key": key, "expected_revision": expected},
        )
        return int(self._json(response)["revision"])

    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        params = {"expected_revision": str(expected)} if expected is not None else None
        response = self._call(
            "DELETE",
            self._doc_path(namespace, key),
            ok=(200, 204, 404),
            params=params,
            context={"namespace": namespace, "key": key, "expected_revision": expected},
        )
        return response.status_code != 404

    def close(self) -> None:
        if not self.closed:
            self._http.close()
        super().close()


def _raw(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8")
