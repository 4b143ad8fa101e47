"""Every common repo layout into the same :class:`ModelRecord` fields: transformers, timm, ``timm_wrapper`` and
sentence-transformers repos, plus what is derived from them (lineage, pre-training sources, head size).

A timm repo (``timm/<architecture>.<tag>``) has no ``model_type`` or ``architectures``: its ``config.json`` names the
timm ``architecture``, ``num_classes`` and a ``pretrained_cfg`` (input size, mean / std, the pretrained tag). A
``timm_wrapper`` config is the transformers view of the same file. A sentence-transformers repo describes its
pooling in ``modules.json`` and its sequence length in ``sentence_bert_config.json``. Reading them all the same way is
what lets the scorer rank a timm repo by its architecture and ImageNet facts instead of by its size alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .card_stats import card_stats
from .pretraining import sources_of

if TYPE_CHECKING:
    from .records import EvalResult, ModelRecord

#: Families of image models (``model_type`` or the family of a timm architecture).
IMAGE_FAMILIES = frozenset(
    {
        "vit", "deit", "beit", "swin", "swinv2", "convnext", "convnextv2", "resnet", "resnetv2", "resnext", "van",
        "regnet", "efficientnet", "efficientnetv2", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3", "mobilevit",
        "dinov2", "data2vec-vision", "levit", "poolformer", "densenet", "inception", "vgg", "mnasnet", "ghostnet",
        "cait", "eva", "eva02", "maxvit", "coatnet", "edgenext", "efficientformer", "fastvit", "focalnet", "hrnet",
        "dla", "dpn", "xception", "nasnet", "pnasnet", "rexnet", "nfnet", "bit", "cvt", "dit", "timm_wrapper",
        "hiera", "mixer", "repvgg", "tinynet", "seresnet", "seresnext", "senet", "res2net", "resnest", "csp",
        "cspresnet", "cspdarknet", "darknet", "twins", "pvt", "pvt_v2", "crossvit", "tnt", "volo", "xcit", "sequencer",
        "gcvit", "davit", "inception_next", "hgnet", "mambaout", "aimv2", "siglip", "clip_vision_model",
    }
)  # fmt: skip
#: Families of text models.
TEXT_FAMILIES = frozenset(
    {
        "bert", "distilbert", "roberta", "xlm-roberta", "camembert", "flaubert", "electra", "albert", "deberta",
        "deberta-v2", "fnet", "perceiver", "data2vec-text", "mpnet", "gpt2", "t5", "bart", "xlnet", "longformer",
        "big_bird", "ernie", "mobilebert", "squeezebert", "funnel", "canine", "convbert", "luke", "megatron-bert",
        "nystromformer", "rembert", "roformer", "xlm", "modernbert", "llama", "mistral", "qwen2", "gemma", "phi",
    }
)  # fmt: skip
#: timm architecture prefixes whose family is named differently in transformers.
_TIMM_FAMILY_ALIASES = {
    "mobilenetv1": "mobilenet_v1",
    "mobilenetv2": "mobilenet_v2",
    "mobilenetv3": "mobilenet_v3",
    "regnetx": "regnet",
    "regnety": "regnet",
    "regnetz": "regnet",
}
#: The family part of a timm architecture name: letters, and a version (``mobilenetv2``), before the first digit or "_".
_TIMM_PREFIX = re.compile(r"^(?:tf_|tv_|gluon_|legacy_|ese_|timm_)?([a-z]+?(?:v\d+)?)(?=\d|_|$)")
#: ``_name_or_path`` values that are a local path, not a Hub id (``./out``, ``/tmp/x``, ``C:\\...``).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
#: Metrics a card uses for ImageNet top-1.
_TOP1_METRICS = ("accuracy", "acc", "top1", "top-1", "top_1", "top1_accuracy", "acc@1")


def timm_family(architecture: str) -> str:
    """The family of a timm architecture, spelled as transformers' ``model_type`` where both exist.

    Example:
        >>> [timm_family(a) for a in ("resnet50", "mobilenetv2_100", "tf_efficientnet_b0", "vit_base_patch16_224")]
        ['resnet', 'mobilenet_v2', 'efficientnet', 'vit']
    """
    name = architecture.split(".", 1)[0].lower()
    match = _TIMM_PREFIX.match(name)
    prefix = match.group(1) if match else name
    return _TIMM_FAMILY_ALIASES.get(prefix, prefix)


def family_modality(model_type: str | None) -> str | None:
    """``"image"`` / ``"text"`` for a known architecture family, ``None`` otherwise."""
    if not model_type:
        return None
    family = model_type.lower()
    if family in IMAGE_FAMILIES:
        return "image"
    return "text" if family in TEXT_FAMILIES else None


def is_timm_config(config: Mapping[str, Any]) -> bool:
    """A timm ``config.json`` (or its ``timm_wrapper`` view): an ``architecture`` string and no transformers family."""
    if config.get("model_type") == "timm_wrapper":
        return True
    return isinstance(config.get("architecture"), str) and "model_type" not in config


def layout_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """Record fields of a ``config.json`` that the plain transformers reading misses.

    * timm / ``timm_wrapper``: ``architectures`` (the timm architecture), ``model_type`` (its family),
      ``library_name``, ``input_size``, ``label_names``, ``num_labels``, ``pretrained_tag`` and the pre-training
      sources its tag names;
    * transformers: ``num_labels`` and the ``_name_or_path`` it was saved from (a base model, when it is a Hub id).
    """
    if is_timm_config(config):
        return _timm_fields(config)
    out: dict[str, Any] = {}
    labels = config.get("id2label")
    num_labels = config.get("num_labels", len(labels) if isinstance(labels, Mapping) else None)
    if _is_count(num_labels):
        out["num_labels"] = num_labels
    base = config.get("_name_or_path")
    if isinstance(base, str) and _HUB_ID.match(base) and "/" in base:
        out["base_models"] = (base,)
    return out


def _timm_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    pretrained = config.get("pretrained_cfg")
    pretrained = pretrained if isinstance(pretrained, Mapping) else {}
    architecture, _, tag = str(config.get("architecture", "")).partition(".")
    tag = tag or str(pretrained.get("tag") or "")
    out: dict[str, Any] = {"library_name": "timm"}
    if architecture:
        out["architectures"] = (architecture,)
        out["model_type"] = timm_family(architecture)
    if tag:
        out["pretrained_tag"] = tag
        out["pretraining"] = sources_of([tag])
    size = pretrained.get("input_size", config.get("input_size"))
    if isinstance(size, Sequence) and not isinstance(size, str) and size and _is_count(size[-1]):
        out["input_size"] = size[-1]
    elif _is_count(config.get("img_size")):
        out["input_size"] = config["img_size"]
    labels = config.get("label_names", pretrained.get("label_names"))
    if isinstance(labels, Sequence) and not isinstance(labels, str) and labels:
        out["label_names"] = tuple(str(label) for label in labels)
    if _is_count(config.get("num_classes")):
        out["num_labels"] = config["num_classes"]
    return out


def sentence_transformers_fields(
    modules: Any, st_config: Mapping[str, Any] | None = None, sbert_config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Fields of a sentence-transformers repo: its library, the pooling ``modules.json`` names and the maximum
    sequence length (``sentence_bert_config.json``); ``{}`` when ``modules`` is not a list of modules."""
    if not isinstance(modules, list) or not all(isinstance(m, Mapping) for m in modules):
        return {}
    out: dict[str, Any] = {"library_name": "sentence-transformers"}
    pooling = [str(m.get("path", "")) for m in modules if str(m.get("type", "")).endswith("Pooling")]
    extra: dict[str, Any] = {"sentence_transformers_modules": [str(m.get("type", "")) for m in modules]}
    if pooling:
        extra["sentence_transformers_pooling"] = pooling[0]
    if st_config and isinstance(st_config.get("__version__"), Mapping):
        extra["sentence_transformers_version"] = str(st_config["__version__"].get("sentence_transformers", ""))
    if sbert_config and _is_count(sbert_config.get("max_seq_length")):
        out["input_size"] = sbert_config["max_seq_length"]
    out["extra"] = extra
    return out


def tag_base_models(tags: Sequence[str] | None) -> tuple[str, ...]:
    """Base models named by ``base_model:<id>`` / ``base_model:<relation>:<id>`` Hub tags."""
    bases = []
    for tag in tags or ():
        if tag.startswith("base_model:"):
            candidate = tag.rsplit(":", 1)[1]
            if "/" in candidate and _HUB_ID.match(candidate):
                bases.append(candidate)
    return tuple(dict.fromkeys(bases))


def merge_fields(card: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a card and of a ``config.json`` as one dict: the config wins, except that base models and
    ``extra`` are joined (a card's ``base_model`` and the config's ``_name_or_path`` are both lineage)."""
    out = {**card, **config}
    bases = (*(card.get("base_models") or ()), *(config.get("base_models") or ()))
    if bases:
        out["base_models"] = tuple(dict.fromkeys(bases))
    if "extra" in card or "extra" in config:
        out["extra"] = {**(card.get("extra") or {}), **(config.get("extra") or {})}
    return out


def derive_fields(record: ModelRecord) -> ModelRecord:
    """``record`` with what its own fields imply filled in: base models from ``base_model:`` tags, the numbers its
    card writes in prose (:func:`~hf_spider.hub.card_stats.card_stats`), pre-training sources (timm tag, card,
    ``dataset:`` tags, repo name), the head size, and the ImageNet top-1 its card's ``model-index`` reports. Never
    overwrites a field that is already set, and never drops one."""
    stats = card_stats(record.card_text, record.repo_id)
    record = replace(
        record,
        num_parameters=record.num_parameters if record.num_parameters is not None else stats.get("num_parameters"),
        input_size=record.input_size if record.input_size is not None else stats.get("input_size"),
        gmacs=record.gmacs if record.gmacs is not None else stats.get("gmacs"),
        imagenet_top1=record.imagenet_top1 if record.imagenet_top1 is not None else stats.get("imagenet_top1"),
        pretraining=record.pretraining or stats.get("pretraining"),
    )
    bases = tuple(
        b for b in dict.fromkeys((*(record.base_models or ()), *tag_base_models(record.tags))) if b != record.repo_id
    )
    dataset_tags = [t.split(":", 1)[1] for t in record.tags or () if t.startswith("dataset:")]
    pretraining = record.pretraining or sources_of(
        [record.pretrained_tag, *(record.datasets or ()), *dataset_tags, record.repo_id]
    )
    num_labels = record.num_labels
    if num_labels is None and record.label_names:
        num_labels = len(record.label_names)
    top1 = record.imagenet_top1 if record.imagenet_top1 is not None else card_imagenet_top1(record.eval_results)
    return replace(
        record, base_models=bases or None, pretraining=pretraining, num_labels=num_labels, imagenet_top1=top1
    )


#: Records written before schema 2 hold everything :func:`derive_fields` needs except what only the files give.
upgrade_record = derive_fields


def card_imagenet_top1(results: Sequence[EvalResult] | None) -> float | None:
    """The best ImageNet-1k top-1 (percent) among a card's ``model-index`` results, ``None`` if it reports none."""
    values = []
    for result in results or ():
        dataset = (result.dataset or "").lower().replace("_", "-")
        metric = (result.metric or "").lower()
        if result.value is None or "imagenet" not in dataset or any(k in dataset for k in ("21k", "22k", "-r", "-a")):
            continue
        if metric in _TOP1_METRICS:
            values.append(result.value * 100.0 if result.value <= 1.0 else result.value)
    plausible = [v for v in values if 10.0 <= v <= 95.0]
    return max(plausible) if plausible else None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
