"""The clinician console at /ui/: server-rendered pages over the same handlers as the JSON API.

No JavaScript; every form posts with a CSRF token; URLs carry ids only, never note text or questions.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from medical_notes.api.context import current_request
from medical_notes.api.errors import error_response
from medical_notes.api.handlers import Handlers
from medical_notes.api.models import (
    MAX_DOCUMENT_ID,
    DocumentCreate,
    DocumentUpdate,
    ExtractRequest,
    QueryNoteRequest,
    QuestionRequest,
    SummarizeRequest,
    ToFhirRequest,
)
from medical_notes.config import Settings
from medical_notes.ui.sessions import Session, SessionStore

SESSION_COOKIE = "mn_session"
LOGIN_CSRF_COOKIE = "mn_login_csrf"
COOKIE_PATH = "/ui"
NOTES_PAGE_SIZE = 200
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
CITATION = re.compile(r"\[(\d{1,2})\]")


def cite_links(answer: str) -> Markup:
    """The answer, escaped, with each [n] made a link to the quoted passage n on the same page."""
    return Markup(CITATION.sub(r'<a href="#source-\1">[\1]</a>', str(escape(answer))))  # noqa: S704


TEMPLATES.env.filters["cite_links"] = cite_links

PageHandler = Callable[[Request, Session], Awaitable[Response]]


class SignInRequired(Exception):
    """No live session: the browser goes to the sign-in page."""


def _field_messages(error: RequestValidationError | ValidationError) -> list[str]:
    return [f"{'.'.join(str(part) for part in item['loc'][-1:])}: {item['msg']}" for item in error.errors()]


def build_ui_router(handlers: Handlers, sessions: SessionStore, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)

    def secure_cookies(request: Request) -> bool:
        if settings.ui_cookie_secure == "auto":
            return request.url.scheme == "https"
        return settings.ui_cookie_secure == "true"

    def set_cookie(response: Response, request: Request, name: str, value: str) -> None:
        response.set_cookie(
            name, value, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure_cookies(request)
        )

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)

    def error_page(request: Request, session: Session | None, error: Exception) -> Response:
        response = error_response(error)
        if response is None:
            raise error
        if isinstance(error, RequestValidationError):
            messages = _field_messages(error)
        else:
            detail = getattr(error, "detail", None) or getattr(error, "reason", None) or str(error)
            messages = [str(detail)]
        return render(
            request, "error.html", response.status_code, session=session, status=response.status_code,
            messages=messages,
        )  # fmt: skip

    async def current_session(request: Request) -> Session:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            raise SignInRequired
        session = await sessions.resume(session_id)
        if session is None:
            raise SignInRequired
        context = current_request.get()
        if context is not None:
            context.client = session.client.name  # audited like the API's requests
        return session

    async def checked_form(request: Request, session: Session) -> FormData:
        form = await request.form()
        presented = str(form.get("csrf_token", ""))
        if not hmac.compare_digest(presented.encode(), session.csrf_token.encode()):
            raise HTTPException(403, "the form expired or did not come from this site: reload the page")
        return form

    def page(write: bool = False) -> Callable[[PageHandler], Callable[[Request], Awaitable[Response]]]:
        """A signed-in page; write=True also needs the write scope. Errors become an error page."""

        def decorate(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                session: Session | None = None
                try:
                    session = await current_session(request)
                    if write and not session.can_write:
                        raise HTTPException(403, f"the {session.client.scope} scope cannot change notes")
                    return await handler(request, session)
                except SignInRequired:
                    return RedirectResponse("/ui/login", status_code=303)
                except Exception as error:
                    return error_page(request, session, error)

            return endpoint

        return decorate

    async def coded_items(document_id: int) -> dict[str, Any] | None:
        """The note's structured extraction, or None when the terminology tables are unavailable."""
        try:
            return await handlers.extract_structured(ExtractRequest(document_id=document_id))
        except HTTPException as error:
            if error.status_code != 503:
                raise
            return None

    def document_id_from(request: Request) -> int:
        raw = request.path_params["document_id"]
        if not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_DOCUMENT_ID:
            raise HTTPException(404, "no such note")
        return int(raw)

    @router.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/notes", status_code=303)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        csrf = secrets.token_urlsafe(32)
        response = render(request, "login.html", csrf_token=csrf, session=None, failed=False)
        set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        presented = str(form.get("csrf_token", ""))
        token = str(form.get("token", "")).strip()
        opened = None
        if expected and hmac.compare_digest(presented.encode(), expected.encode()) and token:
            try:
                opened = await sessions.open(token)
            except Exception as error:
                return error_page(request, None, error)
        if opened is None:
            csrf = secrets.token_urlsafe(32)
            response = render(request, "login.html", 401, csrf_token=csrf, session=None, failed=True)
            set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf)
            return response
        session_id, _ = opened
        response = RedirectResponse("/ui/notes", status_code=303)
        set_cookie(response, request, SESSION_COOKIE, session_id)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            try:
                session = await current_session(request)
                await checked_form(request, session)
                await sessions.close(session_id)
            except SignInRequired:
                pass
            except Exception as error:
                return error_page(request, None, error)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    @router.get("/notes")
    @page()
    async def notes(request: Request, session: Session) -> Response:
        rows = await handlers.list_note_titles("", NOTES_PAGE_SIZE)
        return render(request, "notes.html", session=session, notes=rows, search="")

    @router.post("/notes")
    @page()
    async def search_notes(request: Request, session: Session) -> Response:
        # A POST, so that search words (which may name a patient) stay out of URLs and browser history.
        form = await checked_form(request, session)
        search = str(form.get("title", "")).strip()[:255]
        rows = await handlers.list_note_titles(search, NOTES_PAGE_SIZE)
        return render(request, "notes.html", session=session, notes=rows, search=search)

    @router.get("/notes/new")
    @page(write=True)
    async def new_note_form(request: Request, session: Session) -> Response:
        return render(request, "note_form.html", session=session, note=None, messages=[])

    @router.post("/notes/new")
    @page(write=True)
    async def create_note(request: Request, session: Session) -> Response:
        form = await checked_form(request, session)
        values = {key: str(form.get(key, "")) for key in ("title", "content", "doc_type")}
        try:
            body = DocumentCreate(**values)
        except ValidationError as error:
            return render(
                request, "note_form.html", 422, session=session, note=values, messages=_field_messages(error)
            )
        created = await handlers.create_document(body)
        return RedirectResponse(f"/ui/notes/{created['id']}", status_code=303)

    @router.get("/notes/{document_id}")
    @page()
    async def note(request: Request, session: Session) -> Response:
        document_id = document_id_from(request)
        # One audit row per request, the last action marked: this page is a read of the note.
        summary = await handlers.summarize_note(SummarizeRequest(document_id=document_id))
        coded = await coded_items(document_id)
        document = await handlers.get_document(document_id)
        return render(
            request, "note.html", session=session, note=document, summary=summary, coded=coded, answer=None
        )

    @router.get("/notes/{document_id}/fhir")
    @page()
    async def note_as_fhir(request: Request, session: Session) -> Response:
        document_id = document_id_from(request)
        result = await handlers.to_fhir(ToFhirRequest(document_id=document_id))
        return JSONResponse(
            result["bundle"],
            media_type="application/fhir+json",
            headers={"Content-Disposition": f'attachment; filename="note-{document_id}-fhir.json"'},
        )

    @router.post("/notes/{document_id}/ask")
    @page()
    async def ask_note(request: Request, session: Session) -> Response:
        document_id = document_id_from(request)
        form = await checked_form(request, session)
        question = str(form.get("question", "")).strip()
        try:
            body = QueryNoteRequest(document_id=document_id, query=question)
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
        document = await handlers.get_document(document_id)
        summary = await handlers.summarize_note(SummarizeRequest(document_id=document_id))
        coded = await coded_items(document_id)
        answer = await handlers.query_note(body)  # last: the request is audited as a question
        return render(
            request, "note.html", session=session, note=document, summary=summary, coded=coded,
            answer={"question": question, **answer},
        )  # fmt: skip

    @router.get("/notes/{document_id}/edit")
    @page(write=True)
    async def edit_note_form(request: Request, session: Session) -> Response:
        document = await handlers.get_document(document_id_from(request))
        return render(request, "note_form.html", session=session, note=document, messages=[])

    @router.post("/notes/{document_id}/edit")
    @page(write=True)
    async def edit_note(request: Request, session: Session) -> Response:
        document_id = document_id_from(request)
        form = await checked_form(request, session)
        values = {key: str(form.get(key, "")) for key in ("title", "content", "doc_type")}
        try:
            body = DocumentUpdate(**values)
        except ValidationError as error:
            note = {"id": document_id, **values}
            return render(
                request, "note_form.html", 422, session=session, note=note, messages=_field_messages(error)
            )
        await handlers.update_document(document_id, body)
        return RedirectResponse(f"/ui/notes/{document_id}", status_code=303)

    @router.post("/notes/{document_id}/delete")
    @page(write=True)
    async def delete_note(request: Request, session: Session) -> Response:
        document_id = document_id_from(request)
        await checked_form(request, session)
        await handlers.delete_document(document_id)
        return RedirectResponse("/ui/notes", status_code=303)

    @router.get("/guidelines")
    @page()
    async def guidelines_form(request: Request, session: Session) -> Response:
        return render(request, "guidelines.html", session=session, result=None, question="")

    @router.post("/guidelines")
    @page()
    async def ask_guidelines(request: Request, session: Session) -> Response:
        form = await checked_form(request, session)
        question = str(form.get("question", "")).strip()
        try:
            body = QuestionRequest(question=question)
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
        result = await handlers.answer_question(body)
        return render(request, "guidelines.html", session=session, result=result, question=question)

    return router
