"""Re-ranking with real forward passes: tiny random-weight BERT / ViT candidates saved by the tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hf_spider.errors import CandidateLoadError, EstimatorInputError, NothingRerankedError
from hf_spider.hub.index import write_index
from hf_spider.hub.records import ModelRecord
from hf_spider.outputs.shortlist import Shortlist
from hf_spider.rerank.combine import rerank_shortlist
from hf_spider.rerank.distributed import deal_by_size, rerank_candidates
from hf_spider.rerank.forward import extract_features
from hf_spider.rerank.fusion import DEFAULT_ESTIMATORS, FUSION_PARAMETERS
from hf_spider.rerank.options import ForwardOptions
from hf_spider.rerank.samples import load_samples

WORDS = [f"w{i}" for i in range(40)]
LABELS = ("neg", "pos", "neutral")


# ----------------------------------------------------------------------------------------------- tiny candidates


def _tokenizer(folder: Path):
    """A WordPiece tokenizer that knows ``WORDS``, saved in ``folder``.

    Read back with ``from_pretrained``: transformers 5 ignores ``BertTokenizer(vocab_file=...)`` and builds a
    tokenizer of the 5 special tokens, which turns every word into ``[UNK]``.
    """
    from transformers import BertTokenizer

    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(folder, model_max_length=32)
    tokenizer.save_pretrained(folder)
    return tokenizer


def save_bert(root: Path, repo_id: str, *, hidden: int = 16, seed: int = 0, head: bool = False) -> ModelRecord:
    """A random-weight BERT (with a 3-class head when ``head``) saved as safetensors under ``root/repo_id``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    folder = root / repo_id
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=32,
        num_labels=3,
    )
    model = BertForSequenceClassification(config) if head else BertModel(config)
    model.save_pretrained(folder)
    _tokenizer(folder)
    params = sum(p.numel() for p in model.parameters())
    tag = "text-classification" if head else "feature-extraction"
    return ModelRecord(repo_id=repo_id, pipeline_tag=tag, num_parameters=params, model_type="bert")


def test_the_tiny_candidates_tokenizer_knows_the_words(tmp_path) -> None:
    from transformers import AutoTokenizer

    save_bert(tmp_path, "tiny/words")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tiny/words")
    ids = tokenizer("w0 w17 w39")["input_ids"]
    assert len(tokenizer) == len(WORDS) + 5 and tokenizer.unk_token_id not in ids
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "w0", "w17", "w39", "[SEP]"]


def save_vit(root: Path, repo_id: str, *, seed: int = 0, head: bool = False) -> ModelRecord:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel

    folder = root / repo_id
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=16,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=4,
    )
    model = ViTForImageClassification(config) if head else ViTModel(config, add_pooling_layer=False)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(folder)
    return ModelRecord(repo_id=repo_id, pipeline_tag="image-classification", num_parameters=1000)


def _pickle_only(folder: Path) -> None:
    """Replace the safetensors weights by ``pytorch_model.bin`` (what old Hub repos hold)."""
    import torch
    from safetensors.torch import load_file

    weights = folder / "model.safetensors"
    torch.save(load_file(str(weights)), folder / "pytorch_model.bin")
    weights.unlink()


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> tuple[Path, list[ModelRecord]]:
    """8 loadable text candidates plus a broken one, a remote-code one and a pickle-only one, under one folder."""
    root = tmp_path_factory.mktemp("candidates")
    records = [save_bert(root, f"tiny/bert-{i}", hidden=(16, 24, 32)[i % 3], seed=i, head=i % 2 == 1) for i in range(8)]
    broken = save_bert(root, "tiny/broken", seed=9)
    (root / "tiny/broken/model.safetensors").write_bytes(b"not a safetensors file")
    remote = save_bert(root, "tiny/remote-code", seed=10)
    config = json.loads((root / "tiny/remote-code/config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (root / "tiny/remote-code/config.json").write_text(json.dumps(config))
    pickled = save_bert(root, "tiny/pickle-only", seed=11)
    _pickle_only(root / "tiny/pickle-only")
    return root, [*records, broken, remote, pickled]


@pytest.fixture(scope="module")
def text_task(tmp_path_factory) -> Path:
    """A ``save_to_disk`` text dataset: 3 classes, 12 rows each, class-dependent words."""
    import datasets

    rng = np.random.default_rng(0)
    texts, labels = [], []
    for c in range(len(LABELS)):
        for _ in range(12):
            words = rng.choice(WORDS[c * 10 : c * 10 + 15], size=rng.integers(3, 8))
            texts.append(" ".join(words))
            labels.append(c)
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(LABELS))})
    path = tmp_path_factory.mktemp("task") / "reviews"
    datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features).save_to_disk(str(path))
    return path


def stage_one(records: list[ModelRecord]) -> Shortlist:
    """A stage-one shortlist: every candidate, scored by a fixed, made-up fitness (higher for later ids)."""
    scores = {r.repo_id: float(i) / 10 for i, r in enumerate(records)}
    return Shortlist.from_scores(scores, task="reviews", ranker="test", reasons={m: ("test",) for m in scores})


def options(root: Path, **kwargs) -> ForwardOptions:
    return ForwardOptions(local_dir=str(root), batch_size=8, **kwargs)


# ----------------------------------------------------------------------------------------------- safety checks


def test_auto_map_config_is_skipped_unless_remote_code_is_trusted(pool, text_task) -> None:
    root, records = pool
    remote = next(r for r in records if r.repo_id == "tiny/remote-code")
    samples = load_samples(text_task, per_class=2)
    with pytest.raises(CandidateLoadError, match=r"auto_map.*trust_remote_code=True") as info:
        extract_features(remote, samples.inputs, modality="text", options=options(root))
    assert info.value.model_id == "tiny/remote-code"


def test_pickle_only_weights_are_skipped_unless_allowed(pool, text_task) -> None:
    root, records = pool
    pickled = next(r for r in records if r.repo_id == "tiny/pickle-only")
    samples = load_samples(text_task, per_class=2)
    with pytest.raises(CandidateLoadError, match=r"pickle \(pytorch_model.bin\).*allow_pickle=True"):
        extract_features(pickled, samples.inputs, modality="text", options=options(root))
    out = extract_features(pickled, samples.inputs, modality="text", options=options(root, allow_pickle=True))
    assert out.features.shape == (6, 16)


def test_a_model_of_the_other_modality_is_refused(pool, text_task) -> None:
    root, records = pool
    image_record = ModelRecord(repo_id=records[0].repo_id, pipeline_tag="image-classification")
    with pytest.raises(CandidateLoadError, match="image model and the task is text"):
        extract_features(image_record, ["a"], modality="text", options=options(root))


# ----------------------------------------------------------------------------------------------- features


def test_head_models_give_the_head_input_and_source_probabilities(pool, text_task) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root, records = pool
    samples = load_samples(text_task, per_class=3)
    out = extract_features(records[1], samples.inputs, modality="text", options=options(root))
    model = AutoModelForSequenceClassification.from_pretrained(root / records[1].repo_id).eval()
    batch = AutoTokenizer.from_pretrained(root / records[1].repo_id)(samples.inputs, padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = model.bert(**batch).pooler_output  # what BertForSequenceClassification's classifier reads
        logits = model(**batch).logits
    np.testing.assert_allclose(out.features, pooled.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.probabilities, torch.softmax(logits.double(), -1).numpy(), rtol=1e-5, atol=1e-7)
    assert out.forward_seconds > 0


def test_plain_text_encoders_are_mean_pooled_and_batching_does_not_change_features(pool, text_task) -> None:
    root, records = pool
    samples = load_samples(text_task, per_class=4)
    one = extract_features(
        records[0], samples.inputs, modality="text", options=ForwardOptions(local_dir=str(root), batch_size=1)
    )
    many = extract_features(records[0], samples.inputs, modality="text", options=options(root))
    assert one.features.shape == (12, 16) and one.probabilities is None
    np.testing.assert_allclose(one.features, many.features, rtol=1e-4, atol=1e-5)


def _edit_weights(folder: Path, edit) -> None:
    """Rewrite ``folder``'s safetensors weights through ``edit(name, tensor)``."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    edited = {k: edit(k, v).contiguous() for k, v in weights.items()}
    save_file(edited, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_candidates_whose_features_are_the_same_for_every_sample_fail(tmp_path, text_task) -> None:
    import torch

    good = save_bert(tmp_path, "tiny/good", seed=0)
    zero = save_bert(tmp_path, "tiny/zero-weights", seed=1)  # every weight 0: exactly constant features
    _edit_weights(tmp_path / zero.repo_id, lambda k, v: torch.zeros_like(v) if v.is_floating_point() else v)
    bias = save_bert(tmp_path, "tiny/const-bias", seed=2)  # last LayerNorm weight 0: its bias, up to rounding
    _edit_weights(
        tmp_path / bias.repo_id,
        lambda k, v: torch.zeros_like(v) if k.endswith("layer.0.output.LayerNorm.weight") else v,
    )
    results = rerank_candidates([good, zero, bias], load_samples(text_task, per_class=2), options=options(tmp_path))
    assert results[0].error is None and results[0].estimator_scores
    for failed in results[1:]:
        assert "its features are the same for every sample" in failed.error, failed.model_id
        assert "the model reads nothing of the input" in failed.error and not failed.estimator_scores


def test_feature_problem_tells_rounding_from_signal_and_blames_the_model_for_nan() -> None:
    from hf_spider.rerank.forward import CandidateFeatures, feature_problem

    rng = np.random.default_rng(0)
    bias = rng.normal(size=16).astype(np.float32)
    ulps = np.spacing(np.abs(bias)) * rng.integers(-2, 3, size=(30, 16))  # a few ulps of rounding per sample
    rounded = (bias + ulps).astype(np.float32)
    signal = (bias + 1e-4 * rng.normal(size=(30, 16))).astype(np.float32)  # small, but far above rounding

    def problem(x: np.ndarray) -> str | None:
        return feature_problem(CandidateFeatures(x, None, 0.0, 0.0))

    assert "the same for every sample (spread" in problem(rounded)
    assert "the same for every sample (spread 0 " in problem(np.zeros((30, 4), np.float32))
    assert problem(signal) is None
    nan = signal.copy()
    nan[3, 2] = np.nan
    nan[5] = np.inf
    reason = problem(nan)
    assert "NaN or infinite for 2 of 30 samples" in reason and "not the samples" in reason
    assert "impute" not in reason


def test_a_text_candidate_whose_tokenizer_knows_no_word_fails(tmp_path, text_task) -> None:
    record = save_bert(tmp_path, "tiny/no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (tmp_path / record.repo_id / name).unlink(missing_ok=True)  # transformers builds a 5-token tokenizer
    samples = load_samples(text_task, per_class=2)
    with pytest.raises(CandidateLoadError, match=r"as the unknown token '\[UNK\]' \(it knows 5 tokens") as info:
        extract_features(record, samples.inputs, modality="text", options=options(tmp_path))
    assert "the model would read nothing of the text" in info.value.reason


def test_image_candidates_with_and_without_head(tmp_path) -> None:
    from PIL import Image

    head = save_vit(tmp_path, "tiny/vit-head", head=True)
    plain = save_vit(tmp_path, "tiny/vit", seed=1)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)) for _ in range(5)]
    with_head = extract_features(head, images, modality="image", options=options(tmp_path))
    without = extract_features(plain, images, modality="image", options=options(tmp_path))
    assert with_head.features.shape == (5, 16) and with_head.probabilities.shape == (5, 4)
    assert without.features.shape == (5, 16) and without.probabilities is None


# ----------------------------------------------------------------------------------------------- from the Hub


def _files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def test_the_indexed_revision_is_the_one_downloaded(loopback_hub, pool, tmp_path) -> None:
    root, records = pool
    first = loopback_hub.add_repo("acme/tiny-bert", _files(root / records[0].repo_id))
    newer = save_bert(tmp_path, "newer", seed=42)
    loopback_hub.update_repo(
        "acme/tiny-bert", {"model.safetensors": (tmp_path / "newer/model.safetensors").read_bytes()}
    )
    texts = ["w1 w2 w3", "w4 w5"]
    pinned = extract_features(ModelRecord(repo_id="acme/tiny-bert", sha=first), texts, modality="text")
    local = extract_features(records[0], texts, modality="text", options=options(root))
    latest = extract_features(ModelRecord(repo_id="acme/tiny-bert"), texts, modality="text")
    local_newer = extract_features(newer, texts, modality="text", options=options(tmp_path))
    np.testing.assert_array_equal(pinned.features, local.features)
    np.testing.assert_array_equal(latest.features, local_newer.features)


def test_offline_the_cached_snapshot_of_the_pinned_revision_is_used(loopback_hub, pool, monkeypatch) -> None:
    from huggingface_hub import constants

    root, _ = pool
    record = ModelRecord(repo_id="acme/cached", sha=loopback_hub.add_repo("acme/cached", _files(root / "tiny/bert-1")))
    online = extract_features(record, ["w1 w2", "w3"], modality="text")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loopback_hub.clear_requests()
    offline = extract_features(record, ["w1 w2", "w3"], modality="text")
    assert loopback_hub.requests == []
    np.testing.assert_array_equal(online.features, offline.features)
    np.testing.assert_array_equal(online.probabilities, offline.probabilities)


def test_unsafe_hub_candidates_are_refused_before_their_weights_are_downloaded(loopback_hub, pool) -> None:
    root, _ = pool
    for name in ("pickle-only", "remote-code"):
        loopback_hub.add_repo(f"acme/{name}", _files(root / f"tiny/{name}"))
    for name, reason in (("pickle-only", "allow_pickle=True"), ("remote-code", "trust_remote_code=True")):
        with pytest.raises(CandidateLoadError, match=reason):
            extract_features(ModelRecord(repo_id=f"acme/{name}"), ["w1"], modality="text")
    weights = [r.path for r in loopback_hub.requests if r.path.endswith((".bin", ".safetensors"))]
    assert weights == []


def test_a_missing_hub_repo_is_a_candidate_error(loopback_hub) -> None:
    with pytest.raises(CandidateLoadError, match="could not fetch it from the Hub") as info:
        extract_features(ModelRecord(repo_id="acme/gone"), ["w1"], modality="text")
    assert info.value.model_id == "acme/gone"


# ----------------------------------------------------------------------------------------------- distribution


def test_deal_by_size_balances_the_contiguous_slices() -> None:
    sizes = [100, 90, 80, 70, 60, 50, 40]
    records = [ModelRecord(repo_id=f"m{i}", num_parameters=s) for i, s in enumerate(sizes)]
    dealt = deal_by_size(records, 2)
    first, second = dealt[:4], dealt[4:]  # the slices split_between_processes cuts for 7 items over 2 processes
    assert [r.num_parameters for r in first] == [100, 80, 60, 40]
    assert [r.num_parameters for r in second] == [90, 70, 50]
    assert sorted(r.repo_id for r in dealt) == sorted(r.repo_id for r in records)


def test_a_failing_candidate_is_reported_and_the_others_are_scored(pool, text_task) -> None:
    root, records = pool
    chosen = [records[0], records[-3], records[1], records[0]]  # broken one in the middle, a duplicate at the end
    results = rerank_candidates(chosen, load_samples(text_task, per_class=3), options=options(root))
    assert [r.model_id for r in results] == ["tiny/bert-0", "tiny/broken", "tiny/bert-1"]
    assert "no readable safetensors header" in results[1].error and not results[1].estimator_scores
    assert all(r.error is None and np.isfinite(r.estimator_scores["logme"]) for r in (results[0], results[2]))


# ----------------------------------------------------------------------------------------------- the shortlist


def test_rerank_shortlist_orders_reranked_then_not_run_then_failed(pool, text_task) -> None:
    root, records = pool
    shortlist = stage_one(records[:9])  # bert-0..7 and broken (best stage-one score)
    out = rerank_shortlist(shortlist, text_task, records, k=4, per_class=3, options=options(root))
    top4 = shortlist.model_ids[:4]
    assert len(out) == len(shortlist) and [e.rank for e in out] == list(range(1, len(out) + 1))
    assert set(out.model_ids[:3]) == set(top4) - {"tiny/broken"}
    assert all(e.reasons[0].startswith("re-ranked: LogME ") and "logme" in e.estimator_scores for e in out[:3])
    assert out.model_ids[3:8] == shortlist.model_ids[4:]  # not run: stage-one order kept
    # the failed candidate is listed below every candidate not shown to be broken, run or not
    assert out[8].model_id == "tiny/broken" and "safetensors header" in out[8].error and not out[8].estimator_scores
    scores = [e.score for e in out]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0 and scores[-1] == 0.0
    meta = out.metadata["rerank"]
    assert meta["k"] == 4 and meta["reranked"] == 3 and meta["failed"] == 1 and meta["num_samples"] == 9
    assert out.ranker == f"test+{'+'.join(DEFAULT_ESTIMATORS)}" and meta["estimators"] == list(DEFAULT_ESTIMATORS)
    assert meta["fusion"]["agreement"] is FUSION_PARAMETERS.agreement  # how to replay it is recorded
    assert meta["fusion"]["fitted"] is True


def test_the_note_that_stage_one_did_not_read_the_samples_says_stage_two_did(pool, text_task) -> None:
    """Stage one's note that it read label names only is made before stage two runs; after stage two it says how many
    candidates were re-ranked on the samples, and the other notes are kept as they were."""
    from hf_spider.ranking import samples_not_read_note

    root, records = pool
    base = stage_one(records[:9])
    notes = ["another note", samples_not_read_note()]
    base = replace(base, metadata={**base.metadata, "notes": notes})
    out = rerank_shortlist(base, text_task, records, k=4, per_class=3, options=options(root))
    assert out.metadata["rerank"]["reranked"] == 3  # the fourth of the top 4 is broken
    assert out.metadata["notes"] == ["another note", samples_not_read_note(3)]
    assert samples_not_read_note(3).startswith("stage one did not read the dataset's samples: ")
    assert "; stage two re-ranked 3 candidate(s) on them; " in samples_not_read_note(3)
    assert "re-ranked" not in samples_not_read_note()
    plain = rerank_shortlist(stage_one(records[:3]), text_task, records, k=2, per_class=3, options=options(root))
    assert "notes" not in plain.metadata  # none made, none added


def test_a_reranked_shortlist_replays_through_fuse(pool, text_task) -> None:
    from hf_spider.rerank import fuse, fusion_inputs

    root, records = pool
    base = stage_one(records[:6])
    evidence = ["records", "size", "records", "content", "facts", None]
    base = base.with_entries([replace(e, evidence=evidence[i]) for i, e in enumerate(base)])
    out = rerank_shortlist(base, text_task, records, k=6, per_class=3, options=options(root))
    again = Shortlist.from_json(out.to_json())
    ids, inputs = fusion_inputs(again)
    assert inputs["evidence"] == [base[m].evidence for m in range(6)]  # stage-one order
    replayed = [ids[i] for i in fuse(**inputs).order]
    assert replayed == out.model_ids[:6]
    trusted = {**inputs, "evidence": None, "confidence": [0.95] * 6}
    only_stage_one = fuse(**trusted, parameters=replace(FUSION_PARAMETERS, agreement=False)).order
    assert [ids[i] for i in only_stage_one] == base.model_ids[:6]  # fully trusted stage one keeps its order


def test_nothing_reranked_is_an_error_that_names_the_first_reason(pool, text_task) -> None:
    root, records = pool
    broken = [r for r in records if r.repo_id in ("tiny/broken", "tiny/remote-code")]
    with pytest.raises(NothingRerankedError, match=r"none of the 2 candidates could be re-ranked") as info:
        rerank_shortlist(stage_one(broken), text_task, broken, k=2, per_class=2, options=options(root))
    assert set(info.value.failures) == {"tiny/broken", "tiny/remote-code"}
    assert not info.value.offline  # broken repos, not a Hub out of reach


def test_budget_and_successive_halving(pool, text_task) -> None:
    root, records = pool
    shortlist = stage_one(records[:8])
    samples = load_samples(text_task, per_class=4)
    budget = rerank_shortlist(shortlist, samples, records, k=8, max_forward_passes=30, options=options(root))
    assert budget.metadata["rerank"]["k"] == 2  # 12 samples per candidate: 2 fit in 30 forward passes
    halving = rerank_shortlist(shortlist, samples, records, k=4, halving_rounds=2, options=options(root))
    notes = [e.reasons[0] for e in halving[:4]]
    assert all(" on 12 samples " in n for n in notes[:2])  # the better half ran on every sample
    assert all(" on 6 samples " in n for n in notes[2:])  # the other half was dropped after 2 per class


def test_unknown_estimator_fails_before_any_forward_pass(pool, text_task) -> None:
    root, records = pool
    with pytest.raises(EstimatorInputError, match="unknown estimator 'nope'"):
        rerank_shortlist(stage_one(records[:2]), text_task, records, estimators="nope", options=options(root))


def test_probability_estimators_need_a_head(pool, text_task) -> None:
    root, records = pool
    results = rerank_candidates(
        records[:2], load_samples(text_task, per_class=3), estimators=("leep",), options=options(root)
    )
    assert "needs source-class probabilities" in results[0].error
    assert results[1].error is None and results[1].estimator_scores["leep"] < 0  # a mean log-likelihood


# ----------------------------------------------------------------------------------------------- 1 vs 2 processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_processes_give_the_same_shortlist_as_one(pool, text_task, tmp_path) -> None:
    root, records = pool
    index = write_index(records, tmp_path / "index.jsonl")
    shortlist_file = tmp_path / "stage_one.json"
    shortlist_file.write_text(stage_one(records[:9]).to_json(), encoding="utf-8")
    args = ["--dataset", str(text_task), "--shortlist", str(shortlist_file), "--candidates", str(index)]
    args += ["--local-dir", str(root), "-k", "9", "--per-class", "4", "--format", "json", "--output"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    single = subprocess.run(
        [sys.executable, "-m", "hf_spider.rerank", *args, str(tmp_path / "one.json")],
        env={**env, "HF_SPIDER_CACHE": str(tmp_path / "cache-one")},  # each run computes its own features
        capture_output=True,
    )
    assert single.returncode == 0, single.stderr.decode()[-2000:]
    # `--cpu` alone starts one process in accelerate 1.15 (it needs mpirun); `--multi_gpu` uses torchrun, and
    # PartialState(cpu=True) joins the processes into a gloo group when no accelerator is present.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(_free_port()), "-m", "hf_spider.rerank"]
    double = subprocess.run(
        [*launch, *args, str(tmp_path / "two.json")],
        env={**env, "HF_SPIDER_CACHE": str(tmp_path / "cache-two")},
        capture_output=True,
    )
    assert double.returncode == 0, double.stderr.decode()[-2000:]
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["metadata"]["rerank"]["processes"] == 2 and one["metadata"]["rerank"]["processes"] == 1
    # the same list; estimator values agree to the last bits of the forward pass, which torchrun runs on one thread
    # per process (a matrix product summed in another order rounds differently)
    pairs = zip(one["entries"], two["entries"], strict=True)
    values = [(e.pop("estimator_scores"), f.pop("estimator_scores")) for e, f in pairs]
    assert one["entries"] == two["entries"]
    assert all(a.keys() == b.keys() and np.allclose(list(a.values()), list(b.values()), rtol=1e-6) for a, b in values)
    assert one["metadata"]["rerank"]["cached"] == 0 == two["metadata"]["rerank"]["cached"]
    assert one["entries"][-1]["model_id"] == "tiny/broken" and one["entries"][-1]["error"]
    assert sum(e["error"] is None for e in one["entries"]) == 8


# ----------------------------------------------------------------------------------------------- command line


def test_cli_ranks_the_pool_first_when_no_shortlist_is_given(pool, text_task, tmp_path, capsys) -> None:
    from hf_spider.cli import main

    root, records = pool
    index = write_index(records[:3], tmp_path / "index.jsonl")
    code = main(["rerank", "--dataset", str(text_task), "--candidates", str(index), "--local-dir", str(root)])
    out = capsys.readouterr().out
    assert code == 0
    assert all(m in out for m in ("tiny/bert-0", "tiny/bert-1", "tiny/bert-2")) and "re-ranked: LogME" in out


def test_cli_reads_a_candidates_folder_in_place(pool, text_task, tmp_path) -> None:
    from hf_spider.cli import main

    root, _ = pool
    out = tmp_path / "shortlist.json"
    argv = ["rerank", "--dataset", str(text_task), "--candidates", str(root), "-k", "3", "--per-class", "3"]
    assert main([*argv, "--format", "json", "--output", str(out)]) == 0  # no --local-dir: the folder is the source
    shortlist = json.loads(out.read_text())
    assert shortlist["metadata"]["rerank"]["reranked"] == 2  # the third of the stage-one top 3 has pickle weights only
    assert [e["model_id"] for e in shortlist["entries"] if e["estimator_scores"]] == ["tiny/bert-0", "tiny/bert-2"]
    assert not any("record a revision" in note for note in shortlist["metadata"]["notes"])  # none fetched from the Hub


def test_cli_refuses_an_estimator_that_needs_the_source_task(pool, text_task, capsys) -> None:
    from hf_spider.cli import main

    root, _ = pool
    code = main(["rerank", "--dataset", str(text_task), "--local-dir", str(root), "--estimator", "otce"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].endswith("pick one such as 'logme'") and "source_features" in err


# ----------------------------------------------------------------------------------------------- repo layouts


def save_timm(root: Path, repo_id: str, *, seed: int = 0, num_classes: int = 3) -> ModelRecord:
    """A random-weight timm model saved as its Hub repo is laid out: config.json (architecture, num_classes,
    num_features, global_pool, pretrained_cfg; no model_args) and model.safetensors."""
    timm = pytest.importorskip("timm")
    import torch
    from timm.models._hub import save_for_hf

    torch.manual_seed(seed)
    model = timm.create_model(
        "test_resnet.r160_in1k",
        pretrained=False,
        num_classes=num_classes,
        pretrained_cfg_overlay={"input_size": (3, 32, 32), "crop_pct": 1.0},
    )
    folder = root / repo_id
    save_for_hf(model, str(folder), safe_serialization=True)
    config = json.loads((folder / "config.json").read_text())
    config.pop("model_args", None)  # real timm/* repos carry none
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    params = sum(p.numel() for p in model.parameters())
    return ModelRecord(repo_id=repo_id, pipeline_tag="image-classification", num_parameters=params)


def save_sentence_transformer(root: Path, repo_id: str, *, seed: int = 0) -> ModelRecord:
    """A sentence-transformers folder built by the library itself: a tiny BERT, CLS pooling, a Tanh dense layer to
    8 dimensions and normalisation (so its embedding is none of the defaults a plain loader would guess)."""
    st = pytest.importorskip("sentence_transformers")
    pytest.importorskip("sentence_transformers.models")
    import sentence_transformers.models as st_models
    import torch

    base = save_bert(root, f"{repo_id}-base", seed=seed)
    word = st_models.Transformer(str(root / base.repo_id), max_seq_length=24)
    pooling = st_models.Pooling(16, pooling_mode="cls")
    torch.manual_seed(seed)
    dense = st_models.Dense(16, 8, activation_function=torch.nn.Tanh())
    model = st.SentenceTransformer(modules=[word, pooling, dense, st_models.Normalize()], device="cpu")
    model.save(str(root / repo_id))
    return ModelRecord(repo_id=repo_id, pipeline_tag="sentence-similarity", num_parameters=5000)


@pytest.fixture(scope="module")
def image_task(tmp_path_factory) -> Path:
    """A ``save_to_disk`` image dataset: 3 classes (dark, bright, striped), 8 images each."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    images, labels = [], []
    for c in range(3):
        for _ in range(8):
            base = rng.integers(0, 80, (20, 20, 3)) + (120 if c == 1 else 0)
            if c == 2:
                base[::4] = 255
            images.append(Image.fromarray(base.clip(0, 255).astype(np.uint8)))
            labels.append(c)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    path = tmp_path_factory.mktemp("images") / "shades"
    datasets.Dataset.from_dict({"image": images, "label": labels}, features=features).save_to_disk(str(path))
    return path


def test_timm_repos_load_through_timm_wrapper_and_give_pre_logits(tmp_path, image_task) -> None:
    import torch
    from transformers import AutoImageProcessor

    record = save_timm(tmp_path, "timm/test_resnet.r160_in1k")
    samples = load_samples(image_task, per_class=2)
    out = extract_features(record, samples.inputs, modality="image", options=options(tmp_path))
    import timm

    model = timm.create_model("test_resnet", pretrained=False, num_classes=3)
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(tmp_path / record.repo_id / "model.safetensors")))
    model.eval()
    pixels = AutoImageProcessor.from_pretrained(tmp_path / record.repo_id)(
        images=[i.convert("RGB") for i in samples.inputs], return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        pre_logits = model.forward_head(model.forward_features(pixels), pre_logits=True)
        logits = model(pixels)
    assert out.features.shape == (6, model.num_features)
    np.testing.assert_allclose(out.features, pre_logits.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.probabilities, torch.softmax(logits.double(), -1).numpy(), rtol=1e-5, atol=1e-7)


def test_a_timm_repo_whose_model_args_repeat_num_classes_still_loads(tmp_path, image_task) -> None:
    record = save_timm(tmp_path, "timm/args")
    config = json.loads((tmp_path / "timm/args/config.json").read_text())
    config["model_args"] = {"num_classes": 3, "in_chans": 3}  # transformers' TimmWrapper alone fails on this
    (tmp_path / "timm/args/config.json").write_text(json.dumps(config))
    samples = load_samples(image_task, per_class=1)
    out = extract_features(record, samples.inputs, modality="image", options=options(tmp_path))
    assert out.features.shape[0] == 3 and out.probabilities.shape == (3, 3)


def test_sentence_transformers_repos_give_the_embedding_their_modules_define(tmp_path, text_task) -> None:
    st = pytest.importorskip("sentence_transformers")
    record = save_sentence_transformer(tmp_path, "tiny/st")
    samples = load_samples(text_task, per_class=3)
    out = extract_features(record, samples.inputs, modality="text", options=options(tmp_path))
    expected = st.SentenceTransformer(str(tmp_path / "tiny/st"), device="cpu").encode(samples.inputs)
    assert out.features.shape == (9, 8) and out.probabilities is None
    np.testing.assert_allclose(out.features, expected, rtol=1e-4, atol=1e-5)


def test_sentence_transformers_module_types_that_need_code_are_refused(tmp_path) -> None:
    record = save_sentence_transformer(tmp_path, "tiny/custom")
    modules = json.loads((tmp_path / "tiny/custom/modules.json").read_text())
    modules[1]["type"] = "evil_package.Pooling"
    (tmp_path / "tiny/custom/modules.json").write_text(json.dumps(modules))
    with pytest.raises(CandidateLoadError, match="needs code this loader does not run"):
        extract_features(record, ["w1 w2"], modality="text", options=options(tmp_path))


def test_timm_and_sentence_transformers_candidates_are_reranked_end_to_end(tmp_path, image_task, text_task) -> None:
    timm_records = [save_timm(tmp_path, f"timm/t{i}", seed=i) for i in range(2)]
    vit = save_vit(tmp_path, "tiny/vit-plain", seed=3)
    images = rerank_shortlist(stage_one([*timm_records, vit]), image_task, [*timm_records, vit], k=3, per_class=3,
                              options=options(tmp_path))  # fmt: skip
    assert images.metadata["rerank"]["reranked"] == 3 and not any(e.error for e in images)
    st_records = [save_sentence_transformer(tmp_path, f"tiny/st{i}", seed=i) for i in range(2)]
    texts = rerank_shortlist(stage_one(st_records), text_task, st_records, k=2, per_class=3, options=options(tmp_path))
    assert texts.metadata["rerank"]["reranked"] == 2
    assert all(np.isfinite(e.estimator_scores["logme"]) for e in [*images, *texts])


def test_samples_are_preprocessed_once_per_processor_configuration(pool, text_task) -> None:
    from hf_spider.rerank.forward import run_candidate
    from hf_spider.rerank.loading import load_candidate
    from hf_spider.rerank.preprocess import PreparedInputs

    root, records = pool
    samples = load_samples(text_task, per_class=2)
    prepared = PreparedInputs(samples.inputs, "text", options(root))
    features = []
    for record in records[:4]:  # one tokenizer config, four models (with and without heads, several widths)
        candidate = load_candidate(record, modality="text", options=options(root))
        features.append(run_candidate(candidate, prepared).features)
    assert prepared.configurations == 1
    for record, got in zip(records[:4], features, strict=True):
        alone = extract_features(record, samples.inputs, modality="text", options=options(root))
        np.testing.assert_array_equal(got, alone.features)


def overlap_log(monkeypatch: pytest.MonkeyPatch, candidates: int, wait: float) -> list[bool]:
    """Instrument the loader and the forward pass: the k-th forward pass (of ``candidates``) waits, up to ``wait`` s,
    for the (k + 2)-th load to start, and logs whether it did before the pass ended. Prefetching starts the next load
    before the current pass, so every pass but the last sees it; without prefetching the next load starts after."""
    import threading

    from hf_spider.rerank import distributed

    started = threading.Condition()
    loads = [0]
    overlapped: list[bool] = []
    real_load, real_run = distributed.load_candidate, distributed.run_candidate

    def load(record: ModelRecord, **kwargs):
        with started:
            loads[0] += 1
            started.notify_all()
        return real_load(record, **kwargs)

    def run(candidate, prepared):
        features = real_run(candidate, prepared)
        runs = len(overlapped)
        if runs + 1 < candidates:
            with started:
                overlapped.append(started.wait_for(lambda: loads[0] >= runs + 2, timeout=wait))
        return features

    monkeypatch.setattr(distributed, "load_candidate", load)
    monkeypatch.setattr(distributed, "run_candidate", run)
    return overlapped


def test_the_next_candidate_loads_while_the_current_one_runs(pool, text_task, monkeypatch) -> None:
    root, records = pool
    samples = load_samples(text_task, per_class=2)
    overlapped = overlap_log(monkeypatch, 3, wait=10)
    on = rerank_candidates(records[:3], samples, options=options(root, feature_cache=False))
    assert overlapped == [True, True]
    monkeypatch.undo()
    overlapped = overlap_log(monkeypatch, 3, wait=1)  # the next load can only start after this wait
    off = rerank_candidates(records[:3], samples, options=options(root, prefetch=False, feature_cache=False))
    assert overlapped == [False, False]  # the instrument can tell: without prefetching no load overlaps a pass
    assert [r.estimator_scores for r in on] == [r.estimator_scores for r in off]


# ----------------------------------------------------------------------------------------------- honest output


@pytest.mark.parametrize("k", ["0", "-1"])
def test_cli_k_below_one_is_a_one_line_usage_error(pool, text_task, capsys, k) -> None:
    from hf_spider.cli import main

    root, _ = pool
    code = main(["rerank", "--dataset", str(text_task), "--local-dir", str(root), "-k", k])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("hf-spider rerank: error: -k must be >= 1")


def test_cli_a_forward_pass_budget_below_one_candidate_is_a_one_line_error(pool, text_task, capsys) -> None:
    from hf_spider.cli import main

    root, _ = pool
    code = main(["rerank", "--dataset", str(text_task), "--local-dir", str(root), "--max-forward-passes", "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("hf-spider rerank: error: a budget of 1 forward passes (--max-forward-passes) does not")


def test_cli_refuses_a_format_its_output_suffix_contradicts_before_running(pool, text_task, tmp_path, capsys) -> None:
    from hf_spider.cli import main

    root, _ = pool
    out = tmp_path / "shortlist.json"
    argv = ["rerank", "--dataset", str(text_task), "--local-dir", str(root), "--output", str(out), "--format", "table"]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "names a json file but --format is table" in err[0]
    assert not out.exists()


def test_cli_offline_without_the_weights_exits_with_the_download_command(
    text_task, tmp_path, capsys, monkeypatch
) -> None:
    from huggingface_hub import constants

    from hf_spider.cli import main

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    records = [ModelRecord(repo_id=f"acme/model-{i}", pipeline_tag="text-classification") for i in range(3)]
    index = write_index(records, tmp_path / "index.jsonl")
    shortlist = tmp_path / "stage_one.json"
    shortlist.write_text(stage_one(records).to_json(), encoding="utf-8")
    code = main(["rerank", "--dataset", str(text_task), "--candidates", str(index), "--shortlist", str(shortlist)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1
    assert "none of the 3 candidates could be re-ranked" in lines[0] and "`hf download acme/model-2`" in lines[0]


def test_cli_reports_what_ran_and_lists_failures_once_without_library_warnings(tmp_path, image_task) -> None:
    """End to end in a fresh process, as a user runs it: timm and transformers image candidates plus a broken one."""
    records = [save_timm(tmp_path, "timm/a", seed=1), save_timm(tmp_path, "timm/b", seed=2)]
    records += [save_vit(tmp_path, f"tiny/vit-{i}", seed=i) for i in range(3)]
    broken = save_vit(tmp_path, "tiny/broken-vit", seed=9)
    (tmp_path / "tiny/broken-vit/model.safetensors").write_bytes(b"not a safetensors file")
    records.append(broken)
    index = write_index(records, tmp_path / "index.jsonl")
    shortlist = tmp_path / "stage_one.json"
    shortlist.write_text(stage_one(records).to_json(), encoding="utf-8")  # the broken one is stage one's best
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONWARNINGS": "default"}
    args = ["--dataset", str(image_task), "--shortlist", str(shortlist), "--candidates", str(index)]
    args += ["--local-dir", str(tmp_path), "-k", "4", "--per-class", "3", "--top-k", "5"]
    done = subprocess.run([sys.executable, "-m", "hf_spider.rerank", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "arning" not in done.stderr and "warn(" not in done.stderr, done.stderr  # nothing from the libraries
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"reviews (ranker: test+{'+'.join(DEFAULT_ESTIMATORS)})"  # stage one's task, what ran
    rows = [line for line in lines[2:] if line[:5].strip().isdigit()]
    assert len(rows) == 5  # --top-k rows, as `rank` prints
    assert all("re-ranked: LogME" in row for row in rows[:3])
    # the 2 not run (beyond k) follow in stage-one order; the broken one is below them, past --top-k 5
    assert "timm/b" in rows[3] and "timm/a" in rows[4] and "broken" not in "".join(rows)
    below = lines[2 + len(rows) :]
    assert any(line.startswith("note: score: final position") and "re-ranking with logme" in line for line in below)
    failures = next(i for i, line in enumerate(below) if line.startswith("1 of 4 candidates could not be re-ranked"))
    assert below[failures + 1].startswith("  tiny/broken-vit: model.safetensors has no readable safetensors header")
    assert done.stdout.count("no readable safetensors header") == 1  # the reason is listed once


def test_rerank_help_names_the_default_estimators(capsys) -> None:
    from hf_spider.cli import main

    with pytest.raises(SystemExit) as info:
        main(["rerank", "--help"])
    assert info.value.code == 0
    assert f"default: {','.join(DEFAULT_ESTIMATORS)}" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("failed", "listed", "expected"),
    [
        (1, 1, "1 of 4 candidates could not be re-ranked (listed"),
        (1, 3, "1 of 4 candidates could not be re-ranked, and 2 could not be read at stage one (listed"),
        (0, 2, "2 could not be read at stage one (listed"),  # never '2 of 4 could not be re-ranked': they never ran
    ],
)
def test_the_failure_count_tells_the_k_that_failed_from_what_stage_one_could_not_read(failed, listed, expected) -> None:
    from hf_spider.cli.rerank import _failure_count

    assert _failure_count({"failed": failed, "k": 4}, listed).startswith(expected)
