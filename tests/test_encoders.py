"""The general encoders: pooling per model family, batching, workers, revisions, and refusing non-encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hf_spider.errors import InvalidEncoderError
from hf_spider.tokens.encoders import MINILM_REPO, encode_texts, encoder_revision, load_encoder, resolve_encoder


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def save_tiny_vit(path: Path, *, seed: int = 0) -> Path:
    """A random-weight 2-layer ViT (hidden size 32) with its image processor, saved as a Hub-style folder."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def random_images(n: int, *, seed: int = 0, size: int = 24) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_vit(tmp_path_factory.mktemp("vit"))


def test_minilm_is_mean_pooled_and_puts_paraphrases_together() -> None:
    encoder = load_encoder(MINILM_REPO, modality="text", device="cpu")
    assert encoder.pooling == "mean"  # as its 1_Pooling/config.json prescribes
    emb = encode_texts(["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell today."])
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3


def test_image_encoder_uses_cls_token_and_is_batch_invariant(tiny_vit: Path) -> None:
    encoder = load_encoder(str(tiny_vit), modality="image", device="cpu")
    assert encoder.pooling == "cls"
    images = random_images(5)
    one_by_one = encoder.encode(images, batch_size=1)
    batched = encoder.encode(images, batch_size=4)
    assert batched.shape == (5, 32)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(batched[0], batched[1])


def test_dataloader_workers_do_not_change_embeddings(tiny_vit: Path) -> None:
    encoder = load_encoder(str(tiny_vit), modality="image", device="cpu")
    images = random_images(6, seed=1)
    np.testing.assert_array_equal(encoder.encode(images, num_workers=0), encoder.encode(images, num_workers=2))


def test_cnn_encoder_uses_its_pooled_output(tmp_path: Path) -> None:
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).save_pretrained(tmp_path)
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(tmp_path)
    encoder = load_encoder(str(tmp_path), modality="image", device="cpu")
    assert encoder.encode(random_images(3)).shape == (3, encoder.dimension) == (3, 16)


def test_revision_is_the_snapshot_sha_or_changes_with_the_files(tmp_path: Path, tiny_vit: Path) -> None:
    snapshot = tmp_path / "models--org--enc" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    assert encoder_revision(str(snapshot)) == "a" * 40
    folder = tmp_path / "copy"
    save_tiny_vit(folder)
    before = encoder_revision(str(folder))
    assert encoder_revision(str(folder)) == before
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    assert encoder_revision(str(folder)) != before


def test_minilm_resolves_to_the_offline_copy() -> None:
    path = Path(resolve_encoder(MINILM_REPO))
    assert (path / "model.safetensors").is_file()


def test_folder_without_config_is_not_an_encoder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(InvalidEncoderError, match=r"not a transformers model.*config\.json"):
        load_encoder(str(tmp_path), modality="text", device="cpu")


def test_unreachable_encoder_names_the_fix() -> None:
    with pytest.raises(InvalidEncoderError, match=r"could not be fetched.*local folder"):
        load_encoder("nobody/no-such-encoder", modality="image", device="cpu")


def test_text_model_is_not_an_image_encoder() -> None:
    with pytest.raises(InvalidEncoderError, match=r"no image processor.*encoder repo for image"):
        load_encoder(resolve_encoder(MINILM_REPO), modality="image", device="cpu")


def test_image_model_is_not_a_text_encoder(tiny_vit: Path) -> None:
    with pytest.raises(InvalidEncoderError, match="cannot encode texts"):
        load_encoder(str(tiny_vit), modality="text", device="cpu")


def test_pickle_only_weights_are_refused(tmp_path: Path, tiny_vit: Path) -> None:
    for file in tiny_vit.iterdir():
        if file.suffix != ".safetensors":
            (tmp_path / file.name).write_bytes(file.read_bytes())
    import torch
    from transformers import ViTModel

    torch.save(ViTModel.from_pretrained(tiny_vit).state_dict(), tmp_path / "pytorch_model.bin")
    assert not any(p.suffix == ".safetensors" for p in tmp_path.iterdir())
    with pytest.raises(InvalidEncoderError, match="safetensors"):
        load_encoder(str(tmp_path), modality="image", device="cpu")


def test_encode_texts_of_nothing_is_empty() -> None:
    assert encode_texts([]).shape == (0, 384)
