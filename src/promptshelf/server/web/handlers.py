"""One function per page: read the library, return a template and its values.

Reads need the ``read`` scope when keys exist (checked before a handler runs);
changes need ``write``, and moving a label asks the gate (protected labels
need ``admin``). Changes happen only on POST, after a confirmation page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import (
    LabelError,
    LabelMovedError,
    RenderError,
    ValidationError,
    VersionNotFoundError,
)
from ...ids import validate_name, validate_prompt_id
from ...storage.labelevents import label_seq
from ..problems import LABEL_MOVED, ApiError
from . import views
from .pages import PageContext, PageResult

PAGE_SIZE = 50


def prompt_list(ctx: PageContext) -> PageResult:
    search = ctx.query.get("q", "").strip()
    label = ctx.query.get("label", "").strip()
    page = _int(ctx.query.get("page", "1"), minimum=1)
    ids = [p for p in ctx.storage.list_prompts() if search.lower() in p.lower()]
    if label:
        validate_name(label, "label")
        ids = [p for p in ids if label in ctx.storage.list_labels(p)]
    shown = ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    rows = [views.summarize(ctx.storage, p) for p in shown]
    values = {
        "rows": rows,
        "q": search,
        "label": label,
        "page": page,
        "total": len(ids),
        "more": len(ids) > page * PAGE_SIZE,
    }
    return PageResult("list.html", values)


def _prompt_id(ctx: PageContext) -> str:
    return validate_prompt_id(ctx.path["prompt_id"])


def prompt_page(ctx: PageContext) -> PageResult:
    prompt_id = _prompt_id(ctx)
    versions = ctx.manager.get_version_history(prompt_id)
    if not versions:
        raise VersionNotFoundError(prompt_id, "latest", {"reason": "no versions exist"})
    labels = ctx.storage.list_labels(prompt_id)
    by_version: dict[str, list[str]] = {}
    for name, number in sorted(labels.items()):
        by_version.setdefault(number, []).append(name)
    history = ctx.storage.label_history(prompt_id)
    values = {
        "prompt_id": prompt_id,
        "versions": list(reversed(versions)),
        "latest": versions[-1],
        "best": max(versions, key=lambda v: v.analysis.overall_score).version,
        "labels": labels,
        "by_version": by_version,
        "history": list(reversed(history)),
        "chart": views.score_chart(versions),
        "notice": ctx.query.get("notice", ""),
        "notice_label": ctx.query.get("label", ""),
    }
    return PageResult("prompt.html", values)


def compare(ctx: PageContext) -> PageResult:
    prompt_id = _prompt_id(ctx)
    numbers = ctx.storage.list_version_numbers(prompt_id)
    if not numbers:
        raise VersionNotFoundError(prompt_id, "latest", {"reason": "no versions exist"})
    default_left = numbers[max(0, len(numbers) - 2)]
    left = ctx.manager.get_version(prompt_id, ctx.query.get("a") or default_left)
    right = ctx.manager.get_version(prompt_id, ctx.query.get("b") or numbers[-1])
    values = {
        "prompt_id": prompt_id,
        "numbers": numbers,
        "left": left,
        "right": right,
        "diff": views.word_diff(left.prompt.text, right.prompt.text),
        "rows": views.message_rows(left, right),
        "config": views.config_changes(left, right),
        "delta": right.analysis.overall_score - left.analysis.overall_score,
    }
    return PageResult("compare.html", values)


def promote(ctx: PageContext) -> PageResult:
    """GET: the confirmation (label from where to where); POST: move the label."""
    prompt_id = _prompt_id(ctx)
    label = validate_name(ctx.params.get("label", "").strip() or "production", "label")
    version = ctx.manager.get_version(prompt_id, ctx.params.get("version", "") or "latest").version
    principal = ctx.gate.check_label_move(ctx.principal, label)
    current = ctx.storage.get_label(prompt_id, label)
    if ctx.method == "GET":
        return _confirm(ctx, prompt_id, label, current, version, "promote")
    _still_at(ctx, label, current)
    with _refused_if_moved(ctx, label):
        ctx.manager.promote(
            prompt_id,
            version,
            label,
            actor=principal.actor,
            reason=_reason(ctx),
            expected_seq=_shown_seq(ctx),
        )
    return PageResult(redirect=ctx.url("prompts", prompt_id, notice="moved", label=label))


def rollback_label(ctx: PageContext) -> PageResult:
    """GET: the confirmation (back to where the label was before its last move); POST: do it."""
    prompt_id = _prompt_id(ctx)
    label = validate_name(ctx.path["label"], "label")
    principal = ctx.gate.check_label_move(ctx.principal, label)
    current = ctx.storage.get_label(prompt_id, label)
    target = views.previous_target(ctx.storage.label_history(prompt_id, label), label)
    if current is None or target is None:
        raise LabelError(
            f"label {label!r} of {prompt_id!r} has no earlier version to roll back to",
            context={"prompt_id": prompt_id, "label": label},
        )
    if ctx.method == "GET":
        return _confirm(ctx, prompt_id, label, current, target, "rollback")
    _still_at(ctx, label, current)
    with _refused_if_moved(ctx, label):
        ctx.manager.rollback_label(
            prompt_id,
            label,
            actor=principal.actor,
            reason=_reason(ctx),
            expected_seq=_shown_seq(ctx),
        )
    return PageResult(redirect=ctx.url("prompts", prompt_id, notice="rolled-back", label=label))


def _confirm(
    ctx: PageContext, prompt_id: str, label: str, current: str | None, target: str, action: str
) -> PageResult:
    values = {
        "prompt_id": prompt_id,
        "label": label,
        "current": current,
        "target": target,
        "action": action,
        "seq": label_seq(ctx.storage.label_history(prompt_id, label), label),
    }
    return PageResult("confirm.html", values)


def _shown_seq(ctx: PageContext) -> int | None:
    """The label's state the confirmation showed (its last event's seq, 0: unset), which the
    move is a compare-and-swap on; None for a form without it (the version check remains)."""
    shown = ctx.form.get("expected_seq", "")
    if not shown.isdigit() or len(shown) > 18:
        return None
    return int(shown)


@contextmanager
def _refused_if_moved(ctx: PageContext, label: str) -> Iterator[None]:
    """A move that lost its compare-and-swap (another writer moved the label after the
    confirmation was shown, even back to the same version) is refused like a stale page."""
    try:
        yield
    except LabelMovedError:
        raise ApiError(
            412,
            LABEL_MOVED,
            f"label {label!r} changed since the confirmation was shown; look again and "
            "confirm anew",
        ) from None


def _still_at(ctx: PageContext, label: str, current: str | None) -> None:
    """Refuse when the label moved after the confirmation page was shown (the page's If-Match)."""
    expected = ctx.form.get("expected", "") or None
    if expected != current:
        raise ApiError(
            412,
            LABEL_MOVED,
            f"label {label!r} moved to {current or 'nowhere'} since the confirmation was "
            f"shown (it was at {expected or 'nowhere'}); look again and confirm anew",
        )


def _reason(ctx: PageContext) -> str | None:
    reason = ctx.form.get("reason", "").strip()
    if len(reason) > 1000:
        raise ValidationError("the reason is longer than 1000 characters")
    return reason or None


def render(ctx: PageContext) -> PageResult:
    """A version with its placeholders filled; a strict render's errors show inline."""
    prompt_id = _prompt_id(ctx)
    selector = ctx.params.get("version", "") or "latest"
    version = ctx.manager.get_version(prompt_id, selector)
    names = views.placeholder_names(version)
    # An empty field is a value not given: a strict render names it rather than
    # silently filling the placeholder with nothing.
    given = {n: ctx.form[f"var.{n}"] for n in names if ctx.form.get(f"var.{n}")}
    rendered, messages, error = None, None, None
    if ctx.method == "POST":
        try:
            if version.prompt.messages is None:
                rendered = version.render(given, strict=True)
            else:
                messages = version.render_messages(given, strict=True)
        except RenderError as exc:
            error = exc
    values = {
        "prompt_id": prompt_id,
        "version": version,
        "names": names,
        "given": given,
        "rendered": rendered,
        "messages": messages,
        "error": error,
    }
    return PageResult("render.html", values, status=422 if error else 200)


def trash(ctx: PageContext) -> PageResult:
    entries = list(reversed(ctx.storage.list_trash()))
    values = {
        "entries": entries,
        "restored": ctx.query.get("restored", ""),
        "restored_version": ctx.query.get("version", ""),
    }
    return PageResult("trash.html", values)


def restore(ctx: PageContext) -> PageResult:
    ctx.gate.require(ctx.principal, "write")
    prompt_id = validate_prompt_id(ctx.form.get("prompt_id", ""))
    restored = ctx.storage.restore_version(prompt_id, ctx.form.get("version", ""))
    return PageResult(
        redirect=ctx.url("trash", restored=restored.prompt_id, version=restored.version)
    )


def _int(text: str, *, minimum: int) -> int:
    try:
        return max(minimum, int(text))
    except ValueError:
        return minimum


def sign_in(ctx: PageContext) -> PageResult:
    """The one page shown without a key: paste a key, get a cookie."""
    if not ctx.gate.keys_required():
        message = "This server has no API keys: on its own machine you act as 'local'."
        return PageResult("signin.html", {"error": None, "info": message})
    if ctx.method == "GET":
        return PageResult("signin.html", {"error": None, "info": None})
    secret = ctx.form.get("api_key", "").strip()
    client = ctx.request.client.host if ctx.request.client else None
    if not secret or ctx.gate.principal(secret, client) is None:
        values = {"error": "That key is unknown or revoked.", "info": None}
        return PageResult("signin.html", values, status=401)
    return PageResult(redirect=ctx.url(""), sign_in=secret)


def sign_out(ctx: PageContext) -> PageResult:
    return PageResult(redirect=ctx.url("signin"), sign_out=True)
