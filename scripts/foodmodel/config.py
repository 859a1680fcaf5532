"""The FoodClassifier's configuration: its sizes, and the image preprocessing it expects.

``FoodClassifierConfig.full()`` is the workshop's model; ``FoodClassifierConfig.small()`` a reduced one for
benchmarks. Plain data only (no torch), so that a checkpoint's config can be checked before a model is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping

# Image preprocessing of the workshop (torchvision's ImageNet recipe): resize the short side to 256
# (bilinear, antialiased), centre-crop 224, scale to [0, 1], normalise.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE = 256
CROP = 224

IMAGE_BACKBONES = ("resnet18", "small", "efficientnet_lite0")
BERT_CHOICES = ("auto", "plain", "transformers")

# EfficientNet-Lite0 (Tan & Le 2019, EfficientNet; the Lite variant for mobile CPUs: ReLU6, no
# squeeze-and-excitation, fixed stem and head). Its 7 stages as (kernel, stride, expansion, in, out, repeats),
# 16 MBConv blocks in all. The network itself is EfficientNetLite0Trunk in architecture.py; its table is here
# because FoodClassifierConfig.validate checks image_features against it.
LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
LITE0_BLOCKS = tuple(
    (kernel, stride if i == 0 else 1, expansion, cin if i == 0 else cout, cout)
    for kernel, stride, expansion, cin, cout, repeats in LITE0_STAGES
    for i in range(repeats)
)
LITE0_BLOCK_CHANNELS = tuple(block[-1] for block in LITE0_BLOCKS)


@dataclass
class FoodClassifierConfig:
    """Sizes of a FoodClassifier. The defaults are the workshop's model (``full()``)."""

    num_classes: int = 101
    # image encoder: 'resnet18' (torchvision's, 512 features), 'small' (architecture.SmallCNN: a stem and
    # `image_stages` stride-2 stages of widths image_width * 2**i, then a 1x1 conv to image_features) or
    # 'efficientnet_lite0' (architecture.EfficientNetLite0Trunk: the stem and the first `image_blocks` of the 16
    # MBConv blocks, image_features = the last block's channels, see LITE0_BLOCK_CHANNELS)
    image_backbone: str = "resnet18"
    image_features: int = 512
    image_width: int = 32
    image_stages: int = 4
    image_blocks: int = 16
    # text encoder: BERT (bert-base-uncased by default)
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    # fusion: nn.TransformerEncoder of post-norm ReLU layers, d_model = hidden_size
    fusion_heads: int = 8
    fusion_layers: int = 2
    fusion_feedforward: int = 2048
    fusion_dropout: float = 0.1
    # classifier: Linear(hidden, classifier_hidden), ReLU, Dropout, Linear(classifier_hidden, num_classes)
    classifier_hidden: int = 512
    classifier_dropout: float = 0.3
    # the text inputs' length (input_ids and attention_mask are [B, max_length])
    max_length: int = 128

    @classmethod
    def full(cls, **overrides: Any) -> "FoodClassifierConfig":
        """The workshop's model: ResNet18 + bert-base-uncased, 101 classes (about 29 GFLOP per sample)."""
        return cls(**overrides).validate()

    @classmethod
    def small(cls, **overrides: Any) -> "FoodClassifierConfig":
        """A reduced model of the same structure: SmallCNN (width 32, 256 features), BERT of width 256 with
        4 layers of 4 heads, fusion of 2 layers of 8 heads with feed-forward 1024, classifier hidden 256."""
        values = dict(
            image_backbone="small",
            image_features=256,
            image_width=32,
            image_stages=4,
            hidden_size=256,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=1024,
            fusion_heads=8,
            fusion_layers=2,
            fusion_feedforward=1024,
            classifier_hidden=256,
        )
        values.update(overrides)
        return cls(**values).validate()

    def validate(self) -> "FoodClassifierConfig":
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"FoodClassifierConfig: {message}")

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int):
                need(
                    isinstance(value, int) and not isinstance(value, bool) and value > 0,
                    f"{f.name} must be a positive integer, not {value!r}",
                )
        need(
            self.image_backbone in IMAGE_BACKBONES,
            f"image_backbone must be one of {', '.join(IMAGE_BACKBONES)}, not {self.image_backbone!r}",
        )
        need(
            self.image_backbone != "resnet18" or self.image_features == 512,
            f"resnet18 gives 512 image features, not {self.image_features}",
        )
        if self.image_backbone == "efficientnet_lite0":
            need(
                self.image_blocks <= len(LITE0_BLOCK_CHANNELS),
                f"EfficientNet-Lite0 has {len(LITE0_BLOCK_CHANNELS)} blocks, not {self.image_blocks}",
            )
            channels = LITE0_BLOCK_CHANNELS[min(self.image_blocks, len(LITE0_BLOCK_CHANNELS)) - 1]
            need(
                self.image_features == channels,
                f"the first {self.image_blocks} EfficientNet-Lite0 blocks give "
                f"{channels} image features, not {self.image_features}",
            )
        need(
            self.hidden_size % self.num_attention_heads == 0,
            f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}",
        )
        need(
            self.hidden_size % self.fusion_heads == 0,
            f"hidden_size {self.hidden_size} is not a multiple of fusion_heads {self.fusion_heads}",
        )
        need(
            self.max_length <= self.max_position_embeddings,
            f"max_length {self.max_length} exceeds max_position_embeddings {self.max_position_embeddings}",
        )
        for name in ("layer_norm_eps", "hidden_dropout", "fusion_dropout", "classifier_dropout"):
            value = getattr(self, name)
            need(isinstance(value, (int, float)) and 0 <= value < 1, f"{name} must be in [0, 1), not {value!r}")
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FoodClassifierConfig":
        """The inverse of to_dict; unknown keys are an error (they would be silently ignored otherwise)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"FoodClassifierConfig has no field(s) {', '.join(unknown)}")
        return cls(**dict(data)).validate()
