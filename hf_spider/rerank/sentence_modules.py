"""The sentence-transformers layout: read a repo's module stack from its configs and apply it to token embeddings.

A repo with ``modules.json`` runs its ``Transformer`` module through ``AutoModel``; the ``Pooling`` / ``Dense`` /
``Normalize`` modules on top are read here and applied as their configs say, so the features are the sentence
embedding the card promises. A module of another type is refused (it would need the repo's code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CandidateLoadError
from .fetch import read_json
from .options import ForwardOptions

#: sentence-transformers module types this loader runs (the last part of ``modules.json``'s ``type``).
ST_MODULES = frozenset({"Transformer", "Pooling", "Dense", "Normalize"})
#: Pooling modes of sentence-transformers' ``Pooling`` module that this loader implements (all of them).
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
#: Activations a sentence-transformers ``Dense`` module may name (``torch.nn`` classes without parameters).
_ST_ACTIVATIONS = frozenset({"Identity", "Tanh", "ReLU", "GELU", "Sigmoid", "SiLU", "LeakyReLU"})


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


def read_sentence_modules(
    model_id: str, folder: Path, options: ForwardOptions, use_safetensors: bool
) -> SentencePooling:
    """Read a sentence-transformers repo's module stack; refuse module types that would need the repo's code."""
    modules = read_json(model_id, folder / "modules.json")
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
                max_seq_length = read_json(model_id, bert_config).get("max_seq_length")
        elif kind == "Pooling":
            modes = _pooling_modes(read_json(model_id, path / "config.json"))
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
    config = read_json(model_id, path / "config.json")
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


def sentence_embedding(hidden: Any, attention_mask: Any, stack: SentencePooling) -> Any:
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
