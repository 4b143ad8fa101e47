"""The tokens of the sampled training tasks, computed as a query task's are, and the encoders they were made with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..tokens.task import TaskTokens
from .tasks import DatasetPool, TaskSampling, TrainingTask


def _encoder_ids(text_encoder: str | None, image_encoder: str | None) -> dict[str, str]:
    from ..constants import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER

    return {"text": text_encoder or DEFAULT_TEXT_ENCODER, "image": image_encoder or DEFAULT_IMAGE_ENCODER}


def encoder_keys(pools: dict[str, DatasetPool], text_encoder: str | None, image_encoder: str | None) -> dict[str, str]:
    """``id@revision`` of each encoder the tokens use (the label-name encoder is always the text one)."""
    from ..tokens.encoders import encoder_revision

    ids = _encoder_ids(text_encoder, image_encoder)
    used = {"text"} | {p.modality for p in pools.values()}
    return {m: f"{ids[m]}@{encoder_revision(ids[m])}" for m in sorted(used)}


def task_tokens(
    pools: dict[str, DatasetPool],
    tasks: Sequence[TrainingTask],
    sampling: TaskSampling,
    text_encoder: str | None,
    image_encoder: str | None,
    device: Any,
) -> dict[str, TaskTokens]:
    """Every task's tokens, as :func:`~hf_spider.tokens.build.build_task_tokens` computes them for a query task:
    the class means of the general encoder's (L2-normalised) embeddings of its training samples, the text encoder's
    embeddings of its class names, and its statistics. Each pool sample and class name is encoded once."""
    from ..tokens.build import class_prototypes, label_texts
    from ..tokens.encoders import load_encoder
    from ..tokens.task import task_statistics

    ids = _encoder_ids(text_encoder, image_encoder)
    keys = encoder_keys(pools, text_encoder, image_encoder)
    device = str(device)
    text = load_encoder(ids["text"], modality="text", device=device)
    out: dict[str, TaskTokens] = {}
    for name, pool in pools.items():
        mine = [t for t in tasks if t.dataset == name]
        used = sorted({i for t in mine for i in t.train})
        row = {j: r for r, j in enumerate(used)}
        encoder = load_encoder(ids[pool.modality], modality=pool.modality, device=device)
        embeddings = encoder.encode([pool.inputs[j] for j in used])  # [U, D]
        names = text.encode(label_texts(pool.description))  # [C, D]
        for task in mine:
            description = task.description(pool)
            out[task.task_id] = TaskTokens(
                description=description,
                prototypes=class_prototypes(
                    embeddings[[row[j] for j in task.train]], task.labels_of(pool, task.train), len(task.classes)
                ),
                label_embeddings=names[list(task.classes)],
                statistics=task_statistics(description),
                encoder={"text": keys["text"], pool.modality: keys[pool.modality]},
                sampling={"per_class": sampling.per_class, "seed": sampling.seed, "num_samples": len(task.train)},
            )
    return out
