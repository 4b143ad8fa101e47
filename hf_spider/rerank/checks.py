"""Check what a candidate's config asks for against what its repo holds, before its model is built.

A Hub config is untrusted content like the weights. :func:`check_config` reads ``config.json`` (and an image
processor's ``preprocessor_config.json``) as plain data and refuses, before anything is allocated or loaded:

* a timm config whose ``model_args`` or ``pretrained_cfg`` holds a key that names a file or changes how timm loads
  (``checkpoint_path`` is handed to ``torch.load``, an unpickler), or whose ``architecture`` names another source;
* a config that stacks more layers or experts than any released model (a meta-device build of 200,000 layers takes
  minutes; a real one runs out of memory);
* an image input larger than :data:`MAX_IMAGE_SIDE` (a processor resizing every sample to 40,000 pixels a side asks
  for tens of GB).

:func:`check_parameters` then compares what the config describes (counted on the meta device) with what the
safetensors headers hold, and :func:`check_loading_info` what ``from_pretrained`` reports it could not fill.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeGuard

from ..errors import CandidateLoadError
from .fetch import first_line, read_json

#: Largest image side, in pixels, a candidate's processor may resize or crop to (``size``, ``crop_size``,
#: ``pad_size`` of ``preprocessor_config.json``; ``input_size`` and its kin of a timm ``pretrained_cfg``, and the
#: side a ``crop_pct`` resizes to first).
#:
#: Image-classification checkpoints on the Hub use sides up to about 1,024 pixels (SAM's encoder 1,024, timm's
#: EfficientNet-L2 800, EVA-02 448 to 560); 2,048 leaves room for four times those pixels. One float32 sample of
#: 3 x 2,048 x 2,048 is 50 MB and a batch of 32 is 1.6 GB, while the 40,000-pixel side a hostile repo asked for is
#: 19.2 GB per sample.
MAX_IMAGE_SIDE = 2048

#: Most layers, blocks or experts one config key may ask for (``num_hidden_layers``, ``n_layer``, a timm ``depth``,
#: ``num_experts``; a list such as Swin's ``depths`` counts its sum).
#:
#: Released models stay well below it: the deepest transformers have under 200 layers (Llama 3.1 405B has 126), the
#: most experts are 384 (Kimi K2). It is checked before the meta-device build that counts the parameters, which
#: costs about 5 ms per BERT layer: at this cap about 2.5 s, where 200,000 layers took minutes.
MAX_REPEATED_MODULES = 512

#: A config may describe at most this many times the tensor elements its safetensors weights hold (plus
#: :data:`PARAMETER_SLACK`). Real repos differ by a new classification head, buffers that are not saved, or 4-bit
#: weights packed two to a byte; a config asking for thousands of times its weights is a memory bomb.
MAX_PARAMETER_RATIO = 4

#: Elements a config may describe beyond what its weights hold whatever their ratio: a new classification head of a
#: large encoder (4,096 features x 1,000 classes is 4.1 million) is normal.
PARAMETER_SLACK = 10_000_000

#: Config keys that count stacked layers, blocks or experts (matched at the end of the key, case-insensitively).
_REPEAT_KEY = re.compile(r"(layers|layer|depths|depth|blocks|experts)$", re.IGNORECASE)

#: Keys whose list gives the modules of each stage (Swin's and timm's ``depths``, a timm ResNet's ``layers``).
_SUMMED_KEYS = frozenset({"depths", "depth", "layers", "blocks"})

#: Keys of timm's ``PretrainedCfg`` that name where weights come from or how they load: never read from a repo.
_TIMM_SOURCE_KEYS = frozenset({"url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source"})

#: ``timm.create_model`` / ``build_model_with_cfg`` keywords that load files or change how a model is built or
#: loaded; refused in ``model_args`` even should a model class take a parameter of that name.
_TIMM_LOADING_ARGS = frozenset(
    {
        "pretrained",
        "pretrained_cfg",
        "pretrained_cfg_overlay",
        "pretrained_strict",
        "pretrained_filter_fn",
        "pretrained_model_args",
        "checkpoint_path",
        "cache_dir",
        "feature_cfg",
        "feature_cls",
        "features_only",
        "kwargs_filter",
        "scriptable",
        "exportable",
        "no_jit",
        "device",
        "dtype",
    }
)

#: Words that mark an argument name as one that may name a file, a source or a loading behaviour.
_FILE_WORDS = ("path", "file", "url", "checkpoint", "pretrain", "hub", "cache", "dir", "weight", "load", "source")

#: Parameters of timm's model classes that contain one of :data:`_FILE_WORDS` and were read (timm 1.0.31) to be
#: architecture settings: drop-path rates, Swin V2's window size, gradient checkpointing, init schemes.
_TIMM_VETTED_ARGS = frozenset(
    {
        "bidirectional",
        "bn_weight_init",
        "drop_path",
        "drop_path_prob",
        "drop_path_rate",
        "drop_path_rates",
        "grad_checkpointing",
        "pretrained_window_size",
        "pretrained_window_sizes",
        "state_dim",
        "transformer_drop_path",
        "use_checkpoint",
        "weight_init",
    }
)

#: Interpolation names timm's transforms know, and its evaluation crop modes.
_TIMM_INTERPOLATIONS = frozenset({"nearest", "bilinear", "bicubic", "box", "hamming", "lanczos", "random"})
_TIMM_CROP_MODES = frozenset({"center", "squash", "border"})

_DROP = "; drop it"


def check_config(model_id: str, folder: Path, config: dict[str, Any], *, modality: str, layout: str) -> None:
    """The checks that read only the repo's configs: safe timm keys, stacked modules, image sizes.

    Raises:
        CandidateLoadError: the config names a key timm would load a file by, stacks more than
            :data:`MAX_REPEATED_MODULES` modules, or asks for images larger than :data:`MAX_IMAGE_SIDE`.
    """
    if layout == "timm":
        check_timm_config(model_id, config)
    _check_repeats(model_id, config, "config.json")
    if modality == "image" and (folder / "preprocessor_config.json").is_file():
        processor = read_json(model_id, folder / "preprocessor_config.json")
        if isinstance(processor, dict):
            _check_processor_sizes(model_id, processor)


def check_timm_config(model_id: str, config: dict[str, Any]) -> None:
    """Refuse a timm config that would make timm read a file, or hand it a data config it cannot use.

    ``model_args`` is passed to ``timm.create_model`` as keywords: a key is accepted only when it is a parameter of
    one of the installed timm's model classes (an architecture setting) and names no file or loading behaviour.
    ``pretrained_cfg`` keys must be fields of timm's ``PretrainedCfg`` other than the weight sources, and its data
    settings must be ones timm's transforms can use.

    Raises:
        CandidateLoadError: naming the key and what is wrong with it.
    """
    architecture = config.get("architecture")
    if not isinstance(architecture, str) or not architecture:
        raise CandidateLoadError(model_id, "config.json's 'architecture' is not a timm model name" + _DROP)
    import timm.models

    source, _ = timm.models.parse_model_name(architecture)
    if source is not None:
        raise CandidateLoadError(
            model_id,
            f"config.json's architecture '{architecture}' makes timm read the config (and files) of '{source}' "
            "instead of this repo" + _DROP,
        )
    model_args = config.get("model_args")
    if model_args is not None:
        if not isinstance(model_args, dict):
            raise CandidateLoadError(model_id, "config.json's 'model_args' is not an object" + _DROP)
        allowed = timm_model_arguments()
        for key in model_args:
            if key not in allowed:
                raise CandidateLoadError(
                    model_id,
                    f"config.json's model_args has '{key}', which is no architecture setting of a timm model "
                    "(timm would read it as a file to load or a loading option)" + _DROP,
                )
        _check_repeats(model_id, model_args, "config.json's model_args")
        size = model_args.get("img_size")
        sides = [size] if isinstance(size, int) else size if isinstance(size, list) else []
        if any(isinstance(s, int | float) and s > MAX_IMAGE_SIDE for s in sides):
            raise CandidateLoadError(
                model_id, f"config.json's model_args asks for img_size {size}, over {MAX_IMAGE_SIDE} pixels" + _DROP
            )
    pretrained_cfg = config.get("pretrained_cfg", {})
    if not isinstance(pretrained_cfg, dict):
        raise CandidateLoadError(model_id, "config.json's 'pretrained_cfg' is not an object" + _DROP)
    known = _timm_pretrained_cfg_fields() - _TIMM_SOURCE_KEYS
    for key in pretrained_cfg:
        if key not in known:
            what = "names where timm loads weights from" if key in _TIMM_SOURCE_KEYS else "is no timm setting"
            raise CandidateLoadError(model_id, f"config.json's pretrained_cfg has '{key}', which {what}" + _DROP)
    if pretrained_cfg.get("custom_load") not in (None, False):
        raise CandidateLoadError(
            model_id, "config.json's pretrained_cfg sets 'custom_load', a loading behaviour of timm's own" + _DROP
        )
    problem = _timm_data_problem(pretrained_cfg)
    if problem:
        raise CandidateLoadError(model_id, f"config.json's pretrained_cfg {problem}" + _DROP)


@functools.cache
def timm_model_arguments() -> frozenset[str]:
    """The keywords ``model_args`` may pass to ``timm.create_model``: the parameters of the installed timm's model
    classes (every ``nn.Module`` defined under ``timm.models``), less the factory's loading keywords and any name
    that may name a file (:data:`_FILE_WORDS`) unless it was read to be an architecture setting."""
    import inspect
    import sys

    import timm.models
    import torch

    names: set[str] = set()
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("timm.models") and m is not None]
    for module in [timm.models, *modules]:
        for obj in vars(module).values():
            if not (inspect.isclass(obj) and issubclass(obj, torch.nn.Module)):
                continue
            if not obj.__module__.startswith("timm."):
                continue
            try:
                parameters = inspect.signature(obj.__init__).parameters.values()
            except (TypeError, ValueError):
                continue
            names.update(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    names.discard("self")
    names -= _TIMM_LOADING_ARGS
    return frozenset(n for n in names if n in _TIMM_VETTED_ARGS or not any(w in n.lower() for w in _FILE_WORDS))


@functools.cache
def _timm_pretrained_cfg_fields() -> frozenset[str]:
    import dataclasses

    from timm.models import PretrainedCfg

    return frozenset(f.name for f in dataclasses.fields(PretrainedCfg))


def _timm_data_problem(cfg: dict[str, Any]) -> str | None:
    """What is wrong with a timm data config (the settings its image processor is built from), or ``None``."""
    channels = 3
    sides = []
    for key in ("input_size", "test_input_size", "min_input_size"):
        value = cfg.get(key)
        if value is None:
            continue
        if not (isinstance(value, list | tuple) and len(value) == 3 and all(type(v) is int and v > 0 for v in value)):
            return f"'{key}' is {_show(value)}, not [channels, height, width] of positive whole numbers"
        if max(value[1:]) > MAX_IMAGE_SIDE:
            return f"'{key}' asks for {value[1]} x {value[2]} pixels, over {MAX_IMAGE_SIDE} a side"
        if key == "input_size":
            channels = value[0]
        sides.append(max(value[1:]))
    for key in ("mean", "std"):
        value = cfg.get(key)
        if value is None:
            continue
        numbers = value if isinstance(value, list | tuple) else [value]
        if not numbers or not all(_is_number(v) for v in numbers) or len(numbers) not in (1, channels):
            return f"'{key}' is {_show(value)}, not {channels} numbers (one per channel)"
        if key == "std" and not all(v > 0 for v in numbers):
            return f"'std' is {_show(value)}: every value must be above 0"
    for key in ("crop_pct", "test_crop_pct"):
        value = cfg.get(key)
        if value is None:
            continue
        if not _is_number(value) or value <= 0:
            return f"'{key}' is {_show(value)}, not a number above 0"
        if sides and max(sides) / value > MAX_IMAGE_SIDE:
            return f"'{key}' {value} resizes to {max(sides) / value:.0f} pixels first, over {MAX_IMAGE_SIDE} a side"
    interpolation = cfg.get("interpolation")
    if interpolation is not None and interpolation not in _TIMM_INTERPOLATIONS:
        return f"'interpolation' is {_show(interpolation)}, none of {', '.join(sorted(_TIMM_INTERPOLATIONS))}"
    crop_mode = cfg.get("crop_mode")
    if crop_mode is not None and crop_mode not in _TIMM_CROP_MODES:
        return f"'crop_mode' is {_show(crop_mode)}, none of {', '.join(sorted(_TIMM_CROP_MODES))}"
    return None


def _check_processor_sizes(model_id: str, processor: dict[str, Any]) -> None:
    """Refuse a ``preprocessor_config.json`` that resizes, crops or pads past :data:`MAX_IMAGE_SIDE`."""
    largest = 0.0
    for key in ("size", "crop_size", "pad_size"):
        for value in _numbers(processor.get(key)):
            if value > MAX_IMAGE_SIDE:
                raise CandidateLoadError(
                    model_id,
                    f"preprocessor_config.json's '{key}' asks for {_show(processor[key])} pixels, over "
                    f"{MAX_IMAGE_SIDE} a side (every sample would be resized to it)" + _DROP,
                )
            largest = max(largest, value)
    crop_pct = processor.get("crop_pct")
    if _is_number(crop_pct) and crop_pct > 0 and largest / crop_pct > MAX_IMAGE_SIDE:
        raise CandidateLoadError(
            model_id,
            f"preprocessor_config.json's 'crop_pct' {crop_pct} resizes to {largest / crop_pct:.0f} pixels first, "
            f"over {MAX_IMAGE_SIDE} a side" + _DROP,
        )


def _check_repeats(model_id: str, config: dict[str, Any], where: str, level: int = 0) -> None:
    """Refuse a config (or a nested one: ``text_config``, ``vision_config``) stacking too many modules."""
    for key, value in config.items():
        if isinstance(value, dict) and level < 4:
            _check_repeats(model_id, value, f"{where} {key}", level + 1)
            continue
        if not _REPEAT_KEY.search(str(key)):
            continue
        count: float
        if type(value) is int:
            count = value
        elif isinstance(value, list):  # stage depths add up; other lists (layer indices) are bounded by their largest
            numbers = list(_numbers(value)) or [0]
            count = sum(numbers) if str(key).lower() in _SUMMED_KEYS else max(numbers)
        else:
            continue
        if count > MAX_REPEATED_MODULES:
            raise CandidateLoadError(
                model_id,
                f"{where} asks for {key} = {_show(value)}, over the {MAX_REPEATED_MODULES} any released model has; "
                "it would take minutes and more memory than its weights hold to build" + _DROP,
            )


def weights_parameters(model_id: str, folder: Path) -> int:
    """Tensor elements the repo's top-level safetensors files hold, read from their headers only.

    Raises:
        CandidateLoadError: a header is unreadable or is no safetensors header.
    """
    from ..hub.local import parameters_from_safetensors_header

    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with path.open("rb") as f:
                total += sum(parameters_from_safetensors_header(f).values())
        except (OSError, ValueError) as exc:
            raise CandidateLoadError(
                model_id, f"{path.name} has no readable safetensors header ({first_line(exc)})" + _DROP
            ) from exc
    return total


def described_parameters(model_class: Any, config: Any, *, trust_remote_code: bool) -> int:
    """Tensor elements (parameters and buffers) the model ``config`` describes, counted on the meta device
    (accelerate's ``init_empty_weights``: nothing is allocated)."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=True):
        model = model_class.from_config(config, trust_remote_code=trust_remote_code)
    tensors = {id(t): t.numel() for t in (*model.parameters(), *model.buffers())}
    return sum(tensors.values())


def check_parameters(model_id: str, described: int, held: int) -> None:
    """Refuse a config that describes far more tensor elements than the weights hold.

    Raises:
        CandidateLoadError: ``described`` exceeds ``MAX_PARAMETER_RATIO * held + PARAMETER_SLACK``.
    """
    if described > MAX_PARAMETER_RATIO * held + PARAMETER_SLACK:
        raise CandidateLoadError(
            model_id,
            f"config.json describes {described:,} parameters but its safetensors weights hold {held:,}; "
            "building it would allocate memory for weights that do not exist" + _DROP,
        )


def check_loading_info(
    model_id: str, model: Any, info: dict[str, Any], *, layout: str, has_head: bool, new_head: bool = False
) -> None:
    """Refuse a model whose weights did not fill it: tensors of another shape, or missing backbone tensors.

    A classification head that the weights lack is drawn afresh by design and is not counted; neither is the pooler
    of a model without a head (its features never read it). Everything else would be left at its random
    initialisation, and the candidate ranked on noise. With ``new_head`` (a fine-tune's head for the task's classes)
    the head may also differ in shape from the weights', and a missing pooler is drawn afresh too: both are trained.

    Raises:
        CandidateLoadError: naming the first mismatched tensor and its two shapes, or how many tensors are missing.
    """
    head = _head_tensors(model, layout) if has_head else set()
    mismatched = sorted(
        (m for m in info.get("mismatched_keys") or () if not (new_head and m[0] in head)), key=lambda m: str(m[0])
    )
    if mismatched:
        name, held, described = mismatched[0]
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        raise CandidateLoadError(
            model_id,
            f"its weights do not fit its config: tensor '{name}' is {_shape(held)} in the weights but config.json "
            f"makes it {_shape(described)}{more}; fix config.json or drop it",
        )
    pooler_optional = not has_head or new_head
    missing = sorted(k for k in info.get("missing_keys") or () if not _ignorable(k, head, pooler_optional))
    if missing:
        total = len(model.state_dict())
        raise CandidateLoadError(
            model_id,
            f"{len(missing)} of its {total} weight tensors are missing from its weights (first '{missing[0]}'); "
            "they would be random, so its features would rank nothing" + _DROP,
        )


def _head_tensors(model: Any, layout: str) -> set[str]:
    """Names of the classification head's tensors (a timm head sits inside the base model's prefix)."""
    if layout == "timm":
        head = model.timm_model.get_classifier()
        ids = {id(t) for t in (*head.parameters(), *head.buffers())}
        return {n for n, t in (*model.named_parameters(), *model.named_buffers()) if id(t) in ids}
    prefix = f"{model.base_model_prefix}."
    return {n for n in model.state_dict() if model.base_model_prefix and not n.startswith(prefix)}


def _ignorable(key: str, head: set[str], pooler_optional: bool) -> bool:
    if key in head:
        return True
    return pooler_optional and (key.startswith("pooler.") or ".pooler." in f".{key}")


def memory_reason(exc: BaseException) -> str | None:
    """A reason for an allocation that failed (``MemoryError``, torch's CPU allocator or CUDA out of memory), or
    ``None`` for any other error."""
    import torch

    text = str(exc)
    if isinstance(exc, torch.OutOfMemoryError):
        return "it asked for more memory than the device has (out of memory); drop it or use a larger device"
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "bad_alloc" in text:
        size = re.search(r"allocate (\d+) bytes", text)
        amount = f" ({int(size.group(1)) / 1e9:.1f} GB in one allocation)" if size else ""
        return f"it asked for more memory than is available{amount}" + _DROP
    return None


def _numbers(value: Any) -> Iterable[float]:
    """The numbers in a size setting: a number, or the values of a list or an object."""
    if _is_number(value):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [v for v in items if _is_number(v)]


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shape(shape: Any) -> str:
    return str(list(shape))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
