"""Records on the Hub: push a records folder to a dataset repo, read one back (so records built on a GPU machine
train a scorer anywhere). Plain ``HfApi.upload_folder`` and ``snapshot_download`` with ``repo_type="dataset"``, which
downloads only the files the reader reads (:data:`RECORDS_FILES`) once the Hub says they are within
:data:`MAX_RECORDS_BYTES`."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import InvalidRecordsError
from ..hub.output_paths import atomic_write
from .store import MANIFEST_FILE, PAIRS_FOLDER, TASKS_FILE, MetaRecords, RecordsFolder, read_meta_records

logger = logging.getLogger(__name__)

#: The files of a records repo that :func:`~hf_spider.metarecords.store.read_meta_records` reads, as
#: ``snapshot_download``'s ``allow_patterns``: nothing else in the repo (its card, anything a hostile repo adds) is
#: downloaded.
RECORDS_FILES = (MANIFEST_FILE, TASKS_FILE, f"{PAIRS_FOLDER}/*.jsonl")

#: Most bytes the files of :data:`RECORDS_FILES` may take together on the Hub; more are refused before any is
#: downloaded. ``train-scorer`` reads them all into memory. A pair is one JSON line of a few hundred bytes (its
#: estimator scores, and the per-seed accuracies of a fine-tuned pair): a million pairs is under 1 GB. A task's tokens
#: in ``tasks.npz`` are its class prototypes and label-name embeddings, float32 of a few hundred to a thousand wide a
#: class: some 300 KB for a 100-class task, so 5,000 such tasks are 1.5 GB. 4 GiB holds both with room, where a
#: hostile repo could hold any number of files of any size.
MAX_RECORDS_BYTES = 4 * 2**30

_CARD = """---
tags:
- hf-spider
- model-selection
- transferability
---

# Model-selection records built by hf-spider

{pairs} labelled (model, task) pairs: {models} candidate models on {tasks} tasks sampled from {datasets} dataset(s),
scored with {estimators}{finetune}. Built with `hf-spider build-records`; the format (manifest, task tokens, one JSON
line per pair) is documented in hf-spider's `docs/records.md`.

```python
from hf_spider.metarecords import load_meta_records

meta = load_meta_records("{repo_id}")
meta.records.estimator_scores  # model, target (task id), modality, estimator, score
meta.records.accuracy          # model, target, modality, accuracy (fine-tuned pairs only)
meta.tasks                     # task id -> TaskTokens (class prototypes, label-name embeddings, statistics)
```
"""


def push_meta_records(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a records folder to the Hub dataset repo ``repo_id`` (created if needed) in one commit.

    A dataset card (``README.md``) summarising the records is written into the folder first. Pushing the same folder
    again uploads only the files that changed (new pair files), so pushing after each resumed run is cheap.

    Returns:
        The commit URL.

    Raises:
        InvalidRecordsError: ``folder`` is not a records folder.
    """
    from huggingface_hub import HfApi

    meta = read_meta_records(folder)
    manifest = meta.manifest
    fine_tuned = int(meta.records.accuracy.shape[0])
    card = _CARD.format(
        pairs=len(meta.pairs) - len(meta.failures),
        models=len(manifest["candidates"]),
        tasks=len(manifest["tasks"]),
        datasets=len(manifest["datasets"]),
        estimators=", ".join(manifest["settings"]["estimators"]),
        finetune=f", {fine_tuned} of them also fine-tuned" if fine_tuned else "",
        repo_id=repo_id,
    )
    with atomic_write(Path(folder) / "README.md") as f:
        f.write(card)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message=commit_message or f"hf-spider build-records: {len(meta.pairs)} pairs",
        allow_patterns=[MANIFEST_FILE, "tasks.npz", "pairs/*.jsonl", "README.md"],
    )
    logger.info("pushed %d pairs to %s", len(meta.pairs), commit.commit_url)
    return str(commit.commit_url)


def load_meta_records(
    source: str | os.PathLike[str], *, revision: str | None = None, token: str | None = None
) -> MetaRecords:
    """Read records from a local folder or a Hub dataset repo id (downloaded with ``snapshot_download``).

    From the Hub, only :data:`RECORDS_FILES` are downloaded, and their sizes are listed first (one recursive listing
    of the repo, :func:`hf_spider.hub.sizes.listed_sizes`; none offline): more than :data:`MAX_RECORDS_BYTES` in all is
    refused before any is downloaded. Online, the listing is asked on every load, as ``snapshot_download`` itself asks
    the Hub for the revision on every load.

    Raises:
        InvalidRecordsError: neither a records folder nor a reachable Hub dataset repo holding one, or records over
            the cap.
    """
    if Path(source).is_dir():
        return read_meta_records(source)
    from huggingface_hub import snapshot_download

    from ..hub.sizes import listed_sizes

    try:
        sizes = listed_sizes(
            str(source),
            RECORDS_FILES,
            what=f"the sizes of {source}'s records",
            repo_type="dataset",
            revision=revision,
            token=token,
        )
        _check_records_size(str(source), revision, sizes or {})
        local = snapshot_download(
            str(source), repo_type="dataset", revision=revision, token=token, allow_patterns=list(RECORDS_FILES)
        )
    except InvalidRecordsError:
        raise
    except Exception as exc:  # HfHubHTTPError, RepositoryNotFoundError, offline and validation errors
        raise InvalidRecordsError(
            f"'{source}' is neither a records folder nor a readable Hub dataset repo ({_first_line(exc)}); "
            "check the path or repo id, the token and HF_HUB_OFFLINE"
        ) from exc
    return read_meta_records(RecordsFolder(local).path)


def _check_records_size(repo_id: str, revision: str | None, sizes: dict[str, int]) -> None:
    """Refuse records whose files take more than :data:`MAX_RECORDS_BYTES` together, naming the largest.

    Raises:
        InvalidRecordsError: the total, the largest file and its size, the cap and the fix.
    """
    total = sum(sizes.values())
    if total <= MAX_RECORDS_BYTES:
        return
    largest = max(sizes, key=lambda name: sizes[name])
    at = f" at revision '{revision}'" if revision else ""
    raise InvalidRecordsError(
        f"the records of Hub dataset '{repo_id}'{at} take {total:,} bytes in {len(sizes)} files (the largest, "
        f"{largest}, {sizes[largest]:,} bytes), over the {MAX_RECORDS_BYTES:,} records may take, so they are not "
        "downloaded; check the repo id, or pass a records folder or a repo `hf-spider build-records --push-to-hub` "
        "wrote"
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
