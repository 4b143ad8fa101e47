"""A short, generic fine-tune: the real-accuracy label of a (model, training task) pair.

The protocol is the one the benchmark zoo measures its ground truth with (``benchmarks/zoo/build.py``): load the
candidate with ``from_pretrained`` and a freshly drawn classification head for the task's classes, train every weight
for a fixed number of AdamW steps on random mini-batches of the task's few labelled samples, and report the accuracy
on held-out samples of the same classes, averaged over seeds. It is a cheap proxy of "how well does this model
fine-tune here", not a tuned training run: few steps, one learning rate, no schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import MAX_SEED
from ..errors import CandidateLoadError
from ..rerank.loading import check_repo, classification_heads, load_model

#: Standard deviation of the freshly drawn head weights (transformers' ``initializer_range`` default).
HEAD_INIT_STD = 0.02
_EVAL_BATCH = 256


@dataclass(frozen=True)
class FinetuneProtocol:
    """How each selected (model, task) pair is fine-tuned.

    Args:
        steps: AdamW steps, each on a random mini-batch of the task's training samples.
        lr: AdamW learning rate (constant).
        batch_size: samples per step (all of them when the task has fewer).
        seeds: one fine-tune per seed (head draw and mini-batch order); the label is their mean accuracy.
        max_length: text models: every text is padded / truncated to this many tokens (the model's own limit
            applies when lower), so a sample's input does not depend on which others share its batch.
    """

    steps: int = 30
    lr: float = 1e-4
    batch_size: int = 32
    seeds: tuple[int, ...] = (0,)
    max_length: int = 128

    def __post_init__(self) -> None:
        """Refuse what the command line refuses (``--finetune-*``, ``--max-length``, seeds in 0..
        :data:`~hf_spider.constants.MAX_SEED`). Built from Python, anything passed here and went wrong once the
        records folder was started: a seed past 2**64 - 1 stopped the run (``torch.manual_seed`` raised), no seeds
        gave a NaN accuracy the journal refused (stopping the run too), a NaN learning rate failed every fine-tune
        (AdamW raised), and 0 steps, batches of 0 samples or a learning rate of 0 recorded untrained accuracies.

        Whole numbers given as NumPy integers become ``int`` (the manifest is JSON) and a list of seeds a tuple.

        Raises:
            ValueError: a field out of its range, named with the value and the fix.
        """
        for name in ("steps", "batch_size", "max_length"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"FinetuneProtocol {name}={value!r}; pass a whole number >= 1")
            object.__setattr__(self, name, int(value))
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or not 0 < self.lr < math.inf:
            raise ValueError(f"FinetuneProtocol lr={self.lr!r}; pass a finite learning rate > 0")
        if not isinstance(self.seeds, tuple | list) or not self.seeds:
            raise ValueError(f"FinetuneProtocol seeds={self.seeds!r}; pass a tuple of at least one seed, e.g. (0, 1)")
        for seed in self.seeds:
            if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
                raise ValueError(f"FinetuneProtocol seed {seed!r} is not a whole number in 0..{MAX_SEED} (2**32 - 1)")
        object.__setattr__(self, "seeds", tuple(int(seed) for seed in self.seeds))

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seeds": list(self.seeds),
            "max_length": self.max_length,
        }


@dataclass(frozen=True)
class FinetuneResult:
    """Held-out accuracy per seed, their mean, and the wall seconds of all seeds (load, train, evaluate)."""

    accuracy: float
    per_seed: tuple[float, ...]
    seconds: float


def finetune_accuracy(
    model_id: str,
    folder: str,
    *,
    use_safetensors: bool,
    modality: str,
    num_classes: int,
    train: tuple[Sequence[Any], np.ndarray],
    test: tuple[Sequence[Any], np.ndarray],
    protocol: FinetuneProtocol,
    device: Any = None,
    trust_remote_code: bool = False,
) -> FinetuneResult:
    """Fine-tune the candidate in ``folder`` once per seed of ``protocol`` and measure its held-out accuracy.

    Args:
        model_id: the candidate's repo id (for error messages).
        folder: its checked local snapshot (:func:`hf_spider.rerank.fetch.fetch_candidate`).
        use_safetensors: load the safetensors weights (pickle only when the caller allowed it).
        modality: ``"image"`` (PIL images) or ``"text"`` (strings).
        num_classes: classes of the task; labels are ``0..num_classes - 1``.
        train / test: ``(inputs [N], labels [N])`` of the training and held-out samples.
        device: where to train (default CPU).
        trust_remote_code: run the repo's own code (only for a candidate the caller chose to trust).

    Raises:
        CandidateLoadError: the candidate cannot be loaded with a classification head (stage two's checks included:
            a config describing far more parameters than the weights hold, backbone tensors missing from the weights
            or of another shape), or its training fails.
    """
    import torch

    device = torch.device(device or "cpu")
    start = time.perf_counter()
    _, layout = check_repo(model_id, Path(folder), modality)  # timm keys that load files, stacked modules, image sizes
    preprocessor = _preprocessor(model_id, folder, modality, trust_remote_code)
    train_batch = _encode(preprocessor, train[0], modality, protocol)
    test_batch = _encode(preprocessor, test[0], modality, protocol)
    train_labels = torch.as_tensor(np.asarray(train[1]), dtype=torch.long)
    test_labels = torch.as_tensor(np.asarray(test[1]), dtype=torch.long)
    per_seed = []
    for seed in protocol.seeds:
        torch.manual_seed(seed)
        model = _with_new_head(model_id, folder, modality, layout, num_classes, use_safetensors, trust_remote_code)
        model = model.to(device)
        try:
            _train(model, train_batch, train_labels, protocol=protocol, seed=seed, device=device)
            per_seed.append(_accuracy(model, test_batch, test_labels, device))
        except (RuntimeError, ValueError) as exc:  # OOM, shape errors of an unusual head
            raise CandidateLoadError(model_id, f"its fine-tune failed ({_first_line(exc)})") from exc
        finally:
            del model
    return FinetuneResult(float(np.mean(per_seed)), tuple(per_seed), time.perf_counter() - start)


def _is_int(value: Any) -> bool:
    """A whole number (NumPy's too), not a flag: ``True`` is an ``int`` to Python."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _preprocessor(model_id: str, folder: str, modality: str, trust_remote_code: bool) -> Any:
    import transformers

    auto = transformers.AutoImageProcessor if modality == "image" else transformers.AutoTokenizer
    try:
        return auto.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... for a broken processor
        raise CandidateLoadError(model_id, f"its processor could not be loaded ({_first_line(exc)})") from exc


def _encode(preprocessor: Any, inputs: Sequence[Any], modality: str, protocol: FinetuneProtocol) -> dict[str, Any]:
    """Model inputs of all samples at once (few-shot sets are small): pixel values, or fixed-length token ids."""
    if modality == "image":
        return dict(preprocessor(images=[image.convert("RGB") for image in inputs], return_tensors="pt"))
    limit = min(protocol.max_length, getattr(preprocessor, "model_max_length", None) or protocol.max_length)
    encoded = preprocessor(list(inputs), padding="max_length", truncation=True, max_length=limit, return_tensors="pt")
    return dict(encoded)


def _with_new_head(
    model_id: str,
    folder: str,
    modality: str,
    layout: str,
    num_classes: int,
    use_safetensors: bool,
    trust_remote_code: bool,
) -> Any:
    """The classification model with a head for ``num_classes``, drawn afresh even when the class count matches.

    Loaded by stage two's :func:`~hf_spider.rerank.loading.load_model`, so through its checks: a config describing
    far more parameters than the weights hold is refused before anything is allocated, and weights that leave
    backbone tensors missing or of another shape are refused (``from_pretrained(ignore_mismatched_sizes=True)`` alone
    drew them at random and fine-tuned a random model).

    Every linear layer of the head (:func:`~hf_spider.rerank.loading.classification_heads`, timm's included) is
    drawn normal with std :data:`HEAD_INIT_STD` and a zero bias; a head holding none is refused, as fine-tuning it
    would label with the saved head, not a fresh one.
    """
    import torch

    model = load_model(
        model_id,
        folder,
        modality,
        layout,
        use_safetensors,
        trust_remote_code=trust_remote_code,
        num_labels=num_classes,
    )
    heads = classification_heads(model_id, model, layout)
    # linear maps: Linear, and the 1x1 Conv2d some timm heads classify with (resnetv2 / BiT, DLA, DPN)
    layers = [m for h in heads for m in h.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    if not layers:  # kept as built: the saved head when the class count matches, not one drawn afresh
        raise CandidateLoadError(model_id, "its classification head holds no linear layer to draw afresh; drop it")
    for layer in layers:
        torch.nn.init.normal_(layer.weight, std=HEAD_INIT_STD)
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)
    return model


def _train(
    model: Any, inputs: dict[str, Any], labels: Any, *, protocol: FinetuneProtocol, seed: int, device: Any
) -> None:
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=protocol.lr)
    model.train()
    for _ in range(protocol.steps):
        idx = torch.randperm(len(labels), generator=generator)[: protocol.batch_size]
        batch = {k: v[idx].to(device) for k, v in inputs.items()}
        loss = model(**batch, labels=labels[idx].to(device)).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()


def _accuracy(model: Any, inputs: dict[str, Any], labels: Any, device: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        logits = torch.cat(
            [
                model(**{k: v[i : i + _EVAL_BATCH].to(device) for k, v in inputs.items()}).logits.cpu()
                for i in range(0, len(labels), _EVAL_BATCH)
            ]
        )
    return float((logits.argmax(-1) == labels).float().mean())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
