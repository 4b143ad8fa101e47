"""Load one candidate safely, run it on the task's samples, and return what a linear probe would see.

Hub repos are untrusted content: the safety checks run on ``config.json`` and the file list *before* any weight is
downloaded. A config with ``auto_map`` needs the repo's own Python code, and weights that exist only as pickle
(``.bin``, ``.pt``, ``.ckpt``) can run code when unpickled; both are refused unless the caller opts in. The revision
is the index's SHA, so the model that was ranked is the model that is downloaded.

Three repo layouts load through the ``transformers`` Auto classes:

* **transformers** repos: ``AutoModelForImageClassification`` / ``AutoModelForSequenceClassification`` when the
  config names a classification head, else ``AutoModel``;
* **timm** repos (``config.json`` with ``architecture`` and ``pretrained_cfg``, as every ``timm/*`` repo has):
  transformers' ``TimmWrapper`` (``AutoModel`` / ``AutoModelForImageClassification`` and ``AutoImageProcessor`` read
  them; the ``timm`` package must be installed, the ``timm`` extra);
* **sentence-transformers** repos (``modules.json``): the ``Transformer`` module through ``AutoModel`` and the
  repo's own ``Pooling`` / ``Dense`` / ``Normalize`` modules applied as their configs say, so the features are the
  sentence embedding the card promises. A module of another type is refused (it would need the repo's code).

Features are the input of the classification head when the model has one (with its softmax as source-class
probabilities for LEEP and NCE), else the layout's pooled output (the sentence embedding; the CLS token of a vision
transformer; the pooled output of a CNN; mean pooling for other text encoders).

Cost: the samples are preprocessed once per distinct processor configuration (:class:`PreparedInputs`, keyed by the
bytes of the processor files), and :func:`load_candidate` does no preprocessing, so a caller can load the next
candidate in a background thread while the current one runs (``hf_spider.rerank.distributed`` does).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OFFLINE_CACHE_MISS, CandidateLoadError
from ..hub.records import ModelRecord

logger = logging.getLogger(__name__)

#: Suffixes of weight files that are unpickled on load (they may run arbitrary code).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
#: Pickle files of a repo that are not weights (``Trainer`` arguments): never a reason to load or to refuse.
_NOT_WEIGHTS = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt"})
#: Files a feature extractor needs besides the weights (configs, tokenizer and processor files, pooling config).
_SUPPORT_PATTERNS = ("*.json", "*.txt", "*.model", "*.tiktoken")
_HEAD_SUFFIXES = ("ForSequenceClassification", "ForImageClassification")
_HEAD_ATTRIBUTES = ("classifier", "score", "fc", "head")
#: Files whose bytes decide what a tokenizer or image processor does (the preprocessing cache key).
_PROCESSOR_FILES = (
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "sentence_bert_config.json",
)
#: sentence-transformers module types this loader runs (the last part of ``modules.json``'s ``type``).
ST_MODULES = frozenset({"Transformer", "Pooling", "Dense", "Normalize"})
#: Pooling modes of sentence-transformers' ``Pooling`` module that this loader implements (all of them).
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
#: Activations a sentence-transformers ``Dense`` module may name (``torch.nn`` classes without parameters).
_ST_ACTIVATIONS = frozenset({"Identity", "Tanh", "ReLU", "GELU", "Sigmoid", "SiLU", "LeakyReLU"})
#: Preprocessed sample sets kept at once (each distinct processor configuration has one).
_PREPARED_CACHE = 4


@dataclass(frozen=True)
class ForwardOptions:
    """How candidates are fetched, trusted and run.

    Args:
        trust_remote_code: run the repo's own code for configs with ``auto_map`` (off: such candidates are skipped).
        allow_pickle: load weights that exist only as pickle files (off: such candidates are skipped).
        batch_size: samples per forward pass.
        device_map: passed to ``from_pretrained`` (``"auto"`` spreads a large candidate over the visible devices);
            ``None`` puts the whole model on this process's device.
        local_dir: a folder holding candidates as ``<local_dir>/<repo_id>``, used instead of the Hub.
        token: Hub token for gated or private candidates (never logged).
        max_length: token cap for text models (the model's own limit applies when lower).
        prefetch: load the next candidate in a background thread while the current one runs (two models are then in
            memory at once; off when ``device_map`` is set, since that places weights on the devices directly).
        feature_cache: read and write the features of (revision, samples) in the feature cache
            (:mod:`hf_spider.rerank.cache`), so running a candidate on the same samples again runs no forward pass.
    """

    trust_remote_code: bool = False
    allow_pickle: bool = False
    batch_size: int = 32
    device_map: str | None = None
    local_dir: str | None = None
    token: str | bool | None = None
    max_length: int = 512
    prefetch: bool = True
    feature_cache: bool = True


@dataclass(frozen=True, eq=False)
class CandidateFeatures:
    """What one candidate produced on the samples.

    Args:
        features: ``[N, D]`` float32 pooled features, one row per sample.
        probabilities: ``[N, C_src]`` float64 softmax over the candidate's own classes, ``None`` without a head.
        forward_seconds: time spent inside the model's forward calls only.
        load_seconds: time spent fetching and loading the candidate.
    """

    features: np.ndarray
    probabilities: np.ndarray | None
    forward_seconds: float
    load_seconds: float


@dataclass(frozen=True, eq=False)
class SentencePooling:
    """The modules a sentence-transformers repo stacks on its transformer, read from their configs.

    Args:
        modes: pooling modes in concatenation order (``cls``, ``max``, ``mean``, ``mean_sqrt_len_tokens``,
            ``weightedmean``, ``lasttoken``).
        dense: ``(weight [out, in], bias [out] or None, activation name)`` per ``Dense`` module, in order.
        normalize: a ``Normalize`` module ends the stack (unit-length embeddings).
        max_seq_length: the ``Transformer`` module's token cap from ``sentence_bert_config.json`` (older repos; newer
            ones store it as the tokenizer's ``model_max_length``), if set.
    """

    modes: tuple[str, ...]
    dense: tuple[tuple[Any, Any, str], ...] = ()
    normalize: bool = False
    max_seq_length: int | None = None


@dataclass(eq=False)
class LoadedCandidate:
    """One candidate in memory, ready to run: the model in eval mode and what its preprocessing is keyed by.

    Not frozen: :func:`release` drops the model so its memory is freed at once.

    Args:
        model_id: the repo id.
        model: the ``transformers`` model (eval mode).
        folder: where its files are (the processor is loaded from there when its key is new).
        modality: ``"image"`` or ``"text"``.
        layout: ``"transformers"``, ``"timm"`` or ``"sentence-transformers"``.
        processor_key: hash of the files that decide its preprocessing (:class:`PreparedInputs` caches by it).
        sentence: the sentence-transformers module stack, ``None`` for the other layouts.
        load_seconds: time spent fetching and loading it.
    """

    model_id: str
    model: Any
    folder: str
    modality: str
    layout: str
    processor_key: str
    sentence: SentencePooling | None = None
    load_seconds: float = 0.0
    trust_remote_code: bool = field(default=False, repr=False)


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
        raise CandidateLoadError(model_id, f"could not fetch it from the Hub ({_first_line(exc)})") from exc
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
    config = _read_json(model_id, folder / "config.json")
    use_safetensors, _ = check_candidate(model_id, files, config, options)
    return str(folder), use_safetensors


# ------------------------------------------------------------------------------------------------ loading


def load_candidate(
    record: ModelRecord,
    *,
    modality: str,
    options: ForwardOptions | None = None,
    device: Any = None,
) -> LoadedCandidate:
    """Fetch ``record``'s repo, check it and load its model (no preprocessing, no forward pass).

    Safe to call from a background thread while another candidate runs; the model lands on ``device`` (default: the
    CPU; ``options.device_map`` places it instead).

    Raises:
        CandidateLoadError: the candidate is unsafe, cannot be loaded or does not fit the modality.
    """
    options = options or ForwardOptions()
    model_id = record.repo_id
    if record.modality not in (None, modality):
        raise CandidateLoadError(model_id, f"it is a {record.modality} model and the task is {modality}; drop it")
    start = time.perf_counter()
    folder, use_safetensors = fetch_candidate(record, options)
    root = Path(folder)
    config = _read_json(model_id, root / "config.json")
    layout = _layout(root, config)
    sentence = (
        _sentence_modules(model_id, root, options, use_safetensors) if layout == "sentence-transformers" else None
    )
    model = _load_model(model_id, folder, modality, layout, use_safetensors, options)
    if device is not None and options.device_map is None:
        model = model.to(device)
    return LoadedCandidate(
        model_id=model_id,
        model=model,
        folder=folder,
        modality=modality,
        layout=layout,
        processor_key=_processor_key(root, config, modality, layout),
        sentence=sentence,
        load_seconds=time.perf_counter() - start,
        trust_remote_code=options.trust_remote_code,
    )


def _layout(folder: Path, config: dict[str, Any]) -> str:
    if (folder / "modules.json").is_file():
        return "sentence-transformers"
    if "architecture" in config and config.get("model_type") in (None, "timm_wrapper"):
        return "timm"
    return "transformers"


@functools.cache
def transformers_lib() -> Any:
    """The ``transformers`` module, imported once (not on every candidate)."""
    import transformers

    return transformers


def warm_up(modality: str) -> None:
    """Import what loading any candidate of ``modality`` needs (transformers' model machinery, Auto classes and
    processors): a one-time cost of several seconds that a caller can pay in a background thread while it reads the
    task, instead of on the first candidate (``hf-spider rerank`` does)."""
    import importlib

    importlib.import_module("transformers.modeling_utils")  # the model machinery every from_pretrained needs
    transformers = transformers_lib()
    with contextlib.suppress(ImportError, AttributeError):  # transformers >= 5 builds this table on the first load
        importlib.import_module("transformers.conversion_mapping").get_checkpoint_conversion_mapping("bert")
    _ = transformers.AutoConfig, transformers.AutoModel
    if modality == "image":
        _ = transformers.AutoImageProcessor, transformers.AutoModelForImageClassification
    else:
        _ = transformers.AutoTokenizer, transformers.AutoModelForSequenceClassification


def _load_model(
    model_id: str, folder: str, modality: str, layout: str, use_safetensors: bool, options: ForwardOptions
) -> Any:
    transformers = transformers_lib()
    head_class = {
        "image": transformers.AutoModelForImageClassification,
        "text": transformers.AutoModelForSequenceClassification,
    }[modality]
    trust = options.trust_remote_code
    try:
        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=trust)
        if layout == "timm":
            # transformers' TimmWrapper passes num_classes itself and fails when model_args repeats it
            model_args = dict(getattr(config, "model_args", None) or {})
            if "num_classes" in model_args:
                model_args.pop("num_classes")
                config.model_args = model_args
            has_head = (config.num_labels or 0) > 0
        else:
            has_head = layout == "transformers" and any(a.endswith(_HEAD_SUFFIXES) for a in config.architectures or ())
        model_class = head_class if has_head else transformers.AutoModel
        model = model_class.from_pretrained(
            folder,
            config=config,
            use_safetensors=use_safetensors,
            trust_remote_code=trust,
            device_map=options.device_map,
        )
    except ImportError as exc:
        fix = "; pip install 'hf-spider[timm]'" if layout == "timm" else ""
        raise CandidateLoadError(
            model_id, f"its layout needs a package that is missing ({_first_line(exc)}){fix}"
        ) from exc
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, OOM, ... for a broken repo
        raise CandidateLoadError(model_id, f"transformers could not load it ({_first_line(exc)})") from exc
    return model.eval()


def _sentence_modules(model_id: str, folder: Path, options: ForwardOptions, use_safetensors: bool) -> SentencePooling:
    """Read a sentence-transformers repo's module stack; refuse module types that would need the repo's code."""
    modules = _read_json(model_id, folder / "modules.json")
    modes: tuple[str, ...] = ("mean",)
    dense = []
    normalize = False
    max_seq_length = None
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if not str(module.get("type", "")).startswith("sentence_transformers.") or kind not in ST_MODULES:
            raise CandidateLoadError(
                model_id,
                f"modules.json names module type '{module.get('type')}', which needs code this loader does not run "
                f"(supported: {', '.join(sorted(ST_MODULES))}); drop it",
            )
        path = folder / str(module.get("path", ""))
        if path.resolve() != folder.resolve() and folder.resolve() not in path.resolve().parents:
            raise CandidateLoadError(model_id, f"modules.json points outside the repo ({module.get('path')}); drop it")
        if kind == "Transformer":
            if path.resolve() != folder.resolve():
                raise CandidateLoadError(model_id, "its Transformer module is not the repo root; drop it")
            bert_config = path / "sentence_bert_config.json"
            if bert_config.is_file():
                max_seq_length = _read_json(model_id, bert_config).get("max_seq_length")
        elif kind == "Pooling":
            modes = _pooling_modes(_read_json(model_id, path / "config.json"))
            unknown = sorted(set(modes) - set(POOLING_MODES))
            if unknown:
                raise CandidateLoadError(model_id, f"its Pooling module uses mode(s) {', '.join(unknown)}; drop it")
        elif kind == "Dense":
            dense.append(_dense(model_id, path, options, use_safetensors))
        elif kind == "Normalize":
            normalize = True
    return SentencePooling(modes=modes, dense=tuple(dense), normalize=normalize, max_seq_length=max_seq_length)


def _pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    """The pooling modes of a ``1_Pooling/config.json``: ``pooling_mode`` (sentence-transformers >= 5, a name or a
    list) or the older ``pooling_mode_*`` flags, which concatenate in the library's fixed order."""
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        flags = {
            "cls": "pooling_mode_cls_token",
            "max": "pooling_mode_max_tokens",
            "mean": "pooling_mode_mean_tokens",
            "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
            "weightedmean": "pooling_mode_weightedmean_tokens",
            "lasttoken": "pooling_mode_lasttoken",
        }
        modes = tuple(mode for mode, key in flags.items() if config.get(key))
    return modes or ("mean",)


def _dense(model_id: str, path: Path, options: ForwardOptions, use_safetensors: bool) -> tuple[Any, Any, str]:
    """``(weight, bias, activation)`` of a sentence-transformers ``Dense`` module (safetensors unless allowed)."""
    config = _read_json(model_id, path / "config.json")
    activation = str(config.get("activation_function", "torch.nn.modules.linear.Identity")).rsplit(".", 1)[-1]
    if activation not in _ST_ACTIVATIONS:
        raise CandidateLoadError(model_id, f"its Dense module uses activation '{activation}'; drop it")
    safe = path / "model.safetensors"
    if safe.is_file():
        from safetensors.torch import load_file

        weights = load_file(str(safe))
    elif options.allow_pickle and (path / "pytorch_model.bin").is_file():
        import torch

        weights = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise CandidateLoadError(
            model_id,
            f"its Dense module '{path.name}' has no model.safetensors; pass allow_pickle=True (--allow-pickle) only "
            "if you trust this repo",
        )
    return weights["linear.weight"], weights.get("linear.bias"), activation


def _processor_key(folder: Path, config: dict[str, Any], modality: str, layout: str) -> str:
    """Hash of everything that decides the candidate's preprocessing: equal keys give equal tensors."""
    digest = hashlib.sha256(f"{modality}\0{layout}\0".encode())
    # a tokenizer without tokenizer_class is picked by model_type; a timm processor comes from pretrained_cfg
    for key in ("model_type", "tokenizer_class", "pretrained_cfg"):
        digest.update(f"{key}={json.dumps(config.get(key), sort_keys=True)}\0".encode())
    for name in _PROCESSOR_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ preprocessing


class PreparedInputs:
    """The samples, preprocessed once per distinct processor configuration and kept as CPU tensors in batches.

    Candidates whose processor files are byte-identical (every fine-tune of one base model, every repo of one timm
    family at one resolution) share one preprocessing pass. The last few configurations are kept.
    """

    def __init__(self, inputs: Sequence[Any], modality: str, options: ForwardOptions | None = None) -> None:
        self.inputs = list(inputs)
        self.modality = modality
        self.options = options or ForwardOptions()
        self._cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.seconds = 0.0
        self.configurations = 0  # distinct processor configurations preprocessed so far

    def batches(self, candidate: LoadedCandidate) -> list[dict[str, Any]]:
        """The batches for ``candidate``'s processor (loaded and run only on a new configuration).

        Raises:
            CandidateLoadError: its processor cannot be loaded or rejects the samples.
        """
        key = f"{candidate.processor_key}:{self._max_length(candidate)}"
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        start = time.perf_counter()
        processor = self._processor(candidate)
        size = self.options.batch_size
        try:
            out = [self._run(processor, candidate, self.inputs[b : b + size]) for b in range(0, len(self.inputs), size)]
        except Exception as exc:  # tokenizers and image processors raise many types on inputs they reject
            raise CandidateLoadError(
                candidate.model_id, f"its processor rejected the samples ({_first_line(exc)})"
            ) from exc
        self.seconds += time.perf_counter() - start
        self.configurations += 1
        self._cache[key] = out
        while len(self._cache) > _PREPARED_CACHE:
            self._cache.popitem(last=False)
        return out

    def _processor(self, candidate: LoadedCandidate) -> Any:
        transformers = transformers_lib()
        auto = transformers.AutoImageProcessor if self.modality == "image" else transformers.AutoTokenizer
        try:
            return auto.from_pretrained(candidate.folder, trust_remote_code=candidate.trust_remote_code)
        except Exception as exc:  # missing or broken processor files
            raise CandidateLoadError(
                candidate.model_id, f"its processor could not be loaded ({_first_line(exc)})"
            ) from exc

    def _max_length(self, candidate: LoadedCandidate) -> int:
        limit = self.options.max_length
        if candidate.sentence is not None and candidate.sentence.max_seq_length:
            limit = min(limit, int(candidate.sentence.max_seq_length))
        return limit

    def _run(self, processor: Any, candidate: LoadedCandidate, chunk: Sequence[Any]) -> dict[str, Any]:
        if self.modality == "image":
            return dict(processor(images=[img.convert("RGB") for img in chunk], return_tensors="pt"))
        limit = min(self._max_length(candidate), getattr(processor, "model_max_length", None) or 10**9)
        return dict(processor(list(chunk), padding=True, truncation=True, max_length=limit, return_tensors="pt"))


# ------------------------------------------------------------------------------------------------ running


def run_candidate(candidate: LoadedCandidate, prepared: PreparedInputs) -> CandidateFeatures:
    """Run a loaded candidate on the prepared samples without gradients; features and source-class probabilities.

    Raises:
        CandidateLoadError: the processor rejects the samples or the forward pass fails.
        torch.OutOfMemoryError: the batch does not fit on the device.
    """
    import torch

    model = candidate.model
    device = model.device
    batches = prepared.batches(candidate)
    features, probabilities = [], []
    forward_seconds = 0.0
    with torch.inference_mode(), _autocast(device), _head_input(candidate) as captured:
        for cpu_batch in batches:
            batch = {k: v.to(device) for k, v in cpu_batch.items()}
            tick = time.perf_counter()
            try:
                output = model(**batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
            except torch.OutOfMemoryError:
                raise  # the caller retries once at half the batch (CUDA) or reports the candidate failed
            except (RuntimeError, ValueError, TypeError) as exc:
                raise CandidateLoadError(candidate.model_id, f"its forward pass failed ({_first_line(exc)})") from exc
            forward_seconds += time.perf_counter() - tick
            if candidate.sentence is not None:
                pooled = _sentence_embedding(output.last_hidden_state, batch["attention_mask"], candidate.sentence)
            else:
                pooled = _flatten(captured[-1]) if captured else _pool(output, batch, candidate.modality)
            features.append(pooled.float().cpu().numpy())
            if captured:  # a classification head: its logits are the source-class scores LEEP and NCE need
                probabilities.append(torch.softmax(output.logits.double(), dim=-1).cpu().numpy())
            captured.clear()
    return CandidateFeatures(
        features=np.concatenate(features).astype(np.float32),
        probabilities=np.concatenate(probabilities) if probabilities else None,
        forward_seconds=forward_seconds,
        load_seconds=candidate.load_seconds,
    )


def release(candidate: LoadedCandidate) -> None:
    """Free a candidate's memory now (a CUDA cache too), rather than when the garbage collector gets to it.

    Most models are freed by dropping the last reference; a full ``gc.collect()`` (most of a second with torch and
    transformers loaded) runs only when the model is still alive through a reference cycle.
    """
    import torch

    device = candidate.model.device
    alive = weakref.ref(candidate.model)
    candidate.model = None
    if alive() is not None:
        gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def extract_features(
    record: ModelRecord,
    inputs: Sequence[Any],
    *,
    modality: str,
    options: ForwardOptions | None = None,
    device: Any = None,
    prepared: PreparedInputs | None = None,
) -> CandidateFeatures:
    """Load ``record``'s model once, run it on ``inputs`` in batches without gradients, and free it.

    Args:
        record: the candidate (its ``repo_id`` and pinned ``sha``).
        inputs: ``[N]`` PIL images or strings, as the task's modality says.
        modality: ``"image"`` or ``"text"``.
        device: where to run (default: CPU); ignored when ``options.device_map`` is set.
        prepared: a :class:`PreparedInputs` of these ``inputs`` shared between calls, so candidates with the same
            processor are preprocessed once (default: a fresh one).

    Raises:
        CandidateLoadError: the candidate is unsafe, cannot be loaded or does not fit the modality.
        torch.OutOfMemoryError: it does not fit on the device.
    """
    options = options or ForwardOptions()
    prepared = prepared or PreparedInputs(inputs, modality, options)
    candidate = load_candidate(record, modality=modality, options=options, device=device or "cpu")
    try:
        return run_candidate(candidate, prepared)
    finally:
        release(candidate)


@contextlib.contextmanager
def _head_input(candidate: LoadedCandidate) -> Iterator[list[Any]]:
    """Capture the input of a classification head: the features its own linear layer was trained on."""
    captured: list[Any] = []
    model = candidate.model
    if not type(model).__name__.endswith(_HEAD_SUFFIXES):
        yield captured
        return
    if candidate.layout == "timm":
        head = model.timm_model.get_classifier()
    else:
        head = next((getattr(model, a) for a in _HEAD_ATTRIBUTES if hasattr(model, a)), None)
    if head is None:
        raise CandidateLoadError(
            candidate.model_id,
            f"its classification head is none of the attributes {', '.join(_HEAD_ATTRIBUTES)}; drop it",
        )
    handle = head.register_forward_hook(lambda _module, args, _output: captured.append(args[0]))
    try:
        yield captured
    finally:
        handle.remove()


def _flatten(pooled: Any) -> Any:
    """``[B, D]`` from a head input: token sequences give their first (CLS) token, feature maps are flattened."""
    if pooled.ndim == 3:
        return pooled[:, 0]
    return pooled.flatten(1)


def _pool(output: Any, batch: dict[str, Any], modality: str) -> Any:
    hidden = getattr(output, "last_hidden_state", None)
    if hidden is None:
        return output.pooler_output
    if modality == "text":
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if hidden.ndim == 3:  # vision transformers: the CLS token their cards use as the image embedding
        return hidden[:, 0]
    pooler = getattr(output, "pooler_output", None)  # CNNs (timm's pre-logits included): global pooled output
    return pooler if pooler is not None else hidden.mean(dim=(2, 3))


def _sentence_embedding(hidden: Any, attention_mask: Any, stack: SentencePooling) -> Any:
    """The sentence-transformers module stack on token embeddings ``[B, T, H]``: pooling, dense layers, normalize."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    lengths = mask.sum(1).clamp(min=1e-9)
    parts = []
    for mode in stack.modes:
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(hidden.masked_fill(mask == 0, float("-inf")).amax(1))
        elif mode == "mean":
            parts.append((hidden * mask).sum(1) / lengths)
        elif mode == "mean_sqrt_len_tokens":
            parts.append((hidden * mask).sum(1) / lengths.sqrt())
        elif mode == "weightedmean":  # position-weighted mean (weights 1..T), as sentence-transformers defines it
            weights = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype)
            weights = weights.view(1, -1, 1) * mask
            parts.append((hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9))
        elif mode == "lasttoken":  # the last non-padding token (right padding)
            last = attention_mask.sum(1).long().clamp(min=1) - 1
            parts.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])
    embedding = torch.cat(parts, dim=-1)
    for weight, bias, activation in stack.dense:
        embedding = getattr(torch.nn, activation)()(
            torch.nn.functional.linear(embedding, weight.to(embedding), None if bias is None else bias.to(embedding))
        )
    if stack.normalize:
        embedding = torch.nn.functional.normalize(embedding, p=2, dim=1)
    return embedding


def _autocast(device: Any) -> contextlib.AbstractContextManager[Any]:
    """bf16 (fp16 where bf16 is missing) autocast on CUDA; full precision on CPU, where it is the faster choice."""
    import torch

    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _read_json(model_id: str, path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CandidateLoadError(model_id, f"'{path.name}' is unreadable ({_first_line(exc)}); drop it") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
