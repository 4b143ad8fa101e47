"""Load one candidate with the ``transformers`` Auto classes, safely, and run it on the task's samples.

Hub repos are untrusted content: the safety checks run on ``config.json`` and the file list *before* any weight is
downloaded. A config with ``auto_map`` needs the repo's own Python code, and weights that exist only as pickle
(``.bin``, ``.pt``, ``.ckpt``) can run code when unpickled; both are refused unless the caller opts in. The revision
is the index's SHA, so the model that was ranked is the model that is downloaded.

Features are what a linear probe (and so LogME, LEEP, NCE) would see: the input of the classification head when the
model has one, else the pooling its card prescribes (a sentence-transformers ``1_Pooling/config.json``, else mean
pooling for text and the CLS token or global average for images).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CandidateLoadError
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
    """

    trust_remote_code: bool = False
    allow_pickle: bool = False
    batch_size: int = 32
    device_map: str | None = None
    local_dir: str | None = None
    token: str | bool | None = None
    max_length: int = 512


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
        CandidateLoadError: unsafe, missing or unreachable candidate (the reason says which).
    """
    model_id = record.repo_id
    if options.local_dir is not None:
        return _check_folder(model_id, Path(options.local_dir) / model_id, options)

    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    if record.sha is None:
        logger.warning("candidate %s has no SHA in the index; downloading the current main revision", model_id)
    try:
        if constants.HF_HUB_OFFLINE:
            cached = snapshot_download(
                model_id,
                revision=record.sha,
                allow_patterns=_patterns(options, pickle=options.allow_pickle),
                local_files_only=True,
            )
            return _check_folder(model_id, Path(cached), options)
        files = HfApi().list_repo_files(model_id, revision=record.sha, token=options.token)
        config_path = hf_hub_download(model_id, "config.json", revision=record.sha, token=options.token)
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        use_safetensors, patterns = check_candidate(model_id, files, config, options)
        folder = snapshot_download(model_id, revision=record.sha, allow_patterns=patterns, token=options.token)
    except CandidateLoadError:
        raise
    except (HfHubHTTPError, OSError, ValueError) as exc:
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
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    use_safetensors, _ = check_candidate(model_id, files, config, options)
    return str(folder), use_safetensors


def extract_features(
    record: ModelRecord,
    inputs: Sequence[Any],
    *,
    modality: str,
    options: ForwardOptions | None = None,
    device: Any = None,
) -> CandidateFeatures:
    """Load ``record``'s model, run it on ``inputs`` in batches without gradients, and free it.

    Args:
        record: the candidate (its ``repo_id`` and pinned ``sha``).
        inputs: ``[N]`` PIL images or strings, as the task's modality says.
        modality: ``"image"`` or ``"text"``.
        device: where to run (default: CPU); ignored when ``options.device_map`` is set.

    Raises:
        CandidateLoadError: the candidate is unsafe, cannot be loaded, does not fit the modality, or ran out of memory.
    """
    import torch

    options = options or ForwardOptions()
    model_id = record.repo_id
    if record.modality not in (None, modality):
        raise CandidateLoadError(model_id, f"it is a {record.modality} model and the task is {modality}; drop it")
    device = torch.device(device or "cpu")
    start = time.perf_counter()
    folder, use_safetensors = fetch_candidate(record, options)
    model, preprocessor = _load(model_id, folder, modality, use_safetensors, options, device)
    load_seconds = time.perf_counter() - start
    try:
        return _run(model_id, model, preprocessor, folder, inputs, modality, options, load_seconds)
    finally:
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _load(
    model_id: str, folder: str, modality: str, use_safetensors: bool, options: ForwardOptions, device: Any
) -> tuple[Any, Any]:
    import transformers

    auto: dict[str, tuple[Any, Any]] = {
        "image": (transformers.AutoImageProcessor, transformers.AutoModelForImageClassification),
        "text": (transformers.AutoTokenizer, transformers.AutoModelForSequenceClassification),
    }
    processor_class, head_class = auto[modality]
    trust = options.trust_remote_code
    try:
        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=trust)
        has_head = any(a.endswith(_HEAD_SUFFIXES) for a in config.architectures or ())
        model_class = head_class if has_head else transformers.AutoModel
        model = model_class.from_pretrained(
            folder, use_safetensors=use_safetensors, trust_remote_code=trust, device_map=options.device_map
        )
        preprocessor = processor_class.from_pretrained(folder, trust_remote_code=trust)
        if options.device_map is None:
            model = model.to(device)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, OOM, ... for a broken repo
        raise CandidateLoadError(model_id, f"transformers could not load it ({_first_line(exc)})") from exc
    return model.eval(), preprocessor


def _run(
    model_id: str,
    model: Any,
    preprocessor: Any,
    folder: str,
    inputs: Sequence[Any],
    modality: str,
    options: ForwardOptions,
    load_seconds: float,
) -> CandidateFeatures:
    import torch

    device = model.device
    pooling = _sentence_transformers_pooling(folder)
    features, probabilities = [], []
    forward_seconds = 0.0
    with torch.inference_mode(), _autocast(device), _head_input(model_id, model) as captured:
        for begin in range(0, len(inputs), options.batch_size):
            try:
                batch = _preprocess(preprocessor, inputs[begin : begin + options.batch_size], modality, options)
            except Exception as exc:  # tokenizers and image processors raise many types on inputs they reject
                raise CandidateLoadError(model_id, f"its processor rejected the samples ({_first_line(exc)})") from exc
            batch = {k: v.to(device) for k, v in batch.items()}
            tick = time.perf_counter()
            try:
                output = model(**batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
            except torch.OutOfMemoryError as exc:
                raise CandidateLoadError(
                    model_id, f"out of memory at batch size {options.batch_size}; lower batch_size or use device_map"
                ) from exc
            except RuntimeError as exc:
                raise CandidateLoadError(model_id, f"its forward pass failed ({_first_line(exc)})") from exc
            forward_seconds += time.perf_counter() - tick
            pooled = captured[-1] if captured else _pool(output, batch, modality, pooling)
            features.append(_flatten(pooled).float().cpu().numpy())
            if captured:  # a classification head: its logits are the source-class scores LEEP and NCE need
                probabilities.append(torch.softmax(output.logits.double(), dim=-1).cpu().numpy())
            captured.clear()
    return CandidateFeatures(
        features=np.concatenate(features).astype(np.float32),
        probabilities=np.concatenate(probabilities) if probabilities else None,
        forward_seconds=forward_seconds,
        load_seconds=load_seconds,
    )


def _preprocess(preprocessor: Any, chunk: Sequence[Any], modality: str, options: ForwardOptions) -> dict[str, Any]:
    if modality == "image":
        return dict(preprocessor(images=[img.convert("RGB") for img in chunk], return_tensors="pt"))
    limit = min(options.max_length, getattr(preprocessor, "model_max_length", options.max_length) or options.max_length)
    return dict(preprocessor(list(chunk), padding=True, truncation=True, max_length=limit, return_tensors="pt"))


@contextlib.contextmanager
def _head_input(model_id: str, model: Any) -> Iterator[list[Any]]:
    """Capture the input of a classification head: the features its own linear layer was trained on."""
    captured: list[Any] = []
    if not type(model).__name__.endswith(_HEAD_SUFFIXES):
        yield captured
        return
    head = next((getattr(model, a) for a in _HEAD_ATTRIBUTES if hasattr(model, a)), None)
    if head is None:
        raise CandidateLoadError(
            model_id, f"its classification head is none of the attributes {', '.join(_HEAD_ATTRIBUTES)}; drop it"
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


def _pool(output: Any, batch: dict[str, Any], modality: str, pooling: str | None) -> Any:
    hidden = getattr(output, "last_hidden_state", None)
    if hidden is None:
        return output.pooler_output
    if modality == "text":
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if pooling == "cls":
            return hidden[:, 0]
        if pooling == "max":
            return hidden.masked_fill(mask == 0, float("-inf")).amax(1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if hidden.ndim == 3:  # vision transformers: the CLS token their cards use as the image embedding
        return hidden[:, 0]
    pooler = getattr(output, "pooler_output", None)  # CNNs: global average pooling
    return pooler if pooler is not None else hidden.mean(dim=(2, 3))


def _sentence_transformers_pooling(folder: str) -> str | None:
    """``"mean"`` / ``"cls"`` / ``"max"`` from a sentence-transformers pooling config, ``None`` if there is none."""
    path = Path(folder) / "1_Pooling" / "config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text(encoding="utf-8"))
    for mode in ("cls", "max", "mean"):
        if config.get(f"pooling_mode_{mode}_token" if mode == "cls" else f"pooling_mode_{mode}_tokens"):
            return mode
    return None


def _autocast(device: Any) -> contextlib.AbstractContextManager[Any]:
    """bf16 (fp16 where bf16 is missing) autocast on CUDA; full precision on CPU, where it is the faster choice."""
    import torch

    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
