"""Generated model repos with known content, and the records a correct crawler must produce from them.

Every value of a generated repo is chosen here (ids, tags, label names, parameter shapes, card metadata), so the
expected :class:`ModelRecord` is written down from those choices, not computed by the code under test. A few repos
are bad on purpose (:data:`BAD_KINDS`): malformed card YAML, a card without metadata, a config that is not JSON, a
gated repo.
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass, fields, replace
from typing import Any

from ..hub.layouts import derive_fields
from ..hub.records import EvalResult, ModelRecord
from .loopback_hub import LoopbackHub

#: Kinds of bad repo the generator makes, one in 50 repos each, and the error kind each must produce.
BAD_KINDS = {
    "malformed_yaml": "malformed_card",
    "no_metadata": "no_card_metadata",
    "config_not_json": "bad_config",
    "gated": "gated",
}
_BAD_SLOTS = {3: "malformed_yaml", 13: "no_metadata", 23: "config_not_json", 33: "gated"}
#: The fields a crawl of generated repos is checked on (``error`` is compared by kind).
CHECKED_FIELDS = tuple(
    f.name for f in fields(ModelRecord) if f.name not in ("repo_id", "created_at", "last_modified", "error", "extra")
)
_IMAGE_ARCHS = (("vit", "ViTForImageClassification", "timm"), ("convnext", "ConvNextForImageClassification", None))
_TEXT_ARCHS = (("bert", "BertForSequenceClassification", None), ("roberta", "RobertaForSequenceClassification", None))
_DATASETS = {
    "image-classification": ("beans", "cifar10", "food101"),
    "text-classification": ("imdb", "sst2", "ag_news"),
}


@dataclass(frozen=True)
class GeneratedRepo:
    """What was put in one generated repo; :meth:`expected` is the record a crawl of it must give."""

    repo_id: str
    sha: str
    pipeline_tag: str
    library_name: str
    model_type: str
    architecture: str
    label_names: tuple[str, ...]
    input_size: int
    num_parameters: int
    dataset: str
    base_model: str
    license: str
    language: str | None
    accuracy: float
    downloads: int
    likes: int
    tags: tuple[str, ...]
    card_text: str
    bad: str | None = None

    def expected(self, *, with_config: bool, with_card: bool) -> ModelRecord:
        """The record of this repo after a crawl with the given parts (and no token for gated repos)."""
        card_ok = self.bad not in ("malformed_yaml", "no_metadata")
        files_ok = self.bad != "gated"
        config_ok = self.bad != "config_not_json"
        errors = []
        if files_ok and with_card and not card_ok:
            errors.append(BAD_KINDS[self.bad or ""])
        if files_ok and with_config and not config_ok:
            errors.append("bad_config")
        if self.bad == "gated" and (with_card or with_config):
            errors.append("gated")
        card: dict[str, Any] = {}
        if card_ok:
            card = {
                "datasets": (self.dataset,),
                "base_models": (self.base_model,),
                "license": self.license,
                "languages": (self.language,) if self.language else None,
                "eval_results": (EvalResult(self.dataset, "accuracy", self.accuracy, self.pipeline_tag, "test"),),
            }
        record = ModelRecord(
            repo_id=self.repo_id,
            sha=self.sha,
            pipeline_tag=self.pipeline_tag,
            library_name=self.library_name,
            architectures=(self.architecture,) if config_ok else None,
            model_type=self.model_type if config_ok else None,
            num_parameters=self.num_parameters,
            input_size=self.input_size if (with_config and config_ok and files_ok) else None,
            label_names=self.label_names if (with_config and config_ok and files_ok) else None,
            gated=self.bad == "gated",
            downloads=self.downloads,
            likes=self.likes,
            tags=self.tags,
            card_text=self.card_text if (with_card and files_ok) else None,
            error=" | ".join(errors) or None,
            **card,
        )
        return derive_fields(record)  # what the crawler derives from these fields (lineage, pre-training, head)


def generate_repos(
    hub: LoopbackHub, n: int, *, seed: int = 0, prefix: str = "gen", bad: bool = True
) -> list[GeneratedRepo]:
    """Add ``n`` model repos to ``hub`` (``{prefix}-org{k}/model-{i:05d}``) and return what each holds.

    Args:
        hub: the Hub to fill.
        n: how many repos.
        seed: seed of every random choice.
        prefix: start of the owner names, so several generations can share a Hub.
        bad: make one repo in 50 of each kind in :data:`BAD_KINDS`.
    """
    rng = random.Random(seed)
    return [_add_one(hub, i, rng, prefix, _BAD_SLOTS.get(i % 50) if bad else None) for i in range(n)]


def change_repo(hub: LoopbackHub, repo: GeneratedRepo, *, likes: int | None = None) -> GeneratedRepo:
    """Commit a new card to ``repo`` (new prose and accuracy); returns the repo as it is now."""
    changed = replace(repo, accuracy=round(repo.accuracy / 2, 4), card_text=repo.card_text + "\nUpdated.\n")
    sha = hub.update_repo(repo.repo_id, {"README.md": _readme(changed)}, summary="update card")
    return replace(changed, sha=sha)


def safetensors_bytes(shapes: dict[str, tuple[int, ...]], dtype: str = "F32") -> bytes:
    """A valid safetensors file of zero tensors with these shapes (4-byte dtypes only)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = 4
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def _add_one(hub: LoopbackHub, i: int, rng: random.Random, prefix: str, bad: str | None) -> GeneratedRepo:
    image = i % 2 == 0
    pipeline_tag = "image-classification" if image else "text-classification"
    model_type, architecture, library = rng.choice(_IMAGE_ARCHS if image else _TEXT_ARCHS)
    n_labels = rng.randint(2, 6)
    hidden, classes = rng.randint(2, 8), n_labels
    spec = GeneratedRepo(
        repo_id=f"{prefix}-org{i % 7}/model-{i:05d}",
        sha="",
        pipeline_tag=pipeline_tag,
        library_name=library or "transformers",
        model_type=model_type,
        architecture=architecture,
        label_names=tuple(f"class_{i}_{k}" for k in range(n_labels)),
        input_size=rng.choice((224, 384)) if image else rng.choice((128, 512)),
        num_parameters=hidden * 3 + hidden * classes + classes,
        dataset=rng.choice(_DATASETS[pipeline_tag]),
        base_model=f"base/{model_type}-base",
        license=rng.choice(("mit", "apache-2.0")),
        language=None if image else rng.choice(("en", "de")),
        accuracy=round(rng.uniform(0.5, 0.99), 4),
        downloads=rng.randint(0, 10**6),
        likes=rng.randint(0, 1000),
        tags=(library or "transformers", pipeline_tag, f"gen-{i % 3}"),
        card_text=f"# model-{i:05d}\n\nA generated test model number {i}.\n",
        bad=bad,
    )
    config: dict[str, Any] = {
        "architectures": [architecture],
        "model_type": model_type,
        "id2label": {str(k): name for k, name in enumerate(spec.label_names)},
        ("image_size" if image else "max_position_embeddings"): spec.input_size,
    }
    files: dict[str, bytes | str] = {
        "config.json": "{not json" if bad == "config_not_json" else json.dumps(config, indent=2),
        "README.md": _readme(spec),
        "model.safetensors": safetensors_bytes(
            {"embed.weight": (hidden, 3), "head.weight": (classes, hidden), "head.bias": (classes,)}
        ),
    }
    sha = hub.add_repo(
        spec.repo_id,
        files,
        pipeline_tag=pipeline_tag,
        library_name=spec.library_name,
        tags=spec.tags,
        downloads=spec.downloads,
        likes=spec.likes,
        gated="auto" if bad == "gated" else False,
    )
    return replace(spec, sha=sha)


def _readme(spec: GeneratedRepo) -> str:
    import yaml

    if spec.bad == "no_metadata":
        return spec.card_text
    if spec.bad == "malformed_yaml":
        return f"---\nlicense: [{spec.license}\ndatasets: {{{spec.dataset}\n---\n{spec.card_text}"
    meta: dict[str, Any] = {"license": spec.license, "datasets": [spec.dataset], "base_model": spec.base_model}
    if spec.language:
        meta["language"] = spec.language
    meta["model-index"] = [
        {
            "name": spec.repo_id.split("/")[1],
            "results": [
                {
                    "task": {"type": spec.pipeline_tag},
                    "dataset": {"name": spec.dataset, "type": spec.dataset, "split": "test"},
                    "metrics": [{"type": "accuracy", "value": spec.accuracy}],
                }
            ],
        }
    ]
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n{spec.card_text}"


def mismatches(expected: ModelRecord, actual: ModelRecord) -> list[str]:
    """The checked fields where ``actual`` differs from ``expected`` (error compared by kind), as readable lines."""
    from ..hub.cards import error_kinds

    out = [
        f"{expected.repo_id}.{name}: expected {getattr(expected, name)!r}, got {getattr(actual, name)!r}"
        for name in CHECKED_FIELDS
        if getattr(expected, name) != getattr(actual, name)
    ]
    if sorted(error_kinds(expected.error)) != sorted(error_kinds(actual.error)):
        out.append(f"{expected.repo_id}.error: expected {expected.error!r}, got {actual.error!r}")
    return out
