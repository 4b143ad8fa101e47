"""The live Hub as a candidate pool: ``--candidates hub`` and ``--candidates hf://datasets/ORG/NAME[@REVISION]``.

``hub``: the Hub's own listing for the task's modality (:data:`LISTINGS`: the pipeline tags and the libraries of
that modality), most downloaded first and cut at ``limit`` per listing, through :class:`~hf_spider.hub.crawl.Crawler`
(``HfApi.list_models`` with ``expand``: one request per page gives sha, tags, downloads, parameter count, card
metadata). The listing is cached in ``HF_SPIDER_CACHE/hub_pool/`` and refreshed incrementally: a model whose sha did
not change keeps its cached record, so only changed models are fetched again. Config and card, which the listing does
not send, are fetched on demand for the candidates that reach the shortlist (:meth:`HubPool.with_details`), and kept
in the cache. Offline, the last cached listing is read (and the crawler says so).

``hf://datasets/ORG/NAME``: an index that ``hf-spider crawl --push-to-hub ORG/NAME`` wrote to a dataset repo
(:data:`PUSHED_INDEX`), so one crawl serves a team; ``@REVISION`` pins it (a commit, tag or branch), and the
revision read is logged.

The pipeline's other Hub forms of a pool: a listing query (:func:`query_hub_candidates`) and repo ids
(:func:`records_for_ids`), both read through :func:`hf_spider.ranking.load_candidates`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InvalidIndexError, UnknownCandidateError
from .crawl import Crawler, Selection
from .index import read_index, write_index
from .records import ModelRecord

logger = logging.getLogger(__name__)

#: The listings of each modality: its classification pipeline tags and the libraries whose models are backbones.
LISTINGS: dict[str, tuple[Selection, ...]] = {
    "image": (
        Selection(pipeline_tag="image-classification"),
        Selection(pipeline_tag="image-feature-extraction"),
        Selection(library="timm"),
    ),
    "text": (
        Selection(pipeline_tag="text-classification"),
        Selection(pipeline_tag="sentence-similarity"),
        Selection(library="sentence-transformers"),
    ),
}
#: Models kept per listing, most downloaded first.
DEFAULT_LIMIT = 500
#: File name of a pushed index in its dataset repo.
PUSHED_INDEX = "index.parquet"
#: Most bytes a pushed index may take on the Hub; a larger one is refused before it is downloaded
#: (:func:`read_dataset_index`). A crawl with details (configs, card statistics) writes about 170 bytes a model as
#: Parquet (the 349 models of the bundled ``data/bundled_index.jsonl``, 2,900 bytes a row as JSON Lines, take 60 KB
#: as Parquet; the listing-only default pool takes 60 bytes a row). The whole Hub, some 2 million models, is then
#: about 340 MB; 2 GiB holds 1,000 bytes a model for 2 million models, or today's rows for 12 million, where a
#: hostile repo's index could be any size and is read into memory whole.
MAX_PUSHED_INDEX_BYTES = 2 * 2**30
_DATASET_URI = re.compile(r"^hf://datasets/(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


@dataclass(frozen=True)
class HubPool:
    """The live Hub's models of one modality, cached and refreshed incrementally (see the module docstring).

    Args:
        modality: ``"image"`` or ``"text"``.
        limit: models kept per listing, most downloaded first.
        cache_dir: where the cached listing lives (default ``HF_SPIDER_CACHE/hub_pool``).
        endpoint / token: the Hub (default: ``HF_ENDPOINT`` and the usual token).
    """

    modality: str
    limit: int = DEFAULT_LIMIT
    cache_dir: Path | None = None
    endpoint: str | None = None
    token: str | None = None

    @property
    def index_path(self) -> Path:
        """The cached listing: one index per endpoint and modality."""
        from huggingface_hub import constants

        from ..constants import CACHE_DIR

        endpoint = self.endpoint or constants.ENDPOINT
        digest = hashlib.sha256(endpoint.encode("utf-8")).hexdigest()[:12]
        return (self.cache_dir or CACHE_DIR / "hub_pool") / f"{self.modality}-{digest}.parquet"

    def records(self) -> list[ModelRecord]:
        """The listed models of the modality, refreshed: one listing per :data:`LISTINGS` entry, cut at ``limit``."""
        if self.modality not in LISTINGS:
            raise InvalidIndexError(f"the Hub pool lists image or text models, not '{self.modality}'")
        crawler = self._crawler(details=False)
        for selection in LISTINGS[self.modality]:
            crawler.crawl(self.index_path, replace(selection, sort="downloads", limit=self.limit))
        return [r for r in read_index(self.index_path) if r.modality in (self.modality, None)]

    def with_details(self, records: list[ModelRecord], model_ids: list[str]) -> list[ModelRecord]:
        """``records`` with those of ``model_ids`` completed by their config and card (fetched only where the cache
        does not hold them at the listed sha), the cache updated."""
        crawler = self._crawler(details=True)
        cached = {r.repo_id: r for r in read_index(self.index_path)} if self.index_path.is_file() else {}
        wanted = set(model_ids)
        detailed = {}
        for record in records:
            if record.repo_id not in wanted:
                continue
            previous = cached.get(record.repo_id, record)
            fresh = crawler.needs_fetch(record, previous)
            detailed[record.repo_id] = crawler.fetch(record) if fresh else previous
        if detailed:
            write_index(sorted({**cached, **detailed}.values(), key=lambda r: r.repo_id), self.index_path)
        return [detailed.get(r.repo_id, r) for r in records]

    def _crawler(self, *, details: bool) -> Crawler:
        return Crawler(endpoint=self.endpoint, token=self.token, with_config=details, with_card=details)


def is_dataset_index(pool: object) -> bool:
    """Whether ``pool`` names a pushed index (``hf://datasets/ORG/NAME[@REVISION]``)."""
    return isinstance(pool, str) and pool.startswith("hf://datasets/")


def read_dataset_index(uri: str, *, token: str | None = None) -> list[ModelRecord]:
    """The records of an index pushed to a dataset repo (``hf://datasets/ORG/NAME[@REVISION]``).

    Its size is asked of the Hub first (:func:`hf_spider.hub.sizes.download_sizes`: one request, none when the cache
    holds it or offline), and an index over :data:`MAX_PUSHED_INDEX_BYTES` is not downloaded.

    Raises:
        InvalidIndexError: a malformed URI, a repo / revision without an index, or an index over the cap.
    """
    from huggingface_hub import hf_hub_download

    from .sizes import download_sizes

    match = _DATASET_URI.match(uri)
    if match is None:
        raise InvalidIndexError(
            f"'{uri}' is not a dataset index; pass hf://datasets/ORG/NAME or hf://datasets/ORG/NAME@REVISION"
        )
    repo_id, revision = match["repo"], match["revision"]
    at = f" at {revision}" if revision else ""
    try:
        size = download_sizes(
            repo_id,
            (PUSHED_INDEX,),
            what=f"the size of {repo_id}'s {PUSHED_INDEX}",
            repo_type="dataset",
            revision=revision,
            token=token,
        ).get(PUSHED_INDEX)
        if size is not None and size > MAX_PUSHED_INDEX_BYTES:
            raise InvalidIndexError(
                f"{PUSHED_INDEX} of dataset {repo_id}{at} is {size:,} bytes on the Hub, over the "
                f"{MAX_PUSHED_INDEX_BYTES:,} an index may have, so it is not downloaded; check the repo, or pass a "
                "local index file or one `hf-spider crawl --push-to-hub` wrote"
            )
        path = hf_hub_download(repo_id, PUSHED_INDEX, repo_type="dataset", revision=revision, token=token)
    except InvalidIndexError:
        raise
    except Exception as exc:  # not found, gated, offline without a copy: one line naming the fix
        raise InvalidIndexError(
            f"cannot read {PUSHED_INDEX} of dataset {repo_id}{at} ({type(exc).__name__}); check the repo and "
            "revision, or push an index with `hf-spider crawl --push-to-hub`"
        ) from exc
    logger.info("read the index of %s at %s", repo_id, Path(path).parent.name)
    return read_index(path)


def push_index(index_path: str | Path, repo_id: str, *, token: str | None = None, private: bool | None = None) -> str:
    """Push a crawled index to the dataset repo ``repo_id`` as :data:`PUSHED_INDEX` (one commit, none if unchanged),
    so ``--candidates hf://datasets/<repo_id>`` reads it. Returns the commit URL."""
    import tempfile

    from .push import push_folder

    records = read_index(index_path)
    with tempfile.TemporaryDirectory() as folder:
        write_index(records, Path(folder) / PUSHED_INDEX)
        return push_folder(
            folder,
            repo_id,
            token=token,
            private=private,
            repo_type="dataset",
            commit_message=f"hf-spider index of {len(records)} models",
        )


def query_hub_candidates(
    *,
    pipeline_tag: str | None = None,
    library: str | None = None,
    search: str | None = None,
    author: str | None = None,
    sort: str | None = "downloads",
    limit: int = 50,
    token: str | None = None,
) -> list[ModelRecord]:
    """Candidates from a Hub listing (``HfApi.list_models``), lazily paged so ``limit`` bounds the requests."""
    from huggingface_hub import HfApi

    from .cards import record_from_model_info
    from .crawl import LIST_EXPAND

    listing = HfApi(token=token).list_models(
        pipeline_tag=pipeline_tag,
        filter=library,
        search=search,
        author=author,
        sort=sort,  # type: ignore[arg-type]
        limit=limit,
        expand=LIST_EXPAND,
    )
    return [record_from_model_info(info) for info in listing]


def records_for_ids(model_ids: Sequence[str]) -> list[ModelRecord]:
    """The records of ``model_ids``: the default pool's where it knows them, the Hub's ``model_info`` for the others.

    Raises:
        UnknownCandidateError: a repo id that is neither in the default pool nor on the Hub.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    from .cards import record_from_model_info
    from .crawl import LIST_EXPAND
    from .pool import load_default_pool

    bundled = {r.repo_id: r for r in load_default_pool()}
    fetched = {}
    api = HfApi()
    for model_id in (m for m in model_ids if m not in bundled):
        try:
            fetched[model_id] = record_from_model_info(api.model_info(model_id, expand=LIST_EXPAND))
        except RepositoryNotFoundError as exc:
            raise UnknownCandidateError(
                f"candidate '{model_id}' is neither in the bundled index nor on the Hub; check the repo id"
            ) from exc
    return [bundled.get(m) or fetched[m] for m in model_ids]
