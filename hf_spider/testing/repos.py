"""Generated model repos with known content, and the records a correct crawler must produce from them.

Every value of a generated repo is chosen here (ids, tags, label names, parameter shapes, card metadata), so the
expected :class:`ModelRecord` is written down from those choices, not computed by the code under test. A few repos
are bad on purpose (:data:`BAD_KINDS`): malformed card YAML, a card without metadata, a config that is not JSON, a
gated repo. With ``hostile=`` some are hostile (:data:`HOSTILE_KINDS`): lone surrogates and RTL overrides in label
names and repo ids, ``..`` in an id, a "billion laughs" card, control characters in a card, a 5 MB card, a config
nested 500 deep, 20,000 labels, a repo deleted after it was listed. How a record must hold hostile text (each unsafe
character written as ``\\uXXXX``) is written out by hand in :data:`HOSTILE_TEXT`, as is every other expected value.
"""

from __future__ import annotations

import itertools
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
#: Kinds of hostile repo the generator makes with ``hostile=``, and the error kinds each must produce in a crawl with
#: ``config.json`` and README.md (:meth:`GeneratedRepo.expected` has them for any crawl).
HOSTILE_KINDS = {
    "surrogate_label": ("unsafe_text",),
    "bidi_label": ("unsafe_text",),
    "surrogate_id": ("unsafe_text", "invalid_id"),
    "bidi_id": ("unsafe_text", "invalid_id"),
    "dotdot_id": ("invalid_id",),
    "alias_bomb": ("oversized",),
    "control_card": ("unsafe_text",),
    "huge_card": ("oversized",),
    "deep_config": ("oversized",),
    "many_labels": ("oversized",),
    "deleted": ("not_found",),
}
#: Hostile text a generated repo holds, and how a record must hold it.
HOSTILE_TEXT = {
    "\ud83d": "\\ud83d",  # a lone surrogate: valid JSON, not encodable as UTF-8
    "\u202e": "\\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\x1b": "\\u001b",  # ESC, which starts a terminal control sequence
}
_HOSTILE_ID_SUFFIX = {"surrogate_id": "\ud83d", "bidi_id": "\u202egpj"}
_HUGE_CARD_CHARS = 5 * 2**20
_KEPT_CARD_CHARS = 65_536  # HubLimits.text_chars
_MANY_LABELS, _KEPT_LABELS = 20_000, 10_000  # HubLimits.labels
_CONFIG_DEPTH = 500
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
    """What was put in one generated repo, as the Hub holds it; :meth:`expected` is the record a crawl must give."""

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

    @property
    def hostile(self) -> bool:
        """Whether the repo is bad or hostile on purpose (any kind of :data:`BAD_KINDS` or :data:`HOSTILE_KINDS`)."""
        return self.bad is not None

    def expected(self, *, with_config: bool, with_card: bool) -> ModelRecord:
        """The record of this repo after a crawl with the given parts (and no token for gated repos)."""
        kind, fetched = self.bad, with_card or with_config
        id_ok = kind not in ("surrogate_id", "bidi_id", "dotdot_id")
        files_ok = id_ok and kind not in ("gated", "deleted")  # the crawler can read the repo's files
        card_ok = kind not in ("malformed_yaml", "no_metadata", "alias_bomb")
        config_ok = kind not in ("config_not_json", "deep_config")
        errors = []
        if kind in ("surrogate_id", "bidi_id", "control_card"):  # seen in the listing already
            errors.append("unsafe_text")
        if fetched and not id_ok:
            errors.append("invalid_id")
        if fetched and kind in ("gated", "deleted"):
            errors.append("gated" if kind == "gated" else "not_found")
        if files_ok and with_card and kind in ("malformed_yaml", "no_metadata"):
            errors.append(BAD_KINDS[kind])
        if files_ok and with_card and kind in ("alias_bomb", "huge_card"):
            errors.append("oversized")
        if files_ok and with_config and kind == "config_not_json":
            errors.append("bad_config")
        if files_ok and with_config and kind in ("deep_config", "many_labels"):
            errors.append("oversized")
        if files_ok and with_config and kind in ("surrogate_label", "bidi_label"):
            errors.append("unsafe_text")
        card: dict[str, Any] = {}
        if card_ok:
            card = {
                "datasets": (self.dataset,),
                "base_models": (self.base_model,),
                "license": _stored(self.license),
                "languages": (self.language,) if self.language else None,
                "eval_results": (EvalResult(self.dataset, "accuracy", self.accuracy, self.pipeline_tag, "test"),),
            }
        read_config = with_config and files_ok and config_ok
        labels = tuple(_stored(label) for label in self.label_names[:_KEPT_LABELS])
        record = ModelRecord(
            repo_id=_stored(self.repo_id),
            sha=self.sha,
            pipeline_tag=self.pipeline_tag,
            library_name=self.library_name,
            architectures=(self.architecture,) if kind != "config_not_json" else None,
            model_type=self.model_type if kind != "config_not_json" else None,
            num_parameters=self.num_parameters,
            input_size=self.input_size if read_config else None,
            label_names=labels if read_config else None,
            num_labels=len(self.label_names) if read_config and self.label_names else None,  # the head, not the cap
            gated=kind == "gated",
            downloads=self.downloads,
            likes=self.likes,
            tags=self.tags,
            card_text=_stored(self.card_text)[:_KEPT_CARD_CHARS] if (with_card and files_ok) else None,
            error=" | ".join(errors) or None,
            **card,
        )
        return derive_fields(record)  # what the crawler derives from these fields (lineage, pre-training, head)


def generate_repos(
    hub: LoopbackHub, n: int, *, seed: int = 0, prefix: str = "gen", bad: bool = True, hostile: int = 0
) -> list[GeneratedRepo]:
    """Add ``n`` model repos to ``hub`` (``{prefix}-org{k}/model-{i:05d}``) and return what each holds.

    Args:
        hub: the Hub to fill.
        n: how many repos.
        seed: seed of every random choice.
        prefix: start of the owner names, so several generations can share a Hub.
        bad: make one repo in 50 of each kind in :data:`BAD_KINDS`.
        hostile: make one repo in ``hostile`` hostile (0: none), the kinds of :data:`HOSTILE_KINDS` in turn; a slot
            of a bad kind stays bad. ``hostile=25`` with ``bad`` makes 12 % of the repos bad or hostile.
    """
    rng = random.Random(seed)
    kinds = list(HOSTILE_KINDS)
    repos = []
    for i in range(n):
        kind = _BAD_SLOTS.get(i % 50) if bad else None
        if kind is None and hostile and i % hostile == (hostile - 1) // 2:
            kind = kinds[(i // hostile) % len(kinds)]
        repos.append(_add_one(hub, i, rng, prefix, kind))
    return repos


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
    labels = [f"class_{i}_{k}" for k in range(_MANY_LABELS if bad == "many_labels" else n_labels)]
    if bad in ("surrogate_label", "bidi_label"):
        labels[0] += "\ud83d" if bad == "surrogate_label" else "\u202egpj.exe"
    card_text = f"# model-{i:05d}\n\nA generated test model number {i}.\n"
    if bad == "control_card":
        card_text += "\x1b[2J\x1b[31mcleared your terminal\n"
    elif bad == "huge_card":
        card_text += "lorem ipsum " * (_HUGE_CARD_CHARS // 12)
    name = f"model..{i:05d}" if bad == "dotdot_id" else f"model-{i:05d}{_HOSTILE_ID_SUFFIX.get(bad or '', '')}"
    spec = GeneratedRepo(
        repo_id=f"{prefix}-org{i % 7}/{name}",
        sha="",
        pipeline_tag=pipeline_tag,
        library_name=library or "transformers",
        model_type=model_type,
        architecture=architecture,
        label_names=tuple(labels),
        input_size=rng.choice((224, 384)) if image else rng.choice((128, 512)),
        num_parameters=hidden * 3 + hidden * classes + classes,
        dataset=rng.choice(_DATASETS[pipeline_tag]),
        base_model=f"base/{model_type}-base",
        license=rng.choice(("mit", "apache-2.0")) + ("\x1b[2J" if bad == "control_card" else ""),
        language=None if image else rng.choice(("en", "de")),
        accuracy=round(rng.uniform(0.5, 0.99), 4),
        downloads=rng.randint(0, 10**6),
        likes=rng.randint(0, 1000),
        tags=(library or "transformers", pipeline_tag, f"gen-{i % 3}"),
        card_text=card_text,
        bad=bad,
    )
    config: dict[str, Any] = {
        "architectures": [architecture],
        "model_type": model_type,
        "id2label": {str(k): name for k, name in enumerate(spec.label_names)},
        ("image_size" if image else "max_position_embeddings"): spec.input_size,
    }
    if bad == "deep_config":
        nested: dict[str, Any] = {"leaf": True}
        for _ in range(_CONFIG_DEPTH - 1):
            nested = {"nested": nested}
        config["task_specific_params"] = nested
    files: dict[str, bytes | str] = {
        # ensure_ascii (json's default) writes a lone surrogate as the escape "\ud83d": valid JSON, as the Hub has it
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
    if bad == "deleted":
        hub.delete_repo(spec.repo_id, keep_listed=True)
    return replace(spec, sha=sha)


def _readme(spec: GeneratedRepo) -> str:
    import yaml

    if spec.bad == "no_metadata":
        return spec.card_text
    if spec.bad == "malformed_yaml":
        return f"---\nlicense: [{spec.license}\ndatasets: {{{spec.dataset}\n---\n{spec.card_text}"
    if spec.bad == "alias_bomb":
        return f"---\n{billion_laughs()}license: {spec.license}\n---\n{spec.card_text}"
    meta: dict[str, Any] = {"license": spec.license, "datasets": [spec.dataset], "base_model": spec.base_model}
    if spec.language:
        meta["language"] = spec.language
    meta["model-index"] = [
        {
            "name": spec.repo_id.split("/")[1][:11],  # model-NNNNN, without a hostile suffix
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


def billion_laughs(levels: int = 9) -> str:
    """YAML of ``levels`` nested aliases: about 350 bytes that expand to 9 ** levels strings."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"[:levels]
    lines += [f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]" for prev, name in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


def _stored(text: str) -> str:
    """``text`` as a record holds it: each character of :data:`HOSTILE_TEXT` written out as its escape."""
    for raw, escaped in HOSTILE_TEXT.items():
        text = text.replace(raw, escaped)
    return text


def mismatches(expected: ModelRecord, actual: ModelRecord) -> list[str]:
    """The checked fields where ``actual`` differs from ``expected`` (error compared by kind), as readable lines."""
    from ..hub.cards import error_kinds

    out = [
        f"{expected.repo_id}.{name}: expected {_short(getattr(expected, name))}, got {_short(getattr(actual, name))}"
        for name in CHECKED_FIELDS
        if getattr(expected, name) != getattr(actual, name)
    ]
    if sorted(error_kinds(expected.error)) != sorted(error_kinds(actual.error)):
        out.append(f"{expected.repo_id}.error: expected {expected.error!r}, got {actual.error!r}")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
