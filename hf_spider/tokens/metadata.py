"""The metadata block of a PTM token: what the Hub says about a model's quality beyond its architecture.

What a model will do after fine-tuning is mostly written on the Hub: how big it is and at which resolution it runs,
what it was pre-trained on and at which scale (:mod:`hf_spider.hub.pretraining`), how good it is on ImageNet
(:mod:`hf_spider.tokens.facts`), whether it is a fine-tune with its own small head, and which language it reads.
These are the inputs of the scorer's estimate for models without records. Every value has a ``has_*`` flag, so a
missing fact is never read as a zero.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..hub.pretraining import SOURCE_SIZES, pretraining_scale
from ..hub.records import ModelRecord
from .facts import FACT_SOURCES, ImageNetFacts

#: Feature names of the block, in token order.
METADATA_NAMES = (
    "pretraining_scale",
    "has_pretraining",
    "pretrained_on_web_scale",
    "imagenet_top1",
    "has_imagenet_top1",
    "imagenet_top5",
    "imagenet_r_top1",
    "has_imagenet_r_top1",
    "sketch_top1",
    "has_sketch_top1",
    *(f"facts_{source}" for source in FACT_SOURCES),
    "log_gmacs",
    "has_gmacs",
    "log_num_labels_head",
    "has_num_labels_head",
    "small_head",
    "size_word",
    "has_size_word",
    "distilled",
    "english",
    "multilingual",
    "non_english",
    "has_base_model",
)
METADATA_DIM = len(METADATA_NAMES)
#: Pre-training sets of at least this many images count as web scale (LAION, JFT, Instagram, WebLI, ...).
_WEB_SCALE = 1e8
#: Size words of repo names and architectures, as an ordinal (``vit-base``, ``convnext_large``, ``bert-mini``).
_SIZE_WORDS = {"nano": 0, "pico": 0, "tiny": 0, "mini": 0, "small": 1, "medium": 2, "base": 2, "large": 3, "xlarge": 4}
_SIZE_WORDS |= {"huge": 4, "giant": 5, "gigantic": 5, "xxlarge": 5}
_WORDS = re.compile(r"[a-z]+")
#: Language names and model families that name a language; ISO codes only as a whole name part (``hate_speech_nl``).
_LANGUAGE_WORDS = {
    "arabic", "spanish", "french", "german", "italian", "dutch", "portuguese", "russian", "chinese", "japanese",
    "korean", "turkish", "indonesian", "catalan", "bulgarian", "danish", "swedish", "finnish", "norwegian",
    "polish", "czech", "greek", "hebrew", "hindi", "bangla", "bengali", "persian", "vietnamese", "thai",
    "ukrainian", "romanian", "hungarian", "sundanese", "javanese", "tagalog", "urdu", "tamil", "icelandic",
    "camembert", "flaubert", "bertje", "robbert", "beto", "bne", "camelbert", "arabert", "klue", "kobert",
    "herbert", "rubert", "sbert_ru", "bertweet_es", "bertic", "geez", "tiroberta", "electricidad", "selectra",
}  # fmt: skip
_ISO_CODES = {
    "ar", "es", "fr", "de", "it", "nl", "pt", "ru", "zh", "ja", "ko", "tr", "id", "ca", "bg", "da", "sv", "fi",
    "no", "pl", "cs", "el", "he", "hi", "bn", "fa", "vi", "th", "uk", "ro", "hu", "su", "is", "ur", "ta",
}  # fmt: skip
_MULTILINGUAL = {"multilingual", "xlm", "mbert", "mminilm", "mdeberta", "labse", "mt5", "multi"}


def metadata_features(record: ModelRecord, facts: ImageNetFacts | None) -> np.ndarray:
    """``[METADATA_DIM]`` float32 features of ``record`` and its ImageNet ``facts`` (``None``: none known)."""
    values = dict.fromkeys(METADATA_NAMES, 0.0)
    sources = record.pretraining or (facts.pretraining if facts else ())
    scale = pretraining_scale(sources)
    if scale is not None:
        values.update(pretraining_scale=(scale - 6.0) / 4.0, has_pretraining=1.0)
        values["pretrained_on_web_scale"] = float(max(SOURCE_SIZES.get(s, 0.0) for s in sources) >= _WEB_SCALE)
    if facts is not None:
        values.update(imagenet_top1=facts.top1 / 100.0, has_imagenet_top1=1.0)
        values["imagenet_top5"] = (facts.top5 or 0.0) / 100.0
        if facts.imagenet_r_top1 is not None:
            values.update(imagenet_r_top1=facts.imagenet_r_top1 / 100.0, has_imagenet_r_top1=1.0)
        if facts.sketch_top1 is not None:
            values.update(sketch_top1=facts.sketch_top1 / 100.0, has_sketch_top1=1.0)
        values[f"facts_{facts.source}"] = 1.0
    gmacs = record.gmacs if record.gmacs is not None else facts.gmacs if facts is not None else None
    if gmacs:
        values.update(log_gmacs=math.log10(gmacs) / 2.0, has_gmacs=1.0)
    if record.num_labels:
        values.update(log_num_labels_head=math.log1p(record.num_labels) / 7.0, has_num_labels_head=1.0)
        values["small_head"] = float(record.num_labels < 100)
    words = _WORDS.findall(" ".join([record.repo_id, *(record.architectures or ())]).lower())
    sizes = [_SIZE_WORDS[w] for w in words if w in _SIZE_WORDS]
    if sizes:
        values.update(size_word=max(sizes) / 5.0, has_size_word=1.0)
    values["distilled"] = float(any(w.startswith("distil") for w in words))
    values.update(zip(("english", "multilingual", "non_english"), _languages(record), strict=True))
    values["has_base_model"] = float(bool(record.base_models))
    return np.array([values[name] for name in METADATA_NAMES], dtype=np.float32)


def _languages(record: ModelRecord) -> tuple[float, float, float]:
    """(English, multilingual, another language) flags from the card's ``language``, the repo name and the labels."""
    declared = {lang.lower() for lang in record.languages or ()}
    parts = re.split(r"[-_/.]", record.repo_id.lower())
    named = {p for p in parts if p in _LANGUAGE_WORDS or p in _ISO_CODES}
    named |= {w for w in _LANGUAGE_WORDS if len(w) > 4 and w in record.repo_id.lower()}
    multilingual = bool({"multilingual"} & declared) or any(p in _MULTILINGUAL or p.startswith("xlm") for p in parts)
    scripts = "".join(record.label_names or ())
    non_latin = any(ord(c) > 0x24F for c in scripts)
    english = "en" in declared or "english" in declared or "en" in parts
    other = bool(declared - {"en", "english", "multilingual"}) or bool(named - {"en"}) or non_latin
    return float(english), float(multilingual or (english and other)), float(other and not english)
