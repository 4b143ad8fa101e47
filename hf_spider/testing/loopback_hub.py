"""A small Hugging Face Hub served on 127.0.0.1, for tests and benchmarks driving the real ``huggingface_hub`` client.

It answers what the 2.4 client calls (see the project's ``shared/HUB_CLIENT_NOTES.md``): model listing with ``Link``
pagination and ``expand``, model info by revision, ``HEAD``/``GET`` (with ``Range``) on ``resolve``, ``tree``,
``paths-info``, ``whoami-v2``, repo creation, ``validate-yaml``, ``preupload`` and ndjson ``commit``, and collections
with their items.
Dataset repos (``repo_type="dataset"``: ``/api/datasets/...``, ``/datasets/<id>/resolve/...``) take the same reads and
commits, so ``upload_folder`` / ``snapshot_download`` of a dataset work too; listings list models only.
Repos live in memory; every commit stays readable by its sha. Faults are injected per request by :class:`FaultPlan`
(429 with ``Retry-After``, 500, 503, a stalled answer, a write applied but answered late, a truncated body), on reads
and writes alike, and every request is logged so tests can count what a client fetched.

Hostile content is served as the Hub would pass it on: any string a repo holds (lone surrogates and bidi overrides in
ids, labels and cards) goes out as JSON ``\\uXXXX`` escapes, file names may hold ``..``, a repo can be gated, or
deleted while the listing still shows it (:meth:`LoopbackHub.delete_repo` with ``keep_listed``). The card metadata
the listing sends is parsed within limits, as the Hub's parser limits aliases, so a "billion laughs" card is listed
without ``cardData`` rather than expanded (the crawler still reads its README).

Example:
    >>> with LoopbackHub() as hub:  # doctest: +SKIP
    ...     hub.add_repo("acme/tiny", {"config.json": '{"model_type": "bert"}'})
    ...     HfApi(endpoint=hub.endpoint).model_info("acme/tiny").sha
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSONResponse
from starlette.responses import Response
from starlette.routing import Route

from ..hub.local import parameters_from_safetensors_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_T = TypeVar("_T")

#: Fault kinds :class:`FaultPlan` can inject.
#: ``"404"`` answers ``RepoNotFound``, as for a repo deleted after it was listed. ``"stall"`` holds the request back
#: before it is handled (a client that gives up first leaves a write unapplied); ``"stall_after"`` handles it (a write
#: is applied) and then holds the answer back; ``"truncate"`` handles it and cuts the answer's body in half.
FAULT_KINDS = ("404", "429", "500", "503", "stall", "stall_after", "truncate")
DEFAULT_USER = "tester"
#: The write token of :data:`DEFAULT_USER` (a fake value: the loopback Hub is never reachable from outside).
DEFAULT_TOKEN = "hf_loopbackWriteToken0000000000000000"
_BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)


def git_blob_oid(data: bytes) -> str:
    """The git blob sha1 of ``data``: what the Hub sends as a regular file's ``oid`` and ``ETag``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --------------------------------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Commit:
    """One commit: the full file set after it (so any old sha stays readable)."""

    oid: str
    files: dict[str, bytes]
    summary: str
    date: datetime
    derived: dict[str, Any] = field(default_factory=dict)  # values computed from the files, computed once

    def cached(self, name: str, compute: Callable[[Commit], Any]) -> Any:
        if name not in self.derived:
            self.derived[name] = compute(self)
        return self.derived[name]


#: Repo types the loopback Hub serves, and the URL prefix of each (``/datasets/<id>/resolve/...``).
REPO_TYPE_PREFIXES = {"model": "", "dataset": "datasets/"}


def repo_key(repo_id: str, repo_type: str = "model") -> str:
    """Where a repo is kept in :attr:`LoopbackHub.repos`: its id, prefixed as in its URLs (``datasets/<id>``)."""
    return REPO_TYPE_PREFIXES[repo_type] + repo_id


@dataclass
class HubRepo:
    """A model (or dataset) repo and the Hub metadata that does not come from its files."""

    repo_id: str
    commits: list[Commit]
    repo_type: str = "model"
    pipeline_tag: str | None = None
    library_name: str | None = None
    tags: tuple[str, ...] = ()
    downloads: int = 0
    likes: int = 0
    gated: bool | str = False
    private: bool = False
    created_at: datetime = _BASE_TIME
    granted: set[str] = field(default_factory=set)
    deleted: bool = False  # gone, but the listing still shows it (every other endpoint answers 404)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def commit_at(self, revision: str) -> Commit | None:
        """The commit a revision names: ``main``, a full sha or a unique sha prefix of 7+ characters."""
        if revision in ("main", "HEAD"):
            return self.head
        for commit in reversed(self.commits):
            if commit.oid == revision or (len(revision) >= 7 and commit.oid.startswith(revision)):
                return commit
        return None


@dataclass
class FaultRule:
    """Inject one of ``kinds`` into requests whose ``"METHOD /path?query"`` matches ``match``.

    Args:
        kinds: fault kinds (:data:`FAULT_KINDS`); one is drawn per hit.
        match: regular expression searched in ``"METHOD /path?query"``; empty matches every request.
        probability: chance that a matching request is hit.
        times: how many requests the rule may hit in all, ``None`` for no limit.
        retry_after: ``Retry-After`` seconds sent with a 429.
        stall_s: how long a ``stall`` or ``stall_after`` holds the answer back.
    """

    kinds: tuple[str, ...]
    match: str = ""
    probability: float = 1.0
    times: int | None = None
    retry_after: int = 0
    stall_s: float = 2.0
    hits: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; use some of {FAULT_KINDS}")
        self._pattern = re.compile(self.match)


class FaultPlan:
    """The faults a :class:`LoopbackHub` injects: rules tried in order, drawn from one seeded RNG."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(
        self, *kinds: str, match: str = "", probability: float = 1.0, times: int | None = None, **kw: Any
    ) -> FaultRule:
        """Add a rule (see :class:`FaultRule`) and return it; ``rule.hits`` counts the requests it hit."""
        rule = FaultRule(kinds=kinds, match=match, probability=probability, times=times, **kw)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def reseed(self, seed: int) -> None:
        """Restart the draws from ``seed``, so a test sees the same faults whatever ran before it."""
        with self._lock:
            self._rng.seed(seed)

    def pick(self, target: str) -> tuple[str, FaultRule] | None:
        """The fault to inject into the request ``target`` (``"METHOD /path?query"``), if any."""
        with self._lock:
            for rule in self._rules:
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                if not rule._pattern.search(target) or self._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                return self._rng.choice(rule.kinds), rule
        return None


@dataclass(frozen=True)
class RequestRecord:
    """One request the Hub answered: what was asked, the status sent and the fault injected (if any)."""

    method: str
    path: str
    query: str
    status: int
    fault: str | None


# --------------------------------------------------------------------------------------------------------------------
# The Hub
# --------------------------------------------------------------------------------------------------------------------


class LoopbackHub:
    """A Hub on ``127.0.0.1`` for the real ``huggingface_hub`` client; start it, fill it, point clients at it.

    Args:
        page_size: models per listing page (the ``Link`` header pages through the rest).
        seed: seed of the fault plan.
        users: tokens and the user each belongs to; :data:`DEFAULT_TOKEN` belongs to :data:`DEFAULT_USER`.
        orgs: organisations each user may write to.
    """

    def __init__(
        self,
        *,
        page_size: int = 100,
        seed: int = 0,
        users: dict[str, str] | None = None,
        orgs: dict[str, set[str]] | None = None,
    ) -> None:
        self.page_size = page_size
        self.users = {DEFAULT_TOKEN: DEFAULT_USER} if users is None else dict(users)
        self.orgs = {} if orgs is None else dict(orgs)
        self.seed = seed
        self.faults = FaultPlan(seed)
        self.repos: dict[str, HubRepo] = {}
        self.collections: dict[str, dict[str, Any]] = {}  # keyed by the 24-hex id at the end of the slug
        self._requests: list[RequestRecord] = []
        #: Bumped whenever the log is emptied: a request logs only into the epoch it arrived in, so an answer a
        #: stalled request of an earlier test sends late never shows up in the next test's log.
        self._epoch = 0
        self._lock = threading.RLock()
        self._counter = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""
        self.app = _FaultMiddleware(self, _build_app(self))

    # ---- lifecycle -------------------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> LoopbackHub:
        """Serve on a free port of 127.0.0.1 from a daemon thread; sets :attr:`endpoint`."""
        import uvicorn

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="loopback-hub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the loopback Hub did not start; see the uvicorn log above")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def reset(self, *, page_size: int = 100) -> None:
        """Empty the Hub (repos, collections, faults, request log) and restart the fault draws from :attr:`seed`,
        so one server can serve many tests and each sees the same faults whatever ran before it."""
        with self._lock:
            self.repos.clear()
            self.collections.clear()
            self._requests.clear()
            self._epoch += 1
            self.page_size = page_size
        self.faults.clear()
        self.faults.reseed(self.seed)

    @property
    def token(self) -> str:
        """The write token of :data:`DEFAULT_USER`."""
        return DEFAULT_TOKEN

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- filling the store -----------------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | str] | None = None,
        *,
        pipeline_tag: str | None = None,
        library_name: str | None = None,
        tags: Iterable[str] = (),
        downloads: int = 0,
        likes: int = 0,
        gated: bool | str = False,
        private: bool = False,
        created_at: datetime | None = None,
        repo_type: str = "model",
    ) -> str:
        """Create a model (or ``repo_type="dataset"``) repo whose first commit holds ``files`` (plus
        ``.gitattributes``); returns its sha.

        ``pipeline_tag`` and ``library_name`` default to the README's metadata, as on the Hub. ``gated`` is ``False``,
        ``"auto"`` or ``"manual"`` (``True`` means ``"auto"``).
        """
        key = repo_key(repo_id, repo_type)
        with self._lock:
            if key in self.repos:
                raise ValueError(f"repo '{key}' already exists on the loopback Hub; use update_repo()")
            created = created_at or self._tick()
            content = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}
            content.update(_as_bytes(files or {}))
            self.repos[key] = HubRepo(
                repo_id=repo_id,
                commits=[self._new_commit(key, content, "initial commit", parent=None, date=created)],
                repo_type=repo_type,
                pipeline_tag=pipeline_tag,
                library_name=library_name,
                tags=tuple(tags),
                downloads=downloads,
                likes=likes,
                gated="auto" if gated is True else gated,
                private=private,
                created_at=created,
            )
            return self.repos[key].head.oid

    def update_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | str],
        *,
        delete: Iterable[str] = (),
        summary: str = "update",
        repo_type: str = "model",
    ) -> str:
        """Commit ``files`` (added or replaced) and remove ``delete``; returns the new sha."""
        with self._lock:
            repo = self.repos[repo_key(repo_id, repo_type)]
            content = {k: v for k, v in repo.head.files.items() if k not in set(delete)}
            content.update(_as_bytes(files))
            return self._replace_files(repo, content, summary=summary)

    def _replace_files(self, repo: HubRepo, files: dict[str, bytes], *, summary: str) -> str:
        """Commit exactly ``files`` as the new head of ``repo``; returns the new sha."""
        with self._lock:
            key = repo_key(repo.repo_id, repo.repo_type)
            repo.commits.append(self._new_commit(key, files, summary, parent=repo.head.oid))
            return repo.head.oid

    def delete_repo(self, repo_id: str, *, repo_type: str = "model", keep_listed: bool = False) -> None:
        """Remove a repo; with ``keep_listed`` the listing still shows it, as a listing cached before the deletion."""
        with self._lock:
            if keep_listed:
                self.repos[repo_key(repo_id, repo_type)].deleted = True
            else:
                del self.repos[repo_key(repo_id, repo_type)]

    # ---- request log -----------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Empty the request log; requests still in flight are not logged when they end."""
        with self._lock:
            self._requests.clear()
            self._epoch += 1

    def count(self, pattern: str = "", *, method: str | None = None) -> int:
        """How many logged requests have a path matching ``pattern`` (a regular expression) and ``method``."""
        regex = re.compile(pattern)
        return sum(1 for r in self.requests if (method is None or r.method == method) and regex.search(r.path))

    def _log(self, record: RequestRecord, epoch: int) -> None:
        """Log ``record`` if the log was not emptied since its request arrived (``epoch``)."""
        with self._lock:
            if epoch == self._epoch:
                self._requests.append(record)

    # ---- helpers used by the handlers ------------------------------------------------------------------------------

    def _tick(self) -> datetime:
        """A strictly increasing timestamp, so sorting by date is deterministic."""
        self._counter += 1
        return datetime.fromtimestamp(_BASE_TIME.timestamp() + self._counter, tz=timezone.utc)

    def _new_commit(
        self, repo_id: str, files: dict[str, bytes], summary: str, *, parent: str | None, date: datetime | None = None
    ) -> Commit:
        tree = "".join(f"{path}\0{git_blob_oid(data)}\n" for path, data in sorted(files.items()))
        key = f"{repo_id}\n{parent}\n{summary}\n{self._counter}\n{tree}"
        oid = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()  # hostile ids may hold lone surrogates
        return Commit(oid=oid, files=files, summary=summary, date=date or self._tick())

    def user_of(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return self.users.get(auth[7:]) if auth.lower().startswith("bearer ") else None

    def can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (namespace == user or user in self.orgs.get(namespace, set()))

    def visible(self, repo: HubRepo, user: str | None) -> bool:
        return not repo.private or self.can_write(user, repo.repo_id.split("/")[0]) or user in repo.granted

    def lookup(self, repo_id: str, request: Request, repo_type: str = "model") -> HubRepo | Response:
        """The repo, or the 404 ``RepoNotFound`` answer the Hub gives for a missing or hidden one."""
        repo = self.repos.get(repo_key(repo_id, repo_type))
        if repo is None or repo.deleted or not self.visible(repo, self.user_of(request)):
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        return repo


# --------------------------------------------------------------------------------------------------------------------
# Fault injection and logging (pure ASGI, so a truncated body really is cut mid-message)
# --------------------------------------------------------------------------------------------------------------------


class _FaultMiddleware:
    def __init__(self, hub: LoopbackHub, app: Starlette) -> None:
        self.hub = hub
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode()
        picked = self.hub.faults.pick(f"{method} {path}?{query}")
        kind = picked[0] if picked else None
        epoch = self.hub._epoch
        logged = False

        async def logged_send(message: Message) -> None:
            nonlocal logged
            if message["type"] == "http.response.start" and not logged:
                # logged before the answer leaves, so a client that got it always finds it in the log
                self.hub._log(RequestRecord(method, path, query, message["status"], kind), epoch)
                logged = True
            await send(message)

        try:
            if picked is not None and kind == "404":
                await _error(404, "RepoNotFound", "Repository not found (injected)")(scope, receive, logged_send)
                return
            if picked is not None and kind in ("429", "500", "503"):
                rule = picked[1]
                headers = {"Retry-After": str(rule.retry_after)} if kind == "429" else {}
                await JSONResponse({"error": f"injected {kind}"}, status_code=int(kind), headers=headers)(
                    scope, receive, logged_send
                )
                return
            if picked is not None and kind == "stall":
                await asyncio.sleep(picked[1].stall_s)
            if kind == "truncate" and method != "HEAD":
                await self.app(scope, receive, _truncating(logged_send))
                return
            if picked is not None and kind == "stall_after":
                await self.app(scope, receive, _late(logged_send, picked[1].stall_s))
                return
            await self.app(scope, receive, logged_send)
        finally:
            if not logged:  # no answer was started (the client went away during a stall, or the app failed)
                self.hub._log(RequestRecord(method, path, query, 0, kind), epoch)


def _truncating(send: Send) -> Send:
    """Send only the first half of the body, then end the message: the client sees the connection cut short."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            message = {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": False}
        await send(message)

    return wrapped


def _late(send: Send, seconds: float) -> Send:
    """Hold the answer back ``seconds`` after the handler finished (a write is applied; its answer comes late)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(seconds)
        await send(message)

    return wrapped


# --------------------------------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------------------------------


class JSONResponse(_StarletteJSONResponse):
    """JSON with non-ASCII characters escaped, as the Hub sends it: a lone surrogate in a repo's content is valid JSON
    (``"\\ud83d"``) but cannot be encoded as UTF-8, which Starlette's default rendering needs."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _build_app(hub: LoopbackHub) -> Starlette:
    def bound(handler: Callable[[LoopbackHub, Request], Awaitable[Response]]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await handler(hub, request)

        return endpoint

    routes = [
        Route("/api/whoami-v2", bound(_whoami), methods=["GET"]),
        Route("/api/models", bound(_list_models), methods=["GET"]),
        Route("/api/repos/create", bound(_create_repo), methods=["POST"]),
        Route("/api/validate-yaml", bound(_validate_yaml), methods=["POST"]),
        Route("/api/models/{rest:path}", bound(_models_api), methods=["GET", "POST"]),
        Route("/api/datasets/{rest:path}", bound(_datasets_api), methods=["GET", "POST"]),
        Route("/api/collections", bound(_collections_root), methods=["GET", "POST"]),
        Route("/api/collections/{rest:path}", bound(_collection_api), methods=["GET", "POST", "PATCH", "DELETE"]),
        Route("/{rest:path}", bound(_resolve), methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)


def _error(status: int, code: str | None, message: str, **extra_headers: str) -> JSONResponse:
    # A header must be ASCII: an id holding hostile characters is quoted with escapes, as in the body.
    headers = {"X-Error-Message": message.encode("ascii", "backslashreplace").decode(), **extra_headers}
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _whoami(hub: LoopbackHub, request: Request) -> Response:
    user = hub.user_of(request)
    if user is None:
        return _error(401, None, "Invalid credentials in Authorization header")
    orgs = [{"name": org, "type": "org"} for org, members in hub.orgs.items() if user in members]
    return JSONResponse(
        {"type": "user", "name": user, "fullname": user, "orgs": orgs, "auth": {"accessToken": {"role": "write"}}}
    )


# ---- listing and model info -----------------------------------------------------------------------------------------

_SORT_KEYS: dict[str, Callable[[HubRepo], Any]] = {
    "downloads": lambda r: r.downloads,
    "likes": lambda r: r.likes,
    "trendingScore": lambda r: r.likes + r.downloads / 100,
    "lastModified": lambda r: r.head.date,
    "createdAt": lambda r: r.created_at,
}
_DEFAULT_LIST_FIELDS = ("likes", "downloads", "tags", "pipeline_tag", "library_name", "createdAt", "private")


async def _list_models(hub: LoopbackHub, request: Request) -> Response:
    q = request.query_params
    user = hub.user_of(request)
    with hub._lock:
        repos = [r for r in hub.repos.values() if r.repo_type == "model" and hub.visible(r, user)]
    if author := q.get("author"):
        repos = [r for r in repos if r.repo_id.split("/")[0] == author]
    if search := q.get("search"):
        repos = [r for r in repos if search.lower() in r.repo_id.lower()]
    if pipeline_tag := q.get("pipeline_tag"):
        repos = [r for r in repos if _pipeline_tag(r, r.head) == pipeline_tag]
    for wanted in q.getlist("filter"):
        repos = [r for r in repos if wanted in _tags(r, r.head) or wanted == _library(r, r.head)]
    if (sort := q.get("sort")) in _SORT_KEYS:
        repos.sort(key=lambda r: (_SORT_KEYS[sort](r), r.repo_id), reverse=True)
    else:
        repos.sort(key=lambda r: r.repo_id)
    page, headers = _page(hub, request, repos, "/api/models")

    expand = q.getlist("expand") + q.getlist("expand[]")
    if expand:
        wanted_fields: set[str] = set(expand)
    else:
        wanted_fields = set(_DEFAULT_LIST_FIELDS)
        if q.get("full") in ("True", "true", "1"):
            wanted_fields |= {"siblings", "lastModified", "sha", "gated", "author"}
        if q.get("cardData") in ("True", "true", "1"):
            wanted_fields.add("cardData")
        if q.get("config") in ("True", "true", "1"):
            wanted_fields.add("config")
    body = [_model_json(r, r.head, wanted_fields) for r in page]
    return JSONResponse(body, headers=headers)


async def _datasets_api(hub: LoopbackHub, request: Request) -> Response:
    return await _models_api(hub, request, repo_type="dataset")


async def _models_api(hub: LoopbackHub, request: Request, repo_type: str = "model") -> Response:
    rest = request.path_params["rest"]
    for action in ("revision", "tree", "paths-info", "preupload", "commit"):
        repo_id, sep, tail = rest.partition(f"/{action}/")
        if sep:
            break
    else:
        repo_id, action, tail = rest, "info", "main"
    found = hub.lookup(repo_id, request, repo_type)
    if isinstance(found, Response):
        return found
    if request.method == "POST" and action == "preupload":
        return await _preupload(found, request)
    if request.method == "POST" and action == "commit":
        return await _commit(hub, found, request, tail)
    if request.method == "POST" and action == "paths-info":
        return await _paths_info(found, request, tail)
    if request.method != "GET" or action not in ("info", "revision", "tree"):
        return _error(405, None, f"{request.method} not supported on {request.url.path}")
    revision, _, path_in_repo = tail.partition("/") if action == "tree" else (tail, "", "")
    commit = found.commit_at(revision)
    if commit is None:
        return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    if action == "tree":
        return _tree(commit, path_in_repo, recursive=request.query_params.get("recursive") in ("True", "true", "1"))
    fields = set(request.query_params.getlist("expand") + request.query_params.getlist("expand[]"))
    if not fields:
        fields = {*_DEFAULT_LIST_FIELDS, "sha", "siblings", "lastModified", "gated", "author", "cardData", "config"}
        fields |= {"safetensors", "disabled"}
    blobs = request.query_params.get("blobs") in ("True", "true", "1")
    return JSONResponse(_model_json(found, commit, fields, blobs=blobs))


def _model_json(repo: HubRepo, commit: Commit, fields: set[str], *, blobs: bool = False) -> dict[str, Any]:
    """The model JSON the Hub sends: ``id`` and ``_id`` always, then the requested fields that have a value."""
    card = _card_data(commit)
    config = _json_file(commit, "config.json")
    values: dict[str, Callable[[], Any]] = {
        "author": lambda: repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
        "sha": lambda: commit.oid,
        "private": lambda: repo.private,
        "gated": lambda: repo.gated,
        "disabled": lambda: False,
        "downloads": lambda: repo.downloads,
        "likes": lambda: repo.likes,
        "tags": lambda: _tags(repo, commit),
        "pipeline_tag": lambda: _pipeline_tag(repo, commit),
        "library_name": lambda: _library(repo, commit),
        "createdAt": lambda: _iso(repo.created_at),
        "lastModified": lambda: _iso(commit.date),
        "cardData": lambda: card,
        "config": lambda: {k: config[k] for k in ("architectures", "model_type") if k in config} if config else None,
        "safetensors": lambda: _safetensors(commit),
        "siblings": lambda: _siblings(commit, blobs),
    }
    object_id = hashlib.md5(repo.repo_id.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    out: dict[str, Any] = {"_id": object_id, "id": repo.repo_id}
    out["modelId"] = repo.repo_id
    for name in sorted(fields):
        if name in values and (value := values[name]()) is not None:
            out[name] = value
    return out


def _card_data(commit: Commit) -> dict[str, Any] | None:
    """The README's YAML metadata as the Hub returns it; ``None`` when there is none or it does not parse."""
    return commit.cached("cardData", _parse_card_data)  # type: ignore[no-any-return]


def _parse_card_data(commit: Commit) -> dict[str, Any] | None:
    """The card metadata the listing sends: the README's YAML header as JSON, keys and all, as the Hub sends it.

    The Hub's YAML parser limits alias expansion and leaves such a card's metadata out; hf-spider's bounded loader
    stands in for that limit here (the crawler reads the README itself). Dates become strings, as in the Hub's JSON.
    """
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    from ..hub.cards import load_card_metadata

    raw = commit.files.get("README.md")
    match = REGEX_YAML_BLOCK.search(raw.decode("utf-8", errors="replace")) if raw is not None else None
    if match is None:
        return None
    try:
        data = load_card_metadata(match.group(2))
    except Exception:  # a malformed or oversized card: the Hub lists the model without card data
        return None
    return json.loads(json.dumps(data, default=str)) if isinstance(data, dict) and data else None


def _json_file(commit: Commit, name: str) -> dict[str, Any] | None:
    raw = commit.files.get(name)
    try:
        value = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _pipeline_tag(repo: HubRepo, commit: Commit) -> str | None:
    return repo.pipeline_tag or (_card_data(commit) or {}).get("pipeline_tag")


def _library(repo: HubRepo, commit: Commit) -> str | None:
    return repo.library_name or (_card_data(commit) or {}).get("library_name")


def _tags(repo: HubRepo, commit: Commit) -> list[str]:
    card_tags = (_card_data(commit) or {}).get("tags") or []
    return list(dict.fromkeys([*repo.tags, *(card_tags if isinstance(card_tags, list) else [card_tags])]))


def _safetensors(commit: Commit) -> dict[str, Any] | None:
    return commit.cached("safetensors", _count_parameters)  # type: ignore[no-any-return]


def _count_parameters(commit: Commit) -> dict[str, Any] | None:
    total: dict[str, int] = {}
    for path, data in commit.files.items():
        if path.endswith(".safetensors"):
            try:
                counts = parameters_from_safetensors_bytes(data)
            except ValueError:
                continue
            for dtype, n in counts.items():
                total[dtype] = total.get(dtype, 0) + n
    return {"parameters": total, "total": sum(total.values())} if total else None


def _siblings(commit: Commit, blobs: bool) -> list[dict[str, Any]]:
    """The model JSON's file list; with ``blobs`` (``files_metadata=True``) sizes, blob ids and LFS entries too."""
    if not blobs:
        return [{"rfilename": path} for path in sorted(commit.files)]
    lfs_tracked, out = _lfs_tracked(commit), []
    for path, data in sorted(commit.files.items()):
        out.append({"rfilename": path, "size": len(data), "blobId": git_blob_oid(data)})
        if lfs_tracked(path):  # the file listing's LFS entry: the digest is "sha256" here, "oid" in the tree listing
            out[-1]["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return out


def _lfs_tracked(commit: Commit) -> Callable[[str], bool]:
    """Whether a path of ``commit`` is stored in LFS: its name matches a ``filter=lfs`` pattern of the commit's
    ``.gitattributes`` (patterns without a slash match the file name in any folder, as git's do)."""
    patterns = [
        line.split()[0]
        for line in commit.files.get(".gitattributes", b"").decode("utf-8", "replace").splitlines()
        if "filter=lfs" in line.split()[1:]
    ]
    return lambda path: any(fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], p) for p in patterns)


def _tree(commit: Commit, prefix: str, *, recursive: bool) -> Response:
    prefix = prefix.strip("/")
    lfs_tracked = _lfs_tracked(commit)
    entries: dict[str, dict[str, Any]] = {}
    for path, data in sorted(commit.files.items()):
        if prefix and not path.startswith(prefix + "/"):
            continue
        rel = path[len(prefix) + 1 :] if prefix else path
        if not recursive and "/" in rel:
            folder = (prefix + "/" if prefix else "") + rel.split("/")[0]
            entries[folder] = _folder_entry(folder)
            continue
        entries[path] = _file_entry(path, data, lfs_tracked(path))
    if prefix and not entries:
        return _error(404, "EntryNotFound", f"{prefix} does not exist", **{"X-Repo-Commit": commit.oid})
    return JSONResponse(list(entries.values()))


def _file_entry(path: str, data: bytes, lfs: bool) -> dict[str, Any]:
    """A file as the Hub's tree listing and paths-info send it: its git blob id under ``oid`` and, for a file stored
    in LFS, the LFS object's sha256 under ``"lfs"`` (``size`` is the file's own size either way)."""
    entry: dict[str, Any] = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": path}
    if lfs:
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _folder_entry(path: str) -> dict[str, Any]:
    return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "path": path}


async def _paths_info(repo: HubRepo, request: Request, revision: str) -> Response:
    """``POST .../paths-info/{revision}`` (``HfApi.get_paths_info``): an entry per asked path that is a file or a
    folder at ``revision``, as the tree listing writes it; a path the revision lacks is left out, not an error. The
    paths come form-encoded (``paths=a&paths=b``, as the client sends them) or as JSON; ``expand``'s extra fields (last
    commit, security scan) are not served."""
    commit = repo.commit_at(revision)
    if commit is None:
        return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        paths = json.loads(body or b"{}").get("paths") or []
    else:
        paths = parse_qs(body.decode("utf-8", "surrogateescape")).get("paths", [])
    lfs_tracked, entries = _lfs_tracked(commit), []
    for path in dict.fromkeys(p.strip("/") for p in (paths if isinstance(paths, list) else [paths])):
        if path in commit.files:
            entries.append(_file_entry(path, commit.files[path], lfs_tracked(path)))
        elif any(name.startswith(path + "/") for name in commit.files):
            entries.append(_folder_entry(path))
    return JSONResponse(entries)


# ---- files ----------------------------------------------------------------------------------------------------------


async def _resolve(hub: LoopbackHub, request: Request) -> Response:
    repo_id, sep, tail = request.path_params["rest"].partition("/resolve/")
    if not sep:
        return _error(404, None, f"{request.url.path} is not served by the loopback Hub")
    repo_type = "dataset" if repo_id.startswith(REPO_TYPE_PREFIXES["dataset"]) else "model"
    repo_id = repo_id.removeprefix(REPO_TYPE_PREFIXES[repo_type])
    revision, _, filename = tail.partition("/")
    found = hub.lookup(repo_id, request, repo_type)
    if isinstance(found, Response):
        return found
    user = hub.user_of(request)
    if found.gated and user not in found.granted and not hub.can_write(user, repo_id.split("/")[0]):
        status = 403 if user else 401
        return _error(
            status, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the authorized list."
        )
    commit = found.commit_at(revision)
    if commit is None:
        return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    data = commit.files.get(filename)
    if data is None:
        return _error(404, "EntryNotFound", f"{filename} does not exist on {revision}", **{"X-Repo-Commit": commit.oid})
    headers = {
        "X-Repo-Commit": commit.oid,
        "ETag": f'"{git_blob_oid(data)}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    if request.method == "HEAD":
        return Response(status_code=200, headers={**headers, "Content-Length": str(len(data))})
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("range", ""))
    if match:
        start = int(match[1]) if match[1] else max(0, len(data) - int(match[2] or 0))
        end = int(match[2]) if match[1] and match[2] else len(data) - 1
        end = min(end, len(data) - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return Response(data[start : end + 1], status_code=206, headers=headers)
    return Response(data, headers=headers)


# ---- writes: repos and commits --------------------------------------------------------------------------------------


async def _create_repo(hub: LoopbackHub, request: Request) -> Response:
    body = await request.json()
    user = hub.user_of(request)
    if user is None:
        return _error(401, "RepoNotFound", "Invalid credentials in Authorization header")
    repo_type = body.get("type") or "model"
    if repo_type not in REPO_TYPE_PREFIXES:
        return _error(400, None, f"the loopback Hub serves {' and '.join(REPO_TYPE_PREFIXES)} repos only")
    namespace = body.get("organization") or user
    repo_id = f"{namespace}/{body['name']}"
    url = f"{_base_url(request)}/{repo_key(repo_id, repo_type)}"
    if not hub.can_write(user, namespace):
        return _error(403, None, f"You don't have the rights to create a {repo_type} under this namespace")
    with hub._lock:
        if repo_key(repo_id, repo_type) in hub.repos:
            return JSONResponse({"error": f"You already created this {repo_type} repo", "url": url}, status_code=409)
        private = body.get("visibility") == "private" or bool(body.get("private"))
        hub.add_repo(repo_id, private=private, repo_type=repo_type)
    return JSONResponse({"url": url, "name": repo_id, "id": hashlib.md5(repo_id.encode()).hexdigest()[:24]})


async def _validate_yaml(hub: LoopbackHub, request: Request) -> Response:
    from huggingface_hub import RepoCard

    body = await request.json()
    try:
        RepoCard(body.get("content", ""))
    except Exception as exc:  # any YAML problem is a validation error, reported like the Hub does
        return JSONResponse({"errors": [{"message": str(exc).splitlines()[0]}], "warnings": []}, status_code=400)
    return JSONResponse({"errors": [], "warnings": []})


async def _preupload(repo: HubRepo, request: Request) -> Response:
    body = await request.json()
    files = []
    for entry in body.get("files", []):
        existing = repo.head.files.get(entry["path"])
        info = {"path": entry["path"], "uploadMode": "regular", "shouldIgnore": False}
        if existing is not None:
            info["oid"] = git_blob_oid(existing)
        files.append(info)
    return JSONResponse({"commitOid": repo.head.oid, "files": files})


async def _commit(hub: LoopbackHub, repo: HubRepo, request: Request, revision: str) -> Response:
    if not hub.can_write(hub.user_of(request), repo.repo_id.split("/")[0]):
        return _error(403, None, "You don't have the rights to write to this repo")
    if revision not in ("main", quote("main", safe="")):
        return _error(400, None, f"the loopback Hub commits to 'main' only, not '{revision}'")
    if request.query_params.get("create_pr") in ("1", "True", "true"):
        return _error(400, None, "the loopback Hub does not open pull requests; commit to main")
    lines = [json.loads(line) for line in (await request.body()).decode().splitlines() if line.strip()]
    header: dict[str, Any] = next((line["value"] for line in lines if line["key"] == "header"), {})
    with hub._lock:
        parent = header.get("parentCommit")
        if parent and not repo.head.oid.startswith(parent):
            return _error(412, None, f"parent commit {parent} is not the head of main ({repo.head.oid})")
        files = dict(repo.head.files)
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    return _error(
                        404,
                        "EntryNotFound",
                        f"A file with this name doesn't exist: {value['path']}",
                        **{"X-Repo-Commit": repo.head.oid},
                    )
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(prefix)}
            elif key == "lfsFile":
                return _error(
                    400, None, "the loopback Hub takes regular uploads only (it answers 'regular' to preupload)"
                )
        oid = hub._replace_files(repo, files, summary=header.get("summary", ""))
    url = f"{_base_url(request)}/{repo_key(repo.repo_id, repo.repo_type)}/commit/{oid}"
    return JSONResponse({"success": True, "commitOid": oid, "commitUrl": url, "hookOutput": ""})


# ---- collections ----------------------------------------------------------------------------------------------------


async def _collections_root(hub: LoopbackHub, request: Request) -> Response:
    if request.method == "POST":
        return await _create_collection(hub, request)
    q = request.query_params
    user = hub.user_of(request)
    with hub._lock:
        found = [c for c in hub.collections.values() if not c["private"] or hub.can_write(user, c["namespace"])]
    if owner := q.get("owner"):
        found = [c for c in found if c["namespace"] == owner]
    for item in q.getlist("item"):
        kind, _, item_id = item.partition("/")
        found = [c for c in found if any(i["type"] + "s" == kind and i["id"] == item_id for i in c["items"])]
    found.sort(key=lambda c: c["lastUpdated"], reverse=True)
    page, headers = _page(hub, request, found, "/api/collections")
    body = []
    for c in page:
        listed = _collection_json(c, request)
        listed.pop("position")  # the client adds its own position to listed collections
        listed["items"] = listed["items"][:4]
        body.append(listed)
    return JSONResponse(body, headers=headers)


async def _create_collection(hub: LoopbackHub, request: Request) -> Response:
    body = await request.json()
    user = hub.user_of(request)
    namespace = body.get("namespace") or user
    if user is None or namespace is None or not hub.can_write(user, namespace):
        return _error(403, None, "You don't have the rights to create a collection under this namespace")
    if len(body.get("description") or "") > 150:
        return _error(400, None, "description must be at most 150 characters")
    with hub._lock:
        for existing in hub.collections.values():
            if existing["namespace"] == namespace and existing["title"] == body["title"]:
                return JSONResponse({"error": "Collection already exists", "slug": existing["slug"]}, status_code=409)
        cid = hashlib.sha1(f"{namespace}/{body['title']}/{hub._tick()}".encode()).hexdigest()[:24]
        collection = {
            "id": cid,
            "namespace": namespace,
            "title": body["title"],
            "slug": f"{namespace}/{_slugify(body['title'])}-{cid}",
            "description": body.get("description"),
            "private": bool(body.get("private", False)),
            "theme": "default",
            "upvotes": 0,
            "position": len([c for c in hub.collections.values() if c["namespace"] == namespace]),
            "items": [],
            "lastUpdated": _iso(hub._tick()),
        }
        hub.collections[cid] = collection
        return JSONResponse(_collection_json(collection, request))


async def _collection_api(hub: LoopbackHub, request: Request) -> Response:
    match = re.fullmatch(r"([^/]+/[^/]+?)(/items(?:/([^/]+))?)?", request.path_params["rest"])
    slug = match[1] if match else request.path_params["rest"]
    collection = hub.collections.get(slug.rsplit("-", 1)[-1])
    user = hub.user_of(request)
    if (
        match is None
        or collection is None
        or (collection["private"] and not hub.can_write(user, collection["namespace"]))
    ):
        return _error(404, None, f"Collection {slug} not found")
    if request.method != "GET" and not hub.can_write(user, collection["namespace"]):
        return _error(403, None, "You don't have the rights to change this collection")
    with hub._lock:
        if match[2]:
            return await _collection_items(hub, collection, request, match[3] or "")
        if request.method == "DELETE":
            del hub.collections[collection["id"]]
            return JSONResponse({})
        if request.method == "PATCH":
            body = await request.json()
            if len(body.get("description") or "") > 150:
                return _error(400, None, "description must be at most 150 characters")
            for key in ("title", "description", "private", "theme", "position"):
                if key in body:
                    collection[key] = body[key]
            if "title" in body:
                collection["slug"] = f"{collection['namespace']}/{_slugify(body['title'])}-{collection['id']}"
            collection["lastUpdated"] = _iso(hub._tick())
            return JSONResponse({"data": _collection_json(collection, request)})
        if request.method == "GET":
            return JSONResponse(_collection_json(collection, request))
    return _error(405, None, f"{request.method} not supported on {request.url.path}")


async def _collection_items(hub: LoopbackHub, collection: dict[str, Any], request: Request, item_id: str) -> Response:
    items: list[dict[str, Any]] = collection["items"]
    if request.method == "POST" and not item_id:
        body = await request.json()
        item = body["item"]
        if item["type"] == "model" and (item["id"] not in hub.repos or hub.repos[item["id"]].deleted):
            return _error(404, "RepoNotFound", f"Repository {item['id']} not found")
        if any(i["type"] == item["type"] and i["id"] == item["id"] for i in items):
            return _error(409, None, f"{item['id']} is already in the collection")
        if len(body.get("note") or "") > 500:
            return _error(400, None, "note must be at most 500 characters")
        oid = hashlib.sha1(f"{collection['id']}/{item['type']}/{item['id']}".encode()).hexdigest()[:24]
        items.append({"_id": oid, "id": item["id"], "type": item["type"], "note": body.get("note")})
    else:
        index = next((n for n, i in enumerate(items) if i["_id"] == item_id), None)
        if index is None:
            return _error(404, None, f"Item {item_id} not found in collection")
        if request.method == "DELETE":
            items.pop(index)
        elif request.method == "PATCH":
            body = await request.json()
            if len(body.get("note") or "") > 500:
                return _error(400, None, "note must be at most 500 characters")
            if "note" in body:
                items[index]["note"] = body["note"]
            if "position" in body:
                items.insert(min(int(body["position"]), len(items) - 1), items.pop(index))
        else:
            return _error(405, None, f"{request.method} not supported on {request.url.path}")
    collection["lastUpdated"] = _iso(hub._tick())
    return JSONResponse(_collection_json(collection, request))


def _collection_json(collection: dict[str, Any], request: Request) -> dict[str, Any]:
    owner = {"name": collection["namespace"], "_id": collection["namespace"], "fullname": collection["namespace"]}
    owner |= {"type": "user", "avatarUrl": f"{_base_url(request)}/avatars/{collection['namespace']}"}
    items = [
        {
            "_id": i["_id"],
            "id": i["id"],
            "type": i["type"],
            "position": n,
            **({"note": {"text": i["note"], "html": i["note"]}} if i.get("note") else {}),
        }
        for n, i in enumerate(collection["items"])
    ]
    out = {k: collection[k] for k in ("slug", "title", "private", "theme", "upvotes", "position", "lastUpdated")}
    if collection.get("description") is not None:
        out["description"] = collection["description"]
    return {**out, "owner": owner, "items": items}


# ---- small helpers --------------------------------------------------------------------------------------------------


def _as_bytes(files: dict[str, bytes | str]) -> dict[str, bytes]:
    return {path: data.encode() if isinstance(data, str) else bytes(data) for path, data in files.items()}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "collection"


def _page(hub: LoopbackHub, request: Request, listed: list[_T], path: str) -> tuple[list[_T], dict[str, str]]:
    """The page of ``listed`` a listing request asks for (``cursor``, ``limit`` capped at the hub's page size) and the
    headers of its answer: a ``Link`` to the next page at ``path`` while one remains.

    Model and collection listings page alike, as the Hub does, and the client follows the ``Link`` of both the same
    way: one implementation keeps the two from drifting apart.
    """
    q = request.query_params
    offset = int(q.get("cursor", "0"))
    size = min(hub.page_size, int(q["limit"])) if q.get("limit") else hub.page_size
    headers = {}
    if offset + size < len(listed):
        items = [(k, v) for k, v in q.multi_items() if k != "cursor"] + [("cursor", str(offset + size))]
        headers["Link"] = f'<{_base_url(request)}{path}?{urlencode(items)}>; rel="next"'
    return listed[offset : offset + size], headers


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"
