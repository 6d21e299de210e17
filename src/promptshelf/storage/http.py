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
from datetime import datetime, timedelta
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
from ..errors import ProtocolError, ServerUnavailableError
from ..models import LabelEvent, PromptVersion, TrashEntry
from ..progress import Progress, Tally
from ..timestamps import to_text, utc_now
from .base import TrashedVersion, VersionStorage
from .codec import encode_version
from .verify import Action, Problem, RepairReport, VerifyReport


class HTTPStorage(VersionStorage):
    """Every call one (or, for listings, a few) HTTP requests to a promptshelf server."""

    _retires_remotely = True  # the server's store records and refuses retired numbers

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
        headers: dict[str, str] | None = None,
        context: dict[str, Any] | None = None,
    ) -> httpx.Response:
        if content is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
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
        body = self._json(self._call("GET", f"{prompt_path(prompt_id)}/versions:full"))
        return [version_from_data(item, f"{prompt_id} versions") for item in body]

    def _version_numbers(self, prompt_id: str) -> list[str]:
        response = self._call("GET", f"{prompt_path(prompt_id)}/versions", ok=(200, 404))
        if response.status_code == 404:
            self._not_found_ok(response)
            return []
        body = self._json(response)
        items = body.get("versions") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ProtocolError(f"{prompt_id}: the version listing is not a list")
        return [str(item["version"]) for item in items]

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
        return [str(p) for p in self._json(self._call("GET", f"{API}/prompts:ids"))]

    def _clear(self) -> None:
        self._call("POST", f"{API}/admin/clear", ok=(204,), params={"confirm": "true"})

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        stats = self._json(self._call("GET", f"{API}/stats"))
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
        *,
        expected_seq: int | None = None,
    ) -> LabelEvent | None:
        path = f"{prompt_path(prompt_id)}/labels/{q(label)}"
        context: dict[str, Any] = {"prompt_id": prompt_id, "label": label}
        condition = _label_condition(expected_seq)
        if version is not None:
            context["version"] = version
            body = {"version": version, "actor": actor, "reason": reason}
            response = self._call(
                "PUT", path, ok=(200, 201), body=body, headers=condition, context=context
            )
            return LabelEvent.model_validate(self._json(response))
        params: dict[str, str] = {"actor": actor} if actor is not None else {"no_actor": "true"}
        if reason is not None:
            params["reason"] = reason
        response = self._call(
            "DELETE", path, ok=(204, 404), params=params, headers=condition, context=context
        )
        if response.status_code == 404:
            self._not_found_ok(response)
            return None
        events = [e for e in self._label_events(prompt_id) if e.label == label]
        if not events:
            raise ProtocolError(f"{prompt_id}: label {label!r} was removed, but no event recorded")
        return events[-1]

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        body = self._json(self._call("GET", f"{prompt_path(prompt_id)}/history"))
        return [LabelEvent.model_validate(item) for item in body]

    def _labels(self, prompt_id: str) -> dict[str, str]:
        body = self._json(self._call("GET", f"{prompt_path(prompt_id)}/labels"))
        return {str(item["label"]): str(item["version"]) for item in body}

    # -- the trash ---------------------------------------------------------------------

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        params = {"prompt_id": prompt_id} if prompt_id is not None else None
        body = self._json(self._call("GET", f"{API}/trash", params=params))
        return [TrashEntry.model_validate(item) for item in body]

    def _restore(self, prompt_id: str, version: str) -> None:
        self._call(
            "POST",
            f"{prompt_path(prompt_id)}/versions/{q(version)}/restore",
            context={"prompt_id": prompt_id, "version": version},
        )

    def empty_trash(self, older_than: timedelta | None = None) -> int:
        # The server computes the cutoff on its own clock: send the age, not a timestamp.
        self._check_open()
        params = None
        if older_than is not None:
            params = {"older_than_days": repr(older_than.total_seconds() / 86400)}
        body = self._json(self._call("DELETE", f"{API}/trash", params=params))
        return int(body["removed"])

    def _empty_trash(self, cutoff: datetime | None) -> int:
        return self.empty_trash(None if cutoff is None else utc_now() - cutoff)

    # -- carrying a whole store ------------------------------------------------------------

    def list_held_prompts(self) -> list[str]:
        self._check_open()
        return self._history_prompts()

    def _history_prompts(self) -> list[str]:
        # The server answers the whole union in one request (a superset is what callers union).
        return [str(p) for p in self._json(self._call("GET", f"{API}/prompts:held"))]

    def _read_trash(self, prompt_id: str | None) -> list[TrashedVersion]:
        params = {"prompt_id": prompt_id} if prompt_id is not None else None
        body = self._json(self._call("GET", f"{API}/trash:read", params=params))
        return [
            TrashedVersion(
                TrashEntry.model_validate(item["entry"]),
                version_from_data(item["version"], "trash"),
            )
            for item in body
        ]

    def _import_events(self, prompt_id: str, events: list[LabelEvent]) -> int:
        content = json.dumps([e.model_dump(mode="json") for e in events]).encode("utf-8")
        response = self._call(
            "POST",
            f"{prompt_path(prompt_id)}/history:import",
            content=content,
            context={"prompt_id": prompt_id},
        )
        return int(self._json(response)["appended"])

    def _import_trashed(self, item: TrashedVersion) -> bool:
        body = {
            "entry": item.entry.model_dump(mode="json"),
            "version": json.loads(encode_version(item.version)),
        }
        response = self._call(
            "POST",
            f"{API}/trash:import",
            content=json.dumps(body).encode("utf-8"),
            context={"prompt_id": item.entry.prompt_id, "version": item.entry.version},
        )
        return bool(self._json(response)["added"])

    def _purge(self, prompt_id: str, version: str, trashed_at: datetime | None) -> bool:
        body = {
            "prompt_id": prompt_id,
            "version": version,
            "trashed_at": None if trashed_at is None else to_text(trashed_at),
        }
        response = self._call(
            "POST",
            f"{API}/purge",
            content=json.dumps(body).encode("utf-8"),
            context={"prompt_id": prompt_id, "version": version},
        )
        return bool(self._json(response)["purged"])

    # -- maintenance -------------------------------------------------------------------

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        self._check_open()
        data = self._json(self._call("POST", f"{API}/admin/verify"))
        report = VerifyReport(
            str(data.get("backend", self.backend_name)),
            int(data.get("checked_prompts", 0)),
            int(data.get("checked_versions", 0)),
        )
        report.problems = [Problem(**p) for p in data.get("problems", [])]
        Tally(progress, report.checked_versions).finish()  # the server did the work
        return report

    def repair(self, *, progress: Progress | None = None) -> RepairReport:
        self._check_open()
        data = self._json(self._call("POST", f"{API}/admin/repair"))
        report = RepairReport(str(data.get("backend", self.backend_name)))
        report.actions = [Action(**a) for a in data.get("actions", [])]
        if progress is not None:
            progress(1, 1)  # the server did the work
        return report

    # -- documents ---------------------------------------------------------------------

    def _doc_path(self, namespace: str, key: str | None = None) -> str:
        path = f"{API}/documents/{q(namespace)}"
        return path if key is None else f"{path}/{q(key)}"

    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        response = self._call("GET", self._doc_path(namespace, key), ok=(200, 404))
        if response.status_code == 404:
            self._not_found_ok(response)
            return None
        body = self._json(response)
        return _raw(body["data"]), int(body["revision"])

    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        body = self._json(self._call("GET", self._doc_path(namespace)))
        return {str(item["key"]): (_raw(item["data"]), int(item["revision"])) for item in body}

    def _doc_namespaces(self) -> list[str]:
        # The server's own namespaces (its API keys, its settings) are not served.
        return [str(n) for n in self._json(self._call("GET", f"{API}/documents"))]

    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        response = self._call(
            "PUT",
            self._doc_path(namespace, key),
            ok=(200, 201),
            content=data,
            headers=_if_match(expected),
            context={"namespace": namespace, "key": key, "expected_revision": expected},
        )
        return int(self._json(response)["revision"])

    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        response = self._call(
            "DELETE",
            self._doc_path(namespace, key),
            ok=(204, 404),
            headers=_if_match(expected),
            context={"namespace": namespace, "key": key, "expected_revision": expected},
        )
        if response.status_code == 404:
            self._not_found_ok(response)
            return False
        return True

    def close(self) -> None:
        if not self.closed:
            self._http.close()
        super().close()


def _if_match(expected: int | None) -> dict[str, str] | None:
    return None if expected is None else {"If-Match": f'"rev-{expected}"'}


def _raw(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False).encode("utf-8")


def _label_condition(expected_seq: int | None) -> dict[str, str] | None:
    """``expected_seq`` as the server's label preconditions (its 412 is ``LabelMovedError``)."""
    if expected_seq is None:
        return None
    return {"If-None-Match": "*"} if expected_seq == 0 else {"If-Match": f'"label-{expected_seq}"'}
