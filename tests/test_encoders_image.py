"""Image encoders through the code paths a user with real weights takes: local file / directory and
an http(s) URL served by a real server on 127.0.0.1. Checkpoints are real architectures with random
init, so "the loaded model is the saved model" is checked by equal embeddings."""

from __future__ import annotations

import functools
import hashlib
import http.server
import tarfile
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image
from real_params import real_config

from pixrec.encoders.base import ImageEncoderConfig
from pixrec.encoders.image import build_image_encoder, decode_cover, embed_images
from pixrec.encoders.weights import WeightsError, resolve
from pixrec.registry import UnknownNameError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(directory, base URL) of a real HTTP server on an ephemeral port of 127.0.0.1."""
    root = tmp_path_factory.mktemp("served")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _seeded(build, seed: int = 123):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size) images."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


def _normalised(x: torch.Tensor, enc) -> torch.Tensor:
    mean = torch.tensor(enc.preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(enc.preprocess.std).view(1, 3, 1, 1)
    return (x.float() / 255.0 - mean) / std


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------- resnet


@pytest.mark.slow
def test_resnet_loads_local_file_and_url(served, tmp_path):
    import torchvision

    root, url = served
    model = _seeded(lambda: torchvision.models.resnet18(weights=None)).eval()
    torch.save(model.state_dict(), root / "r18.pth")
    model.fc = torch.nn.Identity()
    x = _batch(3, 64)

    local = build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet18", image_size=64,
                                                   weights=str(root / "r18.pth")))
    remote = build_image_encoder(
        real_config(ImageEncoderConfig, name="resnet", arch="resnet18", image_size=64,
                           weights=f"{url}/r18.pth#sha256={_sha(root / 'r18.pth')}"),
        cache_dir=tmp_path / "cache")
    assert remote.source.kind == "url" and remote.source.path.is_relative_to(tmp_path / "cache")
    with torch.inference_mode():
        expected = model(_normalised(x, local))
        got_local, got_remote = local.encode(x), remote.encode(x)
        rand = build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet18",
                                               image_size=64, weights="random")).encode(x)
    assert got_local.shape == (3, 512)
    _same(got_local, expected)
    _same(got_remote, expected)
    assert not torch.allclose(rand, expected, atol=1e-3)  # the weights really changed the output


def test_resnet_rejects_bad_checkpoint_and_hash(served, tmp_path):
    import torchvision

    root, url = served
    state = torchvision.models.resnet18(weights=None).state_dict()
    del state["layer1.0.conv1.weight"]
    torch.save(state, root / "broken.pth")
    with pytest.raises(WeightsError, match=r"layer1\.0\.conv1\.weight"):
        build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet18",
                                               weights=str(root / "broken.pth")))
    with pytest.raises(WeightsError, match="sha256"):
        build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet18",
                                               weights=f"{url}/broken.pth#sha256={'0' * 64}"),
                            cache_dir=tmp_path / "cache")
    with pytest.raises(WeightsError, match="does not exist"):
        build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet18",
                                        weights="./nowhere/r.pth"))
    with pytest.raises(WeightsError, match=r"cannot download .*HTTP 404.*\(encoders\.image\.weights\)"):
        build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet18",
                                        weights=f"{url}/absent.pth"), cache_dir=tmp_path / "cache")


def test_unknown_names_list_the_valid_ones():
    valid = r"\['clip', 'dino', 'dino_timm', 'pixel', 'resnet'\]"
    with pytest.raises(UnknownNameError, match=f"valid names are {valid}"):
        build_image_encoder(real_config(ImageEncoderConfig, name="vgg"))
    with pytest.raises(ValueError, match="resnet18"):
        build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet7", weights="random"))


# ------------------------------------------------------------------------------------------- clip


@pytest.mark.slow
def test_clip_loads_checkpoint_from_url(served, tmp_path):
    import open_clip

    root, url = served
    arch = "ViT-S-32"  # the smallest built-in open_clip config
    model = _seeded(lambda: open_clip.create_model(arch, pretrained=None, force_image_size=64)).eval()
    with torch.no_grad():  # fp16 halves the file; give the reference model the same rounded values
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half())
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
               root / "clip.pt")
    # the URL is fetched to the cache, then loaded by the local-file code (pretrained=<file>)
    remote = build_image_encoder(real_config(ImageEncoderConfig, name="clip", arch=arch, image_size=64,
                                                    weights=f"{url}/clip.pt"), cache_dir=tmp_path / "cache")
    assert remote.source.kind == "url" and remote.source.sha256 == _sha(root / "clip.pt")
    x = _batch(2, 64)
    with torch.inference_mode():
        expected = model.encode_image(_normalised(x, remote), normalize=True)
        got = remote.encode(x)
    assert got.shape == (2, 384)
    _same(got, expected)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(2))


# ------------------------------------------------------------------------------------------- dino


def test_dino_transformers_loads_local_dir_and_url_archive(served, tmp_path):
    from transformers import ViTConfig, ViTModel

    root, url = served
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    image_size=32, patch_size=8)
    model = _seeded(lambda: ViTModel(cfg, add_pooling_layer=False)).eval()
    model.save_pretrained(root / "tiny-dino")
    with tarfile.open(root / "tiny-dino.tar.gz", "w:gz") as tar:
        tar.add(root / "tiny-dino", arcname="tiny-dino")

    local = build_image_encoder(real_config(ImageEncoderConfig, name="dino", image_size=32,
                                                   weights=str(root / "tiny-dino")))
    remote = build_image_encoder(real_config(ImageEncoderConfig, name="dino", image_size=32,
                                                    weights=f"{url}/tiny-dino.tar.gz"),
                                 cache_dir=tmp_path / "cache")
    assert remote.source.path.name == "tiny-dino" and remote.source.path.is_dir()
    x = _batch(3, 32)
    with torch.inference_mode():
        expected = model(pixel_values=_normalised(x, local)).last_hidden_state[:, 0]
        got_local, got_remote = local.encode(x), remote.encode(x)
        # another input size: position embeddings are interpolated, not an error
        bigger = build_image_encoder(real_config(ImageEncoderConfig, name="dino", image_size=48,
                                                        weights=str(root / "tiny-dino")))
        assert bigger.encode(_batch(2, 48)).shape == (2, 32)
    assert got_local.shape == (3, 32)
    _same(got_local, expected)
    _same(got_remote, expected)


def test_dino_timm_loads_file_through_pretrained_cfg_overlay(served):
    import timm

    root, url = served
    arch = "vit_tiny_patch16_224"  # a small timm ViT: the same code path as vit_small_patch16_224.dino
    model = _seeded(lambda: timm.create_model(arch, pretrained=False, img_size=32)).eval()
    torch.save(model.state_dict(), root / "vit_tiny.pth")
    model.reset_classifier(0)
    enc = build_image_encoder(real_config(ImageEncoderConfig, name="dino_timm", arch=arch, image_size=32,
                                                 weights=f"{url}/vit_tiny.pth"),
                              cache_dir=root.parent / "timm-cache")
    x = _batch(2, 32)
    with torch.inference_mode():
        _same(enc.encode(x), model(_normalised(x, enc)))
    assert enc.raw_dim == 192 and enc.preprocess.interpolation == "bicubic"


def test_weight_specs_resolve_by_kind(tmp_path):
    assert resolve("random", default=None, where="w").is_random
    assert resolve("facebook/dino-vits16", default=None, where="w").kind == "hub"
    assert resolve(None, default="IMAGENET1K_V1", where="w").kind == "hub"
    f = tmp_path / "w.pt"
    f.write_bytes(b"x")
    src = resolve(str(f), default=None, where="w")
    assert src.kind == "local" and src.sha256 == hashlib.sha256(b"x").hexdigest()


# ------------------------------------------------------------------------------------------ pixel


def _style_image(style: int, rng: np.random.Generator, h: int = 96, w: int = 128) -> np.ndarray:
    """Three visual styles, each with per-image jitter: warm horizontal stripes, cool vertical
    stripes, grey blotchy noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    period = rng.integers(8, 14)
    jitter = rng.normal(0, 12, 3)
    if style == 0:
        band = (yy // period) % 2
        img = np.where(band[..., None], [230, 120, 40], [250, 200, 90]) + jitter
    elif style == 1:
        band = (xx // period) % 2
        img = np.where(band[..., None], [30, 80, 200], [60, 170, 190]) + jitter
    else:
        noise = rng.normal(0, 1, (h // 8, w // 8))
        noise = np.kron(noise, np.ones((8, 8)))
        img = np.repeat((128 + 40 * noise)[..., None], 3, axis=2) + jitter.mean()
    img = img + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _covers(root: Path, images: list[np.ndarray], n_train: list[int]) -> pl.DataFrame:
    (root / "covers").mkdir(parents=True, exist_ok=True)
    ids = [f"i{k:03d}" for k in range(len(images))]
    for iid, img in zip(ids, images, strict=True):
        Image.fromarray(img).save(root / "covers" / f"{iid}.jpg", quality=92)
    return pl.DataFrame({"item_idx": np.arange(len(ids), dtype=np.int32), "item_id": ids,
                         "cover_path": [f"covers/{i}.jpg" for i in ids],
                         "n_train": np.array(n_train, dtype=np.int32)})


PIXEL = real_config(ImageEncoderConfig, name="pixel", image_size=64, batch_size=8, num_workers=0, pca_dim=8)


def test_pixel_encoder_separates_visual_styles(tmp_path):
    rng = np.random.default_rng(0)
    styles = np.repeat([0, 1, 2], 6)
    items = _covers(tmp_path, [_style_image(s, rng) for s in styles], [1] * len(styles))
    out = embed_images(items, tmp_path, PIXEL, progress=False)
    assert out.vectors.shape == (18, 8) and out.mask.all() and out.meta["pixel"]["n_fit"] == 18
    d = np.linalg.norm(out.vectors[:, None] - out.vectors[None], axis=-1)
    for i, s in enumerate(styles):
        same = d[i, (styles == s) & (np.arange(18) != i)].mean()
        for other in set(range(3)) - {s}:
            assert same < d[i, styles == other].mean(), (i, s, other)


def test_pixel_pca_is_fitted_on_training_items_only(tmp_path):
    rng = np.random.default_rng(1)
    styles = [0, 1, 2] * 4
    images = [_style_image(s, rng) for s in styles]
    n_train = [3] * 10 + [0, 0]  # the last two items are cold
    items = _covers(tmp_path, images, n_train)
    first = embed_images(items, tmp_path, PIXEL, progress=False).vectors

    # a very different cover for a cold item: its own row moves, nobody else's (same basis)
    Image.fromarray(_style_image(1, rng)[:, ::-1].copy()).save(tmp_path / "covers" / "i011.jpg")
    second = embed_images(items, tmp_path, PIXEL, progress=False).vectors
    assert np.array_equal(first[:11], second[:11])
    assert not np.allclose(first[11], second[11])

    # the same change on a training item does move the basis (so the check above can fail)
    Image.fromarray(_style_image(1, rng)[:, ::-1].copy()).save(tmp_path / "covers" / "i000.jpg")
    third = embed_images(items, tmp_path, PIXEL, progress=False).vectors
    assert not np.allclose(second[1:11], third[1:11])


def test_decode_is_robust_to_modes_and_sizes(tmp_path):
    from pixrec.encoders.base import Preprocess

    prep = Preprocess(size=32, resize=36, mode="crop")
    for mode, shape in (("L", (50, 300)), ("RGBA", (400, 60)), ("CMYK", (33, 33))):
        Image.new(mode, shape[::-1]).save(tmp_path / f"{mode}.jpg" if mode != "RGBA" else tmp_path / "a.png")
    for p in (tmp_path / "L.jpg", tmp_path / "a.png", tmp_path / "CMYK.jpg"):
        assert decode_cover(p, prep).shape == (32, 32, 3)


# ----------------------------------------------------------------------------------------- errors


def test_weights_that_are_not_a_checkpoint_are_one_input_error_naming_the_key(tmp_path):
    from pixrec.errors import InputError

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "garbage.safetensors").write_bytes(garbage.read_bytes())
    for name, arch, weights in (("resnet", "resnet18", garbage), ("clip", "ViT-S-32", garbage),
                                ("resnet", "resnet18", tmp_path / "garbage.safetensors"),
                                ("dino_timm", "vit_tiny_patch16_224", garbage)):
        with pytest.raises(InputError, match=r"^encoders\.image\.weights: could not load .* Give "
                                             r"encoders\.image\.weights a checkpoint") as info:
            build_image_encoder(real_config(ImageEncoderConfig, name=name, arch=arch, image_size=32,
                                            weights=str(weights)))
        assert "\n" not in str(info.value)


def test_wrong_architecture_and_wrong_entry_are_input_errors(tmp_path):
    import torchvision

    from pixrec.errors import InputError

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(InputError, match=r"could not load timm vit_tiny_patch16_224 .*RuntimeError"):
        build_image_encoder(real_config(ImageEncoderConfig, name="dino_timm", arch="vit_tiny_patch16_224",
                                        image_size=32, weights=str(tmp_path / "r18.pth")))
    with pytest.raises(InputError, match="set name: dino_timm"):
        build_image_encoder(real_config(ImageEncoderConfig, name="dino", arch="vit_small_patch16_224.dino",
                                        weights="random"))
    with pytest.raises(InputError, match=r"set name: dino$"):
        build_image_encoder(real_config(ImageEncoderConfig, name="dino_timm", arch="dino_vits16",
                                        weights="random"))


def test_a_bug_while_loading_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the libraries' input errors become one line; anything else is a bug and propagates as is."""
    import pixrec.encoders.image as image

    def broken(path):
        raise KeyError("a bug, not the user's weights")

    monkeypatch.setattr(image, "load_state_dict_file", broken)
    (tmp_path / "r.pth").write_bytes(b"x")
    with pytest.raises(KeyError, match="a bug"):
        build_image_encoder(real_config(ImageEncoderConfig, name="resnet", arch="resnet18",
                                        weights=str(tmp_path / "r.pth")))
