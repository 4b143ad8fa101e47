"""Check a candidate's repo before any weight is downloaded, then fetch what loading it needs.

Hub repos are untrusted content: the safety checks run on ``config.json`` and the file list *before* any weight is
downloaded. A config with ``auto_map`` needs the repo's own Python code, and weights that exist only as pickle
(``.bin``, ``.pt``, ``.ckpt``) can run code when unpickled; both are refused unless the caller opts in. The revision
is the index's SHA, so the model that was ranked is the model that is downloaded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import OFFLINE_CACHE_MISS, CandidateLoadError
from ..hub.index import not_a_file
from ..hub.records import ModelRecord
from .options import ForwardOptions

logger = logging.getLogger(__name__)

#: Suffixes of weight files that are unpickled on load (they may run arbitrary code).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
#: Pickle files of a repo that are not weights (``Trainer`` arguments): never a reason to load or to refuse.
_NOT_WEIGHTS = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt"})
#: Files a feature extractor needs besides the weights (configs, tokenizer and processor files, pooling config).
_SUPPORT_PATTERNS = ("*.json", "*.txt", "*.model", "*.tiktoken")


def check_candidate(
    model_id: str, files: Sequence[str], config: dict[str, Any], options: ForwardOptions
) -> tuple[bool, list[str]]:
    """Refuse unsafe candidates before any weight is fetched; return ``(use_safetensors, patterns to download)``.

    Raises:
        CandidateLoadError: the config needs remote code, the weights are pickle only, or there are no weights.
    """
    if "auto_map" in config and not options.trust_remote_code:
        raise CandidateLoadError(
            model_id,
            "config.json has 'auto_map' (the repo's own Python code); pass trust_remote_code=True "
            "(--trust-remote-code) only if you trust this repo",
        )
    names = [Path(f).name for f in files]
    has_safetensors = any(n.endswith(".safetensors") for n in names)
    pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES) and n not in _NOT_WEIGHTS)
    if has_safetensors:
        return True, _patterns(options, pickle=False)
    if not pickles:
        raise CandidateLoadError(model_id, "the repo holds no weights file (.safetensors); pick another revision")
    if not options.allow_pickle:
        raise CandidateLoadError(
            model_id,
            f"weights exist only as pickle ({', '.join(pickles[:3])}), which can run code when loaded; "
            "pass allow_pickle=True (--allow-pickle) only if you trust this repo",
        )
    return False, _patterns(options, pickle=True)


def fetch_candidate(record: ModelRecord, options: ForwardOptions) -> tuple[str, bool]:
    """Check the candidate, then fetch what loading it needs; returns ``(folder, use_safetensors)``.

    Only ``config.json`` and the file list are read before the safety checks. Hub files are pinned to
    ``record.sha``; offline (``HF_HUB_OFFLINE=1``) the cached snapshot of that revision is used.

    Raises:
        CandidateLoadError: unsafe, missing or unreachable candidate (the reason says which; offline without the
            files in the local cache, it names the ``hf download`` command that fetches them).
    """
    import httpx2  # huggingface_hub's HTTP client; a connection error is no OSError

    model_id = record.repo_id
    if options.local_dir is not None:
        return _check_folder(model_id, Path(options.local_dir) / model_id, options)

    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if record.sha is None:
        logger.info("candidate %s has no SHA in the index; downloading the current main revision", model_id)
    try:
        if constants.HF_HUB_OFFLINE:
            try:
                cached = snapshot_download(
                    model_id,
                    revision=record.sha,
                    allow_patterns=_patterns(options, pickle=options.allow_pickle),
                    local_files_only=True,
                )
            except LocalEntryNotFoundError as exc:
                revision = f" --revision {record.sha}" if record.sha else ""
                raise CandidateLoadError(
                    model_id,
                    f"its files are {OFFLINE_CACHE_MISS} and HF_HUB_OFFLINE is set; "
                    f"run `hf download {model_id}{revision}` while online",
                ) from exc
            return _check_folder(model_id, Path(cached), options)
        files = HfApi().list_repo_files(model_id, revision=record.sha, token=options.token)
        config_path = hf_hub_download(model_id, "config.json", revision=record.sha, token=options.token)
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        use_safetensors, patterns = check_candidate(model_id, files, config, options)
        folder = snapshot_download(model_id, revision=record.sha, allow_patterns=patterns, token=options.token)
    except CandidateLoadError:
        raise
    except (HfHubHTTPError, OSError, ValueError, httpx2.HTTPError) as exc:
        raise CandidateLoadError(model_id, f"could not fetch it from the Hub ({first_line(exc)})") from exc
    return folder, use_safetensors


def _patterns(options: ForwardOptions, *, pickle: bool) -> list[str]:
    """What to fetch: configs, tokenizer and processor files, the weights, and the repo's code only when trusted."""
    return [
        *_SUPPORT_PATTERNS,
        "*.safetensors",
        *(f"*{suffix}" for suffix in PICKLE_SUFFIXES if pickle),
        *(["*.py"] if options.trust_remote_code else []),
    ]


def _check_folder(model_id: str, folder: Path, options: ForwardOptions) -> tuple[str, bool]:
    """The safety checks on a candidate already on disk (``--local-dir`` or an offline cached snapshot)."""
    if not (folder / "config.json").is_file():
        raise CandidateLoadError(model_id, f"no config.json under '{folder}'; check the folder and the repo id")
    files = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
    config = read_json(model_id, folder / "config.json")
    use_safetensors, _ = check_candidate(model_id, files, config, options)
    return str(folder), use_safetensors


def read_json(model_id: str, path: Path) -> Any:
    """A repo's JSON file, read as the crawler reads a ``config.json`` (:func:`~hf_spider.hub.cards.read_head`: at most
    ``HubLimits.file_bytes``, so a runaway file cannot exhaust the memory); an unreadable one refuses the candidate
    (its error names the file)."""
    from ..hub.cards import read_head
    from ..hub.sanitize import LIMITS

    if not path.is_file():  # a FIFO would block the read, a device never end it
        raise CandidateLoadError(model_id, f"'{path.name}' {not_a_file(path)}; drop it")
    try:
        head, longer = read_head(path, limits=LIMITS)
        if longer:
            raise CandidateLoadError(
                model_id,
                f"'{path.name}' is larger than {LIMITS.file_bytes // 2**20} MiB, too large for a config; drop it",
            )
        return json.loads(head.decode("utf-8"))
    except RecursionError:
        raise CandidateLoadError(model_id, f"'{path.name}' nests too deeply to be a config; drop it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CandidateLoadError(model_id, f"'{path.name}' is unreadable ({first_line(exc)}); drop it") from exc


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (library errors can run to pages), for a one-line reason."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
