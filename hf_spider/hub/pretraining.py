"""What a model was pre-trained on, read from what the Hub says: timm pretrained tags, card datasets, tags, repo names.

The pre-training data is one of the strongest predictors of how features transfer (Kolesnikov et al., "Big Transfer",
ECCV 2020; Kornblith et al., CVPR 2019), and the Hub writes it in several places: timm's pretrained tags
(``resnet50.fb_swsl_ig1b_ft_in1k``, ``convnext_base.clip_laion2b_augreg_ft_in12k_in1k``), card ``datasets``
(``imagenet-21k``), ``dataset:`` tags, and repo names (``convnext-base-224-22k-1k``). Each spelling is normalised to
one source name with a known size, so the scorer reads "pre-trained on 2 billion web images" the same way whoever
wrote it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

#: Normalised source -> number of training images (or, for text corpora, of documents), for the scale feature.
SOURCE_SIZES: dict[str, float] = {
    "imagenet-1k": 1.28e6,
    "imagenet-12k": 1.2e7,
    "imagenet-21k": 1.4e7,
    "places-365": 1.8e6,
    "yfcc-100m": 1e8,
    "lvd-142m": 1.42e8,
    "merged-38m": 3.8e7,
    "jft-300m": 3e8,
    "jft-3b": 3e9,
    "openai-wit-400m": 4e8,
    "laion-400m": 4e8,
    "laion-2b": 2.3e9,
    "datacomp-1b": 1.4e9,
    "dfn-2b": 2e9,
    "instagram-1b": 1e9,
    "instagram-3.5b": 3.5e9,
    "webli": 1e10,
    "wikipedia": 6e6,
    "bookcorpus": 7.4e4,
    "cc100": 2.5e9,
    "c4": 3.6e8,
    "openwebtext": 8e6,
    "tweets": 8.5e8,
}
#: Spellings -> source, matched as whole tokens of a tag, dataset id or repo name (lower case, split on ``-_./ ``).
_TOKENS: dict[str, str] = {
    "in1k": "imagenet-1k",
    "imagenet1k": "imagenet-1k",
    "ilsvrc2012": "imagenet-1k",
    "1k": "imagenet-1k",
    "in12k": "imagenet-12k",
    "in21k": "imagenet-21k",
    "in22k": "imagenet-21k",
    "imagenet21k": "imagenet-21k",
    "imagenet22k": "imagenet-21k",
    "21k": "imagenet-21k",
    "22k": "imagenet-21k",
    "pt22k": "imagenet-21k",
    "ft22k": "imagenet-21k",
    "laion2b": "laion-2b",
    "laion400m": "laion-400m",
    "laiona": "laion-2b",
    "openai": "openai-wit-400m",
    "ig1b": "instagram-1b",
    "ig3b": "instagram-3.5b",
    "yfcc100m": "yfcc-100m",
    "jft300m": "jft-300m",
    "jft": "jft-300m",
    "jft3b": "jft-3b",
    "m38m": "merged-38m",
    "webli": "webli",
    "lvd142m": "lvd-142m",
    "dinov2": "lvd-142m",
    "datacompxl": "datacomp-1b",
    "datacomp": "datacomp-1b",
    "dfn2b": "dfn-2b",
    "places365": "places-365",
    "wikipedia": "wikipedia",
    "bookcorpus": "bookcorpus",
    "cc100": "cc100",
    "c4": "c4",
    "openwebtext": "openwebtext",
    "bertweet": "tweets",
}
#: Multi-token spellings of dataset ids (``imagenet-1k``, ``ILSVRC/imagenet-1k``, ``imagenet_21k``).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"imagenet[-_ ]?(?:1k|2012)"), "imagenet-1k"),
    (re.compile(r"imagenet(?![-_ ]?(?:\d|r\b|a\b|v2|sketch))"), "imagenet-1k"),  # a bare "imagenet" is ILSVRC-2012
    (re.compile(r"imagenet[-_ ]?12k"), "imagenet-12k"),
    (re.compile(r"imagenet[-_ ]?2[12]k"), "imagenet-21k"),
    (re.compile(r"laion[-_ ]?2b"), "laion-2b"),
    (re.compile(r"laion[-_ ]?400m"), "laion-400m"),
    (re.compile(r"jft[-_ ]?300m"), "jft-300m"),
    (re.compile(r"jft[-_ ]?3b"), "jft-3b"),
    (re.compile(r"yfcc[-_ ]?100m"), "yfcc-100m"),
    (re.compile(r"datacomp[-_ ]?(?:1b|xl)"), "datacomp-1b"),
    (re.compile(r"swsl|ssl[-_ ]?ig|instagram"), "instagram-1b"),
    (re.compile(r"\bcc[-_ ]?100\b"), "cc100"),
)
_SPLIT = re.compile(r"[-_./:\s]+")


def pretraining_sources(*texts: str | None) -> tuple[str, ...]:
    """Normalised sources named in ``texts`` (tags, dataset ids, a repo name, a timm tag), first mention first.

    Example:
        >>> pretraining_sources("clip_laion2b_augreg_ft_in12k_in1k")
        ('laion-2b', 'imagenet-12k', 'imagenet-1k')
        >>> pretraining_sources("facebook/convnext-base-224-22k-1k")
        ('imagenet-21k', 'imagenet-1k')
    """
    found: dict[str, int] = {}
    for position, text in enumerate(t.lower() for t in texts if t):
        hits: list[tuple[int, str]] = []
        for pattern, source in _PATTERNS:
            hits += [(m.start(), source) for m in pattern.finditer(text)]
        offset = 0
        for token in _SPLIT.split(text):
            start = text.find(token, offset)
            offset = start + len(token)
            if token in _TOKENS:
                hits.append((start, _TOKENS[token]))
        for start, source in sorted(hits):
            found.setdefault(source, position * 10_000 + start)
    return tuple(sorted(found, key=found.__getitem__))


def sources_of(texts: Iterable[str | None]) -> tuple[str, ...] | None:
    """:func:`pretraining_sources` of several texts, ``None`` when none names a source (unknown, not "none")."""
    sources = pretraining_sources(*texts)
    return sources or None


def pretraining_scale(sources: Iterable[str] | None) -> float | None:
    """``log10`` of the largest known source's size (images or documents), ``None`` when no source is known."""
    sizes = [SOURCE_SIZES[s] for s in sources or () if s in SOURCE_SIZES]
    return math.log10(max(sizes)) if sizes else None
