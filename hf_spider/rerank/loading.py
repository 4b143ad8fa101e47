"""Load one checked candidate into memory through the ``transformers`` Auto classes, and free it again.

Three repo layouts load:

* **transformers** repos: ``AutoModelForImageClassification`` / ``AutoModelForSequenceClassification`` when the
  config names a classification head, else ``AutoModel``;
* **timm** repos (``config.json`` with ``architecture`` and ``pretrained_cfg``, as every ``timm/*`` repo has):
  transformers' ``TimmWrapper`` (``AutoModel`` / ``AutoModelForImageClassification`` and ``AutoImageProcessor`` read
  them; the ``timm`` package must be installed, the ``timm`` extra);
* **sentence-transformers** repos (``modules.json``): the ``Transformer`` module through ``AutoModel``, with the
  module stack on top read by :mod:`.sentence_modules`.

:func:`load_candidate` does no preprocessing, so a caller can load the next candidate in a background thread while
the current one runs (``hf_spider.rerank.distributed`` does).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CandidateLoadError
from ..hub.records import ModelRecord
from .checks import (
    check_config,
    check_loading_info,
    check_parameters,
    described_parameters,
    memory_reason,
    weights_parameters,
)
from .fetch import fetch_candidate, first_line, read_json
from .options import ForwardOptions
from .sentence_modules import SentencePooling, read_sentence_modules

#: Class-name suffixes of models with a classification head (its input is the feature :mod:`.forward` reads).
HEAD_SUFFIXES = ("ForSequenceClassification", "ForImageClassification")
#: Attributes transformers' classification models keep their head under, tried in order (:func:`classification_heads`).
HEAD_ATTRIBUTES = ("classifier", "score", "fc", "head")

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
        processor_key: hash of the files that decide its preprocessing (:class:`~.preprocess.PreparedInputs` caches
            by it).
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
    config, layout = check_repo(model_id, root, modality)
    sentence = (
        read_sentence_modules(model_id, root, options, use_safetensors) if layout == "sentence-transformers" else None
    )
    model = load_model(
        model_id,
        folder,
        modality,
        layout,
        use_safetensors,
        trust_remote_code=options.trust_remote_code,
        device_map=options.device_map,
    )
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


def check_repo(model_id: str, folder: Path, modality: str) -> tuple[dict[str, Any], str]:
    """Read a fetched repo's ``config.json`` and its layout, and run the checks that need only its configs
    (:func:`.checks.check_config`: timm keys that load files, stacked modules, image sizes); nothing is built.

    Raises:
        CandidateLoadError: the config is unreadable, no JSON object, or asks for something refused.
    """
    config = read_json(model_id, folder / "config.json")
    if not isinstance(config, dict):
        raise CandidateLoadError(model_id, "config.json is not a JSON object; drop it")
    layout = _layout(folder, config)
    check_config(model_id, folder, config, modality=modality, layout=layout)
    return config, layout


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


def load_model(
    model_id: str,
    folder: str,
    modality: str,
    layout: str,
    use_safetensors: bool,
    *,
    trust_remote_code: bool,
    device_map: Any = None,
    num_labels: int | None = None,
) -> Any:
    """Build the model of a checked repo (:func:`check_repo` gives ``layout``), after checking on the meta device
    that its config describes no more than its weights hold, and check that the weights filled it (:mod:`.checks`).

    Args:
        num_labels: build the classification model with a new head of this many classes (labels ``"0"``, ``"1"``,
            ...) whatever the config says: the fine-tunes of ``hf-spider build-records``
            (:mod:`hf_spider.metarecords.finetune`) load through the same checks as stage two. The head's tensors may
            then differ in shape from the weights' (:func:`.checks.check_loading_info` with ``new_head``).

    Raises:
        CandidateLoadError: the config describes far more than the weights hold, the weights do not fill the model,
            or transformers cannot build or load it (the reason names which).
    """
    transformers = transformers_lib()
    head_class = {
        "image": transformers.AutoModelForImageClassification,
        "text": transformers.AutoModelForSequenceClassification,
    }[modality]
    try:
        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
        if layout == "timm":
            # transformers' TimmWrapper passes num_classes itself and fails when model_args repeats it
            model_args = dict(getattr(config, "model_args", None) or {})
            if "num_classes" in model_args:
                model_args.pop("num_classes")
                config.model_args = model_args
            has_head = (config.num_labels or 0) > 0
        else:
            has_head = layout == "transformers" and any(a.endswith(HEAD_SUFFIXES) for a in config.architectures or ())
        if num_labels is not None:  # what from_pretrained(num_labels=, id2label=, label2id=) sets, in that order
            config.num_labels = num_labels
            config.id2label = {i: str(i) for i in range(num_labels)}
            config.label2id = {str(i): i for i in range(num_labels)}
            has_head = True
        model_class = head_class if has_head else transformers.AutoModel
        if use_safetensors:  # pickle weights (opted in) have no header to count without unpickling them
            described = described_parameters(model_class, config, trust_remote_code=trust_remote_code)
            check_parameters(model_id, described, weights_parameters(model_id, Path(folder)))
        model, info = model_class.from_pretrained(
            folder,
            config=config,
            use_safetensors=use_safetensors,
            trust_remote_code=trust_remote_code,
            device_map=device_map,
            ignore_mismatched_sizes=True,  # reported by check_loading_info, naming the tensor
            output_loading_info=True,
        )
        check_loading_info(model_id, model, info, layout=layout, has_head=has_head, new_head=num_labels is not None)
    except CandidateLoadError:
        raise
    except ImportError as exc:
        fix = "; pip install 'hf-spider[timm]'" if layout == "timm" else ""
        raise CandidateLoadError(
            model_id, f"its layout needs a package that is missing ({first_line(exc)}){fix}"
        ) from exc
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, OOM, ... for a broken repo
        reason = memory_reason(exc) or f"transformers could not load it ({first_line(exc)})"
        raise CandidateLoadError(model_id, reason) from exc
    return model.eval()


def classification_heads(model_id: str, model: Any, layout: str) -> tuple[Any, ...]:
    """The module(s) holding the classification head of a model with one: stage two reads its input
    (:mod:`.forward`), build-records draws it afresh (:mod:`hf_spider.metarecords.finetune`).

    transformers' classes keep it under one of :data:`HEAD_ATTRIBUTES`. transformers' ``TimmWrapper`` (the timm
    layout) keeps the timm model under ``timm_model`` and the head where the architecture puts it (``fc``, ``head``,
    ``head.fc``, ``classifier``, ...), which timm's own ``get_classifier()`` returns, as two modules (class and
    distillation token) for a distilled DeiT. ``get_output_embeddings()`` is no general route: it returns a language
    model's ``lm_head``, and ``None`` for these.

    Raises:
        CandidateLoadError: a transformers model with its head under none of :data:`HEAD_ATTRIBUTES`.
    """
    if layout == "timm":
        classifier = model.timm_model.get_classifier()
        return tuple(classifier) if isinstance(classifier, tuple | list) else (classifier,)
    for name in HEAD_ATTRIBUTES:
        if hasattr(model, name):
            return (getattr(model, name),)
    raise CandidateLoadError(
        model_id, f"its classification head is none of the attributes {', '.join(HEAD_ATTRIBUTES)}; drop it"
    )


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
