"""archi2vec: a fixed-length vector of a model's architecture, so a model never fine-tuned anywhere still gets a place.

Fennec (Bai et al., 2024, "Pre-Trained Model Recommendation for Downstream Fine-tuning", Sec. 4.3) encodes each
model's architecture so that unseen models inherit the transfer behaviour of architecturally close ones. Fennec
learns that vector from the model graph; we compute it from what ``config.json`` says (family, depth, width, patch and
kernel sizes, attention vs convolution, normalisation, parameter count), because that is all a Hub listing gives us.

Two inputs, one vector: a full ``config.json`` dict, or a :class:`ModelRecord`, which carries only ``model_type``,
``architectures``, ``num_parameters`` and ``input_size``. Every numeric block has a "known" flag, so a missing field
is never confused with a small one, and identical inputs always give identical vectors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..hub.records import ModelRecord

#: Families we know by name; anything else shares the ``other`` slot. Order is part of the vector layout.
FAMILIES: tuple[str, ...] = (
    "vit",
    "deit",
    "beit",
    "swin",
    "swinv2",
    "convnext",
    "convnextv2",
    "resnet",
    "van",
    "regnet",
    "efficientnet",
    "mobilenet_v2",
    "dinov2",
    "data2vec-vision",
    "levit",
    "poolformer",
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "camembert",
    "electra",
    "albert",
    "deberta",
    "deberta-v2",
    "fnet",
    "perceiver",
    "data2vec-text",
    "mpnet",
    "gpt2",
    "t5",
)
#: Token mixing of each family: self-attention, convolution, or neither (Fourier / pooling / MLP mixers).
_CONV_FAMILIES = frozenset({"convnext", "convnextv2", "resnet", "van", "regnet", "efficientnet", "mobilenet_v2"})
_OTHER_MIXERS = frozenset({"fnet", "poolformer"})
#: Families normalised with BatchNorm; every other family uses LayerNorm (the ``layer_norm_eps`` configs).
_BATCHNORM_FAMILIES = frozenset({"resnet", "van", "regnet", "efficientnet", "mobilenet_v2", "levit"})
#: The head an ``architectures`` entry ends with; order is part of the vector layout.
HEADS: tuple[str, ...] = ("ForImageClassification", "ForSequenceClassification", "ForMaskedLM", "Model")
#: Numeric features: (name, log-scale divisor) so each lands near [0, 1] for common models.
_NUMERIC: tuple[tuple[str, float], ...] = (
    ("log_parameters", math.log(1e10)),
    ("depth", math.log(100.0)),
    ("width", math.log(4096.0)),
    ("heads", math.log(64.0)),
    ("mlp_ratio", math.log(8.0)),
    ("patch_size", math.log(64.0)),
    ("kernel_size", math.log(16.0)),
    ("input_size", math.log(2048.0)),
    ("vocab_size", math.log(1e6)),
)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"family={f}" for f in (*FAMILIES, "other")),
    "mixer=attention",
    "mixer=convolution",
    "mixer=other",
    "norm=layer",
    "norm=batch",
    *(f"head={h}" for h in (*HEADS, "other")),
    "distilled",
    *(name for name, _ in _NUMERIC),
    *(f"known:{name}" for name, _ in _NUMERIC),
)
ARCHI2VEC_DIM = len(FEATURE_NAMES)


def archi2vec(config_or_record: ModelRecord | Mapping[str, Any]) -> np.ndarray:
    """``[ARCHI2VEC_DIM]`` float32 architecture vector of a ``config.json`` dict or a :class:`ModelRecord`.

    One-hot blocks (family, token mixer, normalisation, head) are followed by log-scaled sizes and a 0/1 flag per size
    saying whether it was known; unknown sizes are 0. Names are listed in :data:`FEATURE_NAMES`.

    Example:
        >>> v = archi2vec({"model_type": "vit", "num_hidden_layers": 12, "hidden_size": 768, "patch_size": 16})
        >>> bool(v.shape == (ARCHI2VEC_DIM,) and v[FEATURE_NAMES.index("family=vit")] == 1.0)
        True
    """
    config = _as_config(config_or_record)
    family = str(config.get("model_type") or "").lower()
    architectures = [str(a) for a in config.get("architectures") or ()]
    out = np.zeros(ARCHI2VEC_DIM, dtype=np.float32)

    def hot(name: str) -> None:
        out[FEATURE_NAMES.index(name)] = 1.0

    hot(f"family={family}" if family in FAMILIES else "family=other")
    if family in _CONV_FAMILIES:
        hot("mixer=convolution")
    elif family in _OTHER_MIXERS:
        hot("mixer=other")
    elif family:
        hot("mixer=attention")
    if family:
        hot("norm=batch" if family in _BATCHNORM_FAMILIES else "norm=layer")
    head = next((h for h in HEADS if architectures and architectures[0].endswith(h)), "other" if architectures else "")
    if head:
        hot(f"head={head}")
    if family.startswith("distil") or any("Teacher" in a or a.startswith("Distil") for a in architectures):
        hot("distilled")
    sizes = _sizes(config)
    for name, scale in _NUMERIC:
        value = sizes.get(name)
        if value is not None and value > 0:
            out[FEATURE_NAMES.index(name)] = math.log1p(value) / scale
            out[FEATURE_NAMES.index(f"known:{name}")] = 1.0
    return out


def archi2vec_matrix(items: Sequence[ModelRecord | Mapping[str, Any]]) -> np.ndarray:
    """``[len(items), ARCHI2VEC_DIM]`` vectors, one row per record or config."""
    if not items:
        return np.zeros((0, ARCHI2VEC_DIM), dtype=np.float32)
    return np.stack([archi2vec(item) for item in items])


def _as_config(config_or_record: ModelRecord | Mapping[str, Any]) -> dict[str, Any]:
    """A config-shaped dict; a record contributes only the fields it has (the rest stay unknown)."""
    if not isinstance(config_or_record, ModelRecord):
        return dict(config_or_record)
    record = config_or_record
    config: dict[str, Any] = {"model_type": record.model_type, "architectures": record.architectures}
    if record.num_parameters:
        config["num_parameters"] = record.num_parameters
    if record.input_size and record.modality == "image":
        config["image_size"] = record.input_size
    elif record.input_size:
        config["max_position_embeddings"] = record.input_size
    return config


def _first(config: Mapping[str, Any], *keys: str) -> Any:
    return next((config[k] for k in keys if config.get(k) is not None), None)


def _scalar(value: Any, reduce: str = "last") -> float | None:
    """A number from a config value that may be a list (per-stage sizes) or a pair (``[224, 224]``)."""
    if isinstance(value, (list, tuple)):
        numbers = [float(v) for v in value if isinstance(v, (int, float))]
        if not numbers:
            return None
        return float(sum(numbers)) if reduce == "sum" else (numbers[-1] if reduce == "last" else numbers[0])
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _sizes(config: Mapping[str, Any]) -> dict[str, float | None]:
    """The sizes of a config under their common spellings across transformers families."""
    depth = _scalar(_first(config, "num_hidden_layers", "n_layer", "num_layers"))
    if depth is None:  # hierarchical vision models list their stages: depth is the sum of the blocks
        depth = _scalar(_first(config, "depths"), reduce="sum")
    width = _scalar(_first(config, "hidden_size", "d_model", "n_embd", "dim", "embed_dim", "hidden_sizes"))
    if config.get("embed_dim") is not None and config.get("depths") is not None:  # swin: width doubles per stage
        width = float(config["embed_dim"]) * 2 ** (len(config["depths"]) - 1)
    heads = _scalar(_first(config, "num_attention_heads", "n_head", "num_heads"))
    inner = _scalar(_first(config, "intermediate_size", "n_inner", "d_ff"))
    mlp_ratio = _scalar(_first(config, "mlp_ratio", "mlp_ratios"), reduce="first")
    if mlp_ratio is None and inner is not None and width:
        mlp_ratio = inner / width
    return {
        "log_parameters": _scalar(config.get("num_parameters")),
        "depth": depth,
        "width": width,
        "heads": heads,
        "mlp_ratio": mlp_ratio,
        "patch_size": _scalar(_first(config, "patch_size", "patch_sizes"), reduce="first"),
        "kernel_size": _scalar(_first(config, "kernel_size", "conv_kernel_size"), reduce="first"),
        "input_size": _scalar(_first(config, "image_size", "max_position_embeddings", "n_positions"), reduce="first"),
        "vocab_size": _scalar(config.get("vocab_size")),
    }
