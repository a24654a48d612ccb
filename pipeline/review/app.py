"""The review web app: a queue, a document view with boxes on the page, corrections as data.

Server-rendered pages (Starlette + Jinja2, a few lines of plain JavaScript for the keyboard),
so there is nothing to build.  What it will serve is fixed by the output root: a document is
named by its content hash, a page by its number; no request names a path.  Every write needs
the CSRF token of the form it came from, and where a token is set (always, off loopback),
every request needs it too: once as ``?token=`` (it becomes a cookie), then the cookie.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from pipeline.review import corrections
from pipeline.review.fields import form_fields, generic, shown
from pipeline.review.picture import PictureError, page_sizes, picture
from pipeline.review.queue import REASONS, build_queue, counts, reasons_of
from pipeline.review.submit import review_rows
from pipeline.review.view import OutputView, as_dict, shown_record

HERE = Path(__file__).parent
SHA = re.compile(r"[0-9a-f]{64}")
COOKIE = "extract_review_token"
HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
                                      "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"}
ASSETS = {"review.css": "text/css", "review.js": "text/javascript"}


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class ReviewSite:
    """The routes of one output root: each a method, sharing the output's view, the form token and
    the templates."""

    def __init__(self, output: Path, reviewer: str, schema: str | None) -> None:
        self.output, self.reviewer = output, reviewer
        self.view = OutputView(output, schema)
        self.csrf = secrets.token_urlsafe(32)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["shown"] = shown

    def page(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return self.templates.TemplateResponse(
            request, name, {"output": str(self.output), "reviewer": self.reviewer, **context},
            status_code=status, headers=HEADERS)

    async def queue(self, request: Request) -> Response:
        reason = request.query_params.get("reason") or None
        run_date = request.query_params.get("run_date") or None
        documents = self.view.documents()
        reviewed = self.view.reviewed()
        items = build_queue(documents, reviewed, reason, run_date)
        dates = sorted({str(d.get("run_date")) for d in documents if d.get("run_date")}, reverse=True)
        return self.page(request, "queue.html", {"items": items, "counts": counts(documents, reviewed),
                                                 "reasons": REASONS, "reason": reason, "run_date": run_date,
                                                 "dates": dates})

    def next_key(self, after: str) -> str | None:
        """The document after ``after`` in the queue (the first, where ``after`` is not in it)."""
        keys = [i.key for i in build_queue(self.view.documents(), self.view.reviewed()) if i.key]
        if after in keys:
            rest = keys[keys.index(after) + 1:]
            return rest[0] if rest else None
        return keys[0] if keys else None

    def found(self, request: Request) -> tuple[str, Any]:
        """The document the URL names (its key and view), or a 404 for any route that names one."""
        key = request.path_params["key"]
        doc = self.view.document(key) if SHA.fullmatch(key) else None
        if doc is None:
            raise HTTPException(404, "no such document in this output", headers=HEADERS)
        return key, doc

    async def document(self, request: Request) -> Response:
        key, doc = self.found(request)
        return self.document_page(request, key, doc, {}, {})

    def document_page(self, request: Request, key: str, doc: Any, problems: dict[str, str],
                      typed: dict[str, str], status: int = 200) -> Response:
        row = doc.row
        fields = form_fields(shown_record(self.view, doc), self.view.schema)
        sources = {path: src for path, src in as_dict(row.get("field_sources")).items() if src}
        try:
            sizes, problem = page_sizes(row["source_path"], key), None
        except PictureError as exc:
            sizes, problem = [], str(exc)
        context = {"key": key, "row": row, "pages": _pages(sizes, sources, doc.doubtful), "picture_problem": problem,
                   "header": [f for f in fields if f.row is None], "tables": _tables(fields),
                   "doubtful": doc.doubtful, "alternatives": doc.alternatives,
                   "sources": sources, "rules": doc.rules, "doc_pages": doc.pages, "problems": problems,
                   "typed": typed, "csrf": self.csrf, "review_id": corrections.new_review_id(), "reviews": doc.reviews,
                   "next_key": self.next_key(key), "reasons": reasons_of(row)}
        return self.page(request, "document.html", context, status)

    async def submit(self, request: Request) -> Response:
        key, doc = self.found(request)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        if not hmac.compare_digest(form.get("csrf", ""), self.csrf):
            return PlainTextResponse("the form's CSRF token is missing or stale: reload the page", status_code=403,
                                     headers=HEADERS)
        review_id = form.get("review_id", "")
        if not re.fullmatch(r"[0-9a-f]{32}", review_id):
            return PlainTextResponse("the form has no review id: reload the page", status_code=400, headers=HEADERS)
        rows, problems = review_rows(doc.row, shown_record(self.view, doc), self.view.compiled, form, review_id,
                                     self.reviewer)
        if problems:
            typed = {k.removeprefix("f:"): v for k, v in form.items() if k.startswith("f:")}
            return self.document_page(request, key, doc, problems, typed, status=422)
        corrections.append(self.view.root, rows)
        target = self.next_key(key)
        return RedirectResponse(f"/doc/{target}" if target else "/?done=1", status_code=303, headers=HEADERS)

    async def page_png(self, request: Request) -> Response:
        key, doc = self.found(request)
        try:
            pic = picture(doc.row["source_path"], key, request.path_params["number"])
        except PictureError as exc:
            return PlainTextResponse(str(exc), status_code=410, headers=HEADERS)
        return Response(pic.png, media_type="image/png", headers={**HEADERS, "Cache-Control": "private, max-age=300"})

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return PlainTextResponse("not found", status_code=404, headers=HEADERS)
        return Response((HERE / "static" / name).read_bytes(), media_type=ASSETS[name], headers=HEADERS)


def _pages(sizes: list[tuple[float, float]], sources: dict[str, Any], doubtful: Any) -> list[dict[str, Any]]:
    """Each page's size and the boxes of the values found on it."""
    return [{"number": number, "width": width, "height": height,
             "boxes": [{"path": p, "bbox": s["bbox"], "match": s["match"], "doubtful": p in doubtful,
                        "text": s.get("text")}
                       for p, s in sources.items() if s.get("bbox") and s.get("page") == number]}
            for number, (width, height) in enumerate(sizes, start=1)]


def _tables(fields: list[Any]) -> dict[str, dict[str, Any]]:
    """The fields of rows as tables: per array, its columns and its rows' fields by column."""
    tables: dict[str, dict[str, Any]] = {}
    for f in fields:
        if f.row is not None:
            name = generic(f.path).rsplit(".", 1)
            table = tables.setdefault(name[0], {"columns": [], "rows": {}})
            column = name[1] if len(name) > 1 else "value"
            if column not in table["columns"]:
                table["columns"].append(column)
            table["rows"].setdefault(f.row, {})[column] = f
    return tables


def create_app(output: Path, reviewer: str, token: str | None = None, schema: str | None = None,
               hosts: tuple[str, ...] = ()) -> Starlette:
    """The app for one output root; ``token``: required of every request when set.

    Only requests naming the server by a loopback name or one of ``hosts`` are answered: otherwise
    a web page the reviewer visits could rebind its own domain to 127.0.0.1 and read the invoices
    (DNS rebinding; a GET needs no CSRF token)."""
    site = ReviewSite(output, reviewer, schema)
    routes = [
        Route("/", site.queue),
        Route("/doc/{key}", site.document, methods=["GET"]),
        Route("/doc/{key}", site.submit, methods=["POST"]),
        Route("/doc/{key}/page/{number:int}.png", site.page_png),
        Route("/static/{name}", site.asset),
    ]

    async def guard(request: Request, call_next: Any) -> Response:
        if token is None:
            return await call_next(request)  # type: ignore[no-any-return]
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given, token):
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        if hmac.compare_digest(request.cookies.get(COOKIE, ""), token):
            return await call_next(request)  # type: ignore[no-any-return]
        return PlainTextResponse("this review server needs its token: open the URL it printed", status_code=401,
                                 headers=HEADERS)

    allowed = list(dict.fromkeys([*LOOPBACK_NAMES, *hosts]))
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed),
                                               Middleware(BaseHTTPMiddleware, dispatch=guard)])
    app.state.note = site.view.note
    return app
