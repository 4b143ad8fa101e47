"""Push a :class:`Shortlist` to a Hub collection, so a ranking can be shared, bookmarked and updated in place.

The push *converges* instead of replaying a script: it looks the collection up by title, adds only the models that
are missing, removes models no longer on the shortlist, then fixes notes and positions where they differ, and reads
the collection back until nothing is left to fix. Running it twice changes nothing the second time, and running it
again after a failure half way finishes the job.

No collection write of ``huggingface_hub`` (nor ``whoami``) is retried, and a write whose answer was lost has still
happened (see ``HUB_CLIENT_NOTES.md``). So every call here is retried on the failures that may pass (429 with its
``Retry-After``, 5xx, timeouts, cut or truncated answers; :func:`hf_spider.hub.retry.call_with_retries`), requests are
bounded by a timeout, and every write is one that converges when replayed: ``exists_ok=True`` for creations and
additions, ``missing_ok=True`` for deletions, absolute positions and notes for updates. What still fails is one
:class:`~hf_spider.errors.CollectionPushError` carrying the server's reason. Notes and descriptions are escaped
(control and bidi-override characters), since model ids and task names can come from anyone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload

from ..errors import CollectionPushError
from ..hub.sanitize import escape_for_display

if TYPE_CHECKING:
    from huggingface_hub import Collection, CollectionItem, HfApi

    from ..hub.retry import RetryPolicy
    from .shortlist import Shortlist, ShortlistEntry

logger = logging.getLogger(__name__)

#: Limits the Hub documents for a collection description and an item note (``HfApi`` docstrings).
MAX_DESCRIPTION_CHARS = 150
MAX_NOTE_CHARS = 500
#: Stands for the object id of an item that a dry run would add (the Hub assigns the real one).
NEW_ITEM = "<new>"
#: Read-back-and-fix rounds before a push that keeps finding something to fix gives up.
MAX_ROUNDS = 4

_T = TypeVar("_T")


@dataclass(frozen=True)
class PlannedCall:
    """One ``HfApi`` write a push makes (or, with ``dry_run=True``, would make)."""

    method: Literal["create_collection", "add_collection_item", "delete_collection_item", "update_collection_item"]
    kwargs: dict[str, Any] = field(default_factory=dict)


def collection_note(entry: ShortlistEntry, shortlist: Shortlist, *, date: str) -> str:
    """The note of one item, e.g. ``"rank 3 · collab_prior 0.94 · task beans · 2025-01-31 · hf-spider 0.1.0"``."""
    from .._version import __version__

    text = (
        f"rank {entry.rank} · {shortlist.ranker} {entry.score:.4g} · task {shortlist.task} · {date}"
        f" · hf-spider {__version__}"
    )
    return _trim(escape_for_display(text), MAX_NOTE_CHARS)


@overload
def push_to_hub_collection(
    shortlist: Shortlist,
    title: str,
    *,
    namespace: str | None = ...,
    private: bool = ...,
    token: str | None = ...,
    description: str | None = ...,
    prune: bool = ...,
    date: str | None = ...,
    dry_run: Literal[False] = ...,
    policy: RetryPolicy | None = ...,
) -> str: ...
@overload
def push_to_hub_collection(
    shortlist: Shortlist,
    title: str,
    *,
    namespace: str | None = ...,
    private: bool = ...,
    token: str | None = ...,
    description: str | None = ...,
    prune: bool = ...,
    date: str | None = ...,
    dry_run: Literal[True],
    policy: RetryPolicy | None = ...,
) -> list[PlannedCall]: ...
@overload
def push_to_hub_collection(
    shortlist: Shortlist,
    title: str,
    *,
    namespace: str | None = ...,
    private: bool = ...,
    token: str | None = ...,
    description: str | None = ...,
    prune: bool = ...,
    date: str | None = ...,
    dry_run: bool = ...,
    policy: RetryPolicy | None = ...,
) -> str | list[PlannedCall]: ...
def push_to_hub_collection(
    shortlist: Shortlist,
    title: str,
    *,
    namespace: str | None = None,
    private: bool = True,
    token: str | None = None,
    description: str | None = None,
    prune: bool = True,
    date: str | None = None,
    dry_run: bool = False,
    policy: RetryPolicy | None = None,
) -> str | list[PlannedCall]:
    """Create or update the collection ``namespace/title`` so it lists the shortlist's models in rank order.

    Args:
        shortlist: the ranking to publish; each model becomes one item whose note says its rank, score, task and date.
        title: the collection title; an existing collection of ``namespace`` with this exact title is reused.
        namespace: user or organisation that owns the collection (default: the token's user).
        private: visibility of a *new* collection (an existing one keeps its visibility).
        token: a Hub token with write access (default: the locally saved one). Never logged.
        description: description of a new collection (default: the task and ranker), trimmed to 150 characters.
        prune: remove models that are in the collection but no longer on the shortlist.
        date: the date written in notes (default: today, UTC).
        dry_run: read the collection but write nothing; return the calls a real push would make.
        policy: retries and request timeout of each Hub call (default :data:`hf_spider.hub.retry.WRITE_POLICY`).

    Returns:
        The collection URL, or with ``dry_run=True`` the list of :class:`PlannedCall`.

    Raises:
        CollectionPushError: empty shortlist, an empty title or namespace, no or read-only token, a namespace the
            token cannot write to, a title owned by someone else, a Hub failure that outlasted the retries (with the
            server's reason), or a failure half way (its ``url`` is set; run the same push again to resume).
    """
    from huggingface_hub import HfApi

    from ..hub import retry

    if not shortlist.entries:
        raise CollectionPushError("the shortlist is empty, so there is nothing to push; rank with a wider pool first")
    if not title.strip():
        raise CollectionPushError("the collection title is empty; pass a title")
    if namespace is not None and not namespace.strip():  # `namespace or the token's user` would take the user
        raise CollectionPushError("the collection namespace is empty; pass a user or organisation, or None for yours")
    hub = _Hub(HfApi(token=token), policy or retry.WRITE_POLICY)
    with retry.session_timeout(hub.policy.timeout):
        return _push(hub, shortlist, title, namespace, private, description, prune, date, dry_run)


def _push(
    hub: _Hub,
    shortlist: Shortlist,
    title: str,
    namespace: str | None,
    private: bool,
    description: str | None,
    prune: bool,
    date: str | None,
    dry_run: bool,
) -> str | list[PlannedCall]:
    api = hub.api
    namespace = namespace or _token_user(hub)
    date = date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    wanted = [(e.model_id, collection_note(e, shortlist, date=date)) for e in shortlist.entries]
    collection = hub.call(lambda: _find_collection(api, namespace, title), "look up", namespace=namespace)
    plan: list[PlannedCall] = []
    if collection is None:
        default_description = f"hf-spider shortlist for {shortlist.task} ({shortlist.ranker})"
        create = PlannedCall(
            "create_collection",
            {
                "title": title,
                "namespace": namespace,
                "private": private,
                "description": _trim(escape_for_display(description or default_description), MAX_DESCRIPTION_CHARS),
                "exists_ok": True,
            },
        )
        plan.append(create)
        if not dry_run:
            collection = hub.call(lambda: api.create_collection(**create.kwargs), "create", namespace=namespace)
            _check_owner(collection, namespace, title)
            logger.info("created collection %s", collection.url)
    slug, url = (collection.slug, collection.url) if collection is not None else (NEW_ITEM, None)
    items = [_Item.of(i) for i in collection.items] if collection is not None else []
    if dry_run:
        edits = _add_and_delete_calls(slug, items, wanted, prune)
        after = [i for i in items if not any(c.kwargs.get("item_object_id") == i.object_id for c in edits)]
        after += [_Item(NEW_ITEM, c.kwargs["item_id"], "model", c.kwargs["note"]) for c in edits if _is_add(c)]
        return plan + edits + _order_calls(slug, after, wanted)
    for _ in range(MAX_ROUNDS):  # fix, read back, until the read-back needs nothing
        calls = _add_and_delete_calls(slug, items, wanted, prune) or _order_calls(slug, items, wanted)
        if not calls:
            logger.info("collection %s lists %d models in rank order", url, len(wanted))
            return str(url)
        present = sum(i.item_type == "model" and i.item_id in dict(wanted) for i in items)
        for call in calls:
            hub.run(call, url=url, present=present, total=len(wanted))
            present += _is_add(call)
        refreshed = hub.call(lambda: api.get_collection(slug), "read back", namespace=namespace)
        items = [_Item.of(i) for i in refreshed.items]
    raise CollectionPushError(
        f"collection {url} still differs from the shortlist after {MAX_ROUNDS} rounds of fixes (is someone else "
        "editing it?); run the same push again",
        url=url,
    )


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--push-collection TITLE`` options of a CLI command that produces a shortlist (``hf-spider rank``)."""
    group = parser.add_argument_group("Hub collection")
    group.add_argument(
        "--push-collection", metavar="TITLE", type=_given, help="push the shortlist to this Hub collection"
    )
    group.add_argument(
        "--collection-namespace", type=_given, help="user or organisation owning it (default: the token's user)"
    )
    group.add_argument("--collection-public", action="store_true", help="make a new collection public")


def _given(text: str) -> str:
    """An argparse ``type=`` for a title or namespace: an empty one is refused as the command line is read, since
    ``--push-collection ""`` would silently push nothing and ``--collection-namespace ""`` mean the token's user."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name; pass one, or leave the option out")
    return text


def check_push_args(args: argparse.Namespace) -> None:
    """Before the ranking: refuse collection options without ``--push-collection``, and a push that cannot happen
    (offline, no token: :func:`~hf_spider.hub.push.check_can_push`).

    Raises:
        CollectionPushError: an option without ``--push-collection``.
        HubPushError: offline, or no token.
    """
    from ..hub.push import check_can_push

    if not args.push_collection:
        given = [flag for flag, on in (("--collection-namespace", args.collection_namespace),
                                       ("--collection-public", args.collection_public)) if on]  # fmt: skip
        if given:
            flags = " and ".join(given)
            raise CollectionPushError(f"{flags} only work with --push-collection; add it, or leave out {flags}")
        return
    check_can_push("--push-collection")


def push_from_args(shortlist: Shortlist, args: argparse.Namespace) -> str | None:
    """Push ``shortlist`` as :func:`add_push_arguments` asked; the URL, or ``None`` without ``--push-collection``.

    The token comes from ``HF_TOKEN`` or ``hf auth login``, never from the command line (it would land in the shell
    history). A failure raises :class:`CollectionPushError`, which the CLI prints as one line.
    """
    if not args.push_collection:
        return None
    return push_to_hub_collection(
        shortlist, args.push_collection, namespace=args.collection_namespace, private=not args.collection_public
    )


class _Item(NamedTuple):
    object_id: str
    item_id: str
    item_type: str
    note: str | None

    @classmethod
    def of(cls, item: CollectionItem) -> _Item:
        return cls(item.item_object_id, item.item_id, item.item_type, item.note)


@dataclass(frozen=True)
class _Hub:
    """The client and the retry policy of one push: every request goes through :meth:`call` or :meth:`run`."""

    api: HfApi
    policy: RetryPolicy

    def call(self, fn: Callable[[], _T], action: str, *, namespace: str | None = None) -> _T:
        """One Hub request, retried on failures that may pass; what still fails is one :class:`CollectionPushError`."""
        from huggingface_hub.errors import HfHubHTTPError

        from ..hub.retry import call_with_retries, describe

        try:
            return call_with_retries(fn, what=f"{action} collections", policy=self.policy)
        except CollectionPushError:
            raise
        except Exception as exc:  # HTTP refusals, and what outlasted the retries: cut answers, timeouts, 5xx
            status = exc.response.status_code if isinstance(exc, HfHubHTTPError) and exc.response is not None else None
            where = f"collections of '{namespace}'" if namespace else "the Hub account"
            if status in (401, 403):
                raise CollectionPushError(
                    f"the token may not {action} {where} ({describe(exc)}); "
                    "pass a write token of that user or a member of that organisation"
                ) from exc
            raise CollectionPushError(
                f"could not {action} {where} ({describe(exc)}); check the Hub status and run the same push again"
            ) from exc

    def run(self, call: PlannedCall, *, url: str | None, present: int, total: int) -> None:
        """Make one write, retried; a failure says how far the push got and that re-running it resumes."""
        from ..hub.retry import call_with_retries, describe

        try:
            write = getattr(self.api, call.method)
            call_with_retries(lambda: write(**call.kwargs), what=call.method, policy=self.policy)
        except Exception as exc:  # the client raises HTTP and connection errors of several types
            raise CollectionPushError(
                f"push to {url} stopped with {present} of {total} models in the collection "
                f"({call.method} failed: {describe(exc)}); run the same push again to resume",
                url=url,
            ) from exc


def _add_and_delete_calls(
    slug: str, items: list[_Item], wanted: list[tuple[str, str]], prune: bool
) -> list[PlannedCall]:
    """Deletions of models no longer wanted (with ``prune``; other item types stay), then additions in rank order."""
    wanted_ids = {model_id for model_id, _ in wanted}
    models = [i for i in items if i.item_type == "model"]
    calls = [
        PlannedCall(
            "delete_collection_item", {"collection_slug": slug, "item_object_id": i.object_id, "missing_ok": True}
        )
        for i in models
        if prune and i.item_id not in wanted_ids
    ]
    present = {i.item_id for i in models}
    calls += [
        PlannedCall(
            "add_collection_item",
            {"collection_slug": slug, "item_id": model_id, "item_type": "model", "note": note, "exists_ok": True},
        )
        for model_id, note in wanted
        if model_id not in present
    ]
    return calls


def _order_calls(slug: str, items: list[_Item], wanted: list[tuple[str, str]]) -> list[PlannedCall]:
    """Updates that put the ``wanted`` models first, in order, each with its note.

    ``items`` is the collection as it stands. The Hub moves an item to index ``p`` and shifts the others, so the
    simulation does the same, and an item already in place with the right note costs no call.
    """
    order = list(items)
    calls = []
    for position, (model_id, note) in enumerate(wanted):
        index = next(i for i, item in enumerate(order) if item.item_type == "model" and item.item_id == model_id)
        item = order[index]
        if index == position and item.note == note:
            continue
        kwargs: dict[str, Any] = {"collection_slug": slug, "item_object_id": item.object_id, "note": note}
        if index != position:
            kwargs["position"] = position
            order.insert(position, order.pop(index))
        order[position] = item._replace(note=note)
        calls.append(PlannedCall("update_collection_item", kwargs))
    return calls


def _check_owner(collection: Collection, namespace: str, title: str) -> None:
    # huggingface_hub 2.4 annotates ``owner`` as str but keeps the Hub's object as it came.
    owner: Any = collection.owner
    name = str(owner.get("name") if isinstance(owner, dict) else owner)
    if name != namespace:
        raise CollectionPushError(
            f"collection title '{title}' is taken by another owner ('{name}'); pick another title or namespace",
            url=collection.url,
        )


def _find_collection(api: HfApi, namespace: str, title: str) -> Collection | None:
    """The namespace's collection with exactly this title, read in full (listings hold 4 items at most)."""
    matches = [c for c in api.list_collections(owner=namespace, limit=None) if c.title == title]
    if len(matches) > 1:
        logger.warning(
            "%d collections of %s are titled %r; updating %s", len(matches), namespace, title, matches[0].slug
        )
    return api.get_collection(matches[0].slug) if matches else None


def _token_user(hub: _Hub) -> str:
    """The token's user name, refusing a read-only token before anything is written."""
    from huggingface_hub.errors import LocalTokenNotFoundError

    try:
        info = hub.call(hub.api.whoami, "check the token of")
    except CollectionPushError as exc:
        if isinstance(exc.__cause__, LocalTokenNotFoundError):
            raise CollectionPushError(
                "no Hub token found; pass token= (a write token), or run `hf auth login` or set HF_TOKEN"
            ) from exc.__cause__
        raise
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise CollectionPushError(
            f"the token of '{escape_for_display(info.get('name'))}' is read-only; pass a token with write access "
            "(https://huggingface.co/settings/tokens)"
        )
    return str(info["name"])


def _is_add(call: PlannedCall) -> bool:
    return call.method == "add_collection_item"


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
