"""The workshop's FoodClassifier: ResNet18 + BERT, fused by a small Transformer encoder.

    image [B,3,224,224] -> img_encoder (resnet18, fc = Identity) -> [B,512] -> img_proj -> [B,H]  (image token)
    input_ids, attention_mask [B,128] -> text_encoder (BERT) -> last_hidden_state [B,128,H]         (text tokens)
    [image token; text tokens] [B,129,H] -> fusion (2 post-norm encoder layers, 8 heads, no padding mask)
    fused image token [B,H] -> classifier (Linear, ReLU, Dropout(0.3), Linear) -> logits [B,num_classes]

Parameter names are the workshop's (img_encoder, img_proj, text_encoder, fusion, classifier), so its
checkpoints load with strict=True. ``FoodClassifierConfig.full()`` is the workshop's model;
``FoodClassifierConfig.small()`` a reduced one (small CNN, 4-layer BERT of width 256) for benchmarks. The
image encoder can also be the first blocks of EfficientNet-Lite0 (image_backbone 'efficientnet_lite0'; the
demo model in models/ is one).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from torch.nn import functional as F

import torch
from torch import nn

from .bert import PlainBert

# Image preprocessing of the workshop (torchvision's ImageNet recipe): resize the short side to 256
# (bilinear, antialiased), centre-crop 224, scale to [0, 1], normalise.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE = 256
CROP = 224

IMAGE_BACKBONES = ("resnet18", "small", "efficientnet_lite0")
BERT_CHOICES = ("auto", "plain", "transformers")


@dataclass
class FoodClassifierConfig:
    """Sizes of a FoodClassifier. The defaults are the workshop's model (``full()``)."""

    num_classes: int = 101
    # image encoder: 'resnet18' (torchvision's, 512 features), 'small' (SmallCNN below: a stem and
    # `image_stages` stride-2 stages of widths image_width * 2**i, then a 1x1 conv to image_features) or
    # 'efficientnet_lite0' (EfficientNetLite0Trunk below: the stem and the first `image_blocks` of the 16
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


# ------------------------------------------------------------------------------------------------------
# image encoders


class SmallCNN(nn.Module):
    """A small image encoder for the reduced model: conv-bn-relu blocks, global average pooling.

    stem: 3x3 conv stride 2 to `width`; stage i (of `stages`): 3x3 conv stride 2 to width * 2**i, then a
    3x3 conv; head: 1x1 conv to `features`; then the spatial mean. [B,3,224,224] -> [B, features].
    """

    def __init__(self, width: int = 32, stages: int = 4, features: int = 256):
        super().__init__()

        def block(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        self.stem = block(3, width, 3, 2)
        stage_list = []
        cin = width
        for i in range(stages):
            cout = width * 2**i
            stage_list.append(nn.Sequential(block(cin, cout, 3, 2), block(cout, cout)))
            cin = cout
        self.stages = nn.Sequential(*stage_list)
        self.head = block(cin, features, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x))).mean(dim=(2, 3))


# EfficientNet-Lite0 (Tan & Le 2019, EfficientNet; the Lite variant for mobile CPUs: ReLU6, no
# squeeze-and-excitation, fixed stem and head). Its 7 stages as (kernel, stride, expansion, in, out, repeats),
# 16 MBConv blocks in all.
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


class MBConv(nn.Module):
    """EfficientNet-Lite's inverted residual block: 1x1 expansion conv (unless the expansion is 1), depthwise
    conv, 1x1 projection conv, each with BatchNorm (eps 1e-3); ReLU6 after the first two; identity shortcut
    when the shape stays. Parameter names are those of the EfficientNet-PyTorch family of checkpoints."""

    def __init__(self, kernel: int, stride: int, expansion: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expansion
        self.expand = expansion != 1
        self.residual = stride == 1 and cin == cout
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.residual else y


class EfficientNetLite0Trunk(nn.Module):
    """The first `blocks` MBConv blocks of EfficientNet-Lite0 after its stem (3x3 conv stride 2 to 32, BN,
    ReLU6), then the spatial mean: [B,3,224,224] -> [B, LITE0_BLOCK_CHANNELS[blocks - 1]]. Without the
    network's 1x1 head conv (320 -> 1280) and ImageNet classifier. Parameter names are those of the ImageNet
    checkpoint (_conv_stem, _bn0, _blocks.N...), so its weights load by name."""

    def __init__(self, blocks: int = 16):
        super().__init__()
        if not 1 <= blocks <= len(LITE0_BLOCKS):
            raise ValueError(f"EfficientNet-Lite0 has {len(LITE0_BLOCKS)} blocks, not {blocks}")
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        self._blocks = nn.Sequential(*(MBConv(*spec) for spec in LITE0_BLOCKS[:blocks]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._blocks(F.relu6(self._bn0(self._conv_stem(x)))).mean(dim=(2, 3))


def make_image_encoder(config: FoodClassifierConfig) -> nn.Module:
    if config.image_backbone == "resnet18":
        from torchvision.models import resnet18

        encoder = resnet18(weights=None)
        encoder.fc = nn.Identity()
        return encoder
    if config.image_backbone == "efficientnet_lite0":
        return EfficientNetLite0Trunk(config.image_blocks)
    return SmallCNN(config.image_width, config.image_stages, config.image_features)


# ------------------------------------------------------------------------------------------------------
# text encoders


def transformers_available() -> bool:
    try:
        import transformers  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or broken against this torch
        return False
    return True


def make_text_encoder(config: FoodClassifierConfig, bert: str = "auto") -> nn.Module:
    """transformers.BertModel when bert='transformers' (or 'auto' and it is importable), else PlainBert.

    Both have the same parameter names and compute the same last_hidden_state (test_architecture.py)."""
    if bert not in BERT_CHOICES:
        raise ValueError(f"bert must be one of {', '.join(BERT_CHOICES)}, not {bert!r}")
    if bert == "transformers" or (bert == "auto" and transformers_available()):
        from transformers import BertConfig, BertModel

        hf_config = BertConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            hidden_act="gelu",
            hidden_dropout_prob=config.hidden_dropout,
            attention_probs_dropout_prob=config.hidden_dropout,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps,
            pad_token_id=0,
        )
        return BertModel(hf_config, add_pooling_layer=True)
    return PlainBert(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        hidden_dropout_prob=config.hidden_dropout,
        attention_probs_dropout_prob=config.hidden_dropout,
    )


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation (normal(0, 0.02) weights, zero biases, unit LayerNorms), seeded by the caller's
    torch.manual_seed: random-weight exports then resemble a trained BERT's scale whichever class built it."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def run_text_encoder(text_encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    if isinstance(text_encoder, PlainBert):
        return text_encoder(input_ids, attention_mask)
    return text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


# ------------------------------------------------------------------------------------------------------
# fusion


def encoder_layer_forward(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """One post-norm nn.TransformerEncoderLayer (batch_first, no masks), written out from its parameters.

    Why not `layer(x)` / `fusion(x)`: in eval mode under no_grad (inference), torch 1.13's
    TransformerEncoderLayer and MultiheadAttention take a "fast path" (torch._transformer_encoder_layer_fwd,
    torch._native_multi_head_attention), a fused kernel that torch.onnx cannot export, that torch.jit.trace
    records or not depending on whether grad is enabled while tracing, and whose numerics differ slightly
    from the regular path. Computing the layer here from its own submodules (self_attn.in_proj_weight/bias,
    self_attn.out_proj, linear1, linear2, norm1, norm2, dropouts, activation) takes the regular path in every
    mode and version, traces to plain ops, exports to ONNX, and keeps the parameter names of the workshop's
    nn.TransformerEncoder. It equals the stock module (both paths) within float error (test_architecture.py).
    """
    attn = layer.self_attn
    batch, length = x.size(0), x.size(1)
    dim, heads, head_dim = attn.embed_dim, attn.num_heads, attn.head_dim  # Python ints: constants in a trace
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.chunk(3, dim=-1)
    q = q.reshape(batch, length, heads, head_dim).transpose(1, 2)
    k = k.reshape(batch, length, heads, head_dim).transpose(1, 2)
    v = v.reshape(batch, length, heads, head_dim).transpose(1, 2)
    scores = torch.matmul(q / math.sqrt(head_dim), k.transpose(-1, -2))
    probs = F.dropout(torch.softmax(scores, dim=-1), p=attn.dropout, training=layer.training)
    context = torch.matmul(probs, v).transpose(1, 2).reshape(batch, length, dim)
    attended = attn.out_proj(context)
    x = layer.norm1(x + layer.dropout1(attended))
    feed_forward = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
    return layer.norm2(x + layer.dropout2(feed_forward))


def first_token_layer_forward(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """encoder_layer_forward(layer, x)[:, :1], computing only what that first token needs.

    The classifier reads the fused sequence's first token (the image token) alone, and in the last fusion
    layer that token depends on every token's key and value but on no other token's query, attention output
    or feed-forward. So the last layer projects keys and values for all L + 1 tokens and everything else
    for one: in the workshop's full-size model that skips about a quarter of the head's work (1.1 of 4.8
    GFLOP), with the same result within float error (test_architecture.py checks it against the stock module).
    """
    attn = layer.self_attn
    batch, length = x.size(0), x.size(1)
    dim, heads, head_dim = attn.embed_dim, attn.num_heads, attn.head_dim
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    first = x[:, :1]
    q = F.linear(first, weight[:dim], None if bias is None else bias[:dim])
    kv = F.linear(x, weight[dim:], None if bias is None else bias[dim:])
    k, v = kv.chunk(2, dim=-1)
    q = q.reshape(batch, 1, heads, head_dim).transpose(1, 2)
    k = k.reshape(batch, length, heads, head_dim).transpose(1, 2)
    v = v.reshape(batch, length, heads, head_dim).transpose(1, 2)
    scores = torch.matmul(q / math.sqrt(head_dim), k.transpose(-1, -2))
    probs = F.dropout(torch.softmax(scores, dim=-1), p=attn.dropout, training=layer.training)
    context = torch.matmul(probs, v).transpose(1, 2).reshape(batch, 1, dim)
    first = layer.norm1(first + layer.dropout1(attn.out_proj(context)))
    feed_forward = layer.linear2(layer.dropout(layer.activation(layer.linear1(first))))
    return layer.norm2(first + layer.dropout2(feed_forward))


def fusion_forward(fusion: nn.TransformerEncoder, x: torch.Tensor, first_token_only: bool = False) -> torch.Tensor:
    """fusion(x) without the fast path (see encoder_layer_forward). With first_token_only, only the first
    token of the output, [B, 1, H], computed with the last layer's shortcut (see first_token_layer_forward)."""
    layers = list(fusion.layers)
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        x = first_token_layer_forward(layer, x) if first_token_only and last else encoder_layer_forward(layer, x)
    if fusion.norm is not None:
        x = fusion.norm(x)
    return x


def classify_with(
    img_encoder: nn.Module,
    img_proj: nn.Module,
    fusion: nn.TransformerEncoder,
    classifier: nn.Module,
    image: torch.Tensor,
    text_features: torch.Tensor,
    first_token_only: bool = False,
) -> torch.Tensor:
    image_token = img_proj(img_encoder(image)).unsqueeze(1)  # [B, 1, H]
    fused = fusion_forward(
        fusion, torch.cat([image_token, text_features], dim=1), first_token_only
    )  # [B, 1 + L or 1, H]
    return classifier(fused[:, 0])


# ------------------------------------------------------------------------------------------------------
# the model


class FoodClassifier(nn.Module):
    def __init__(self, config: Optional[FoodClassifierConfig] = None, bert: str = "auto"):
        super().__init__()
        self.config = config = (config or FoodClassifierConfig.full()).validate()
        self.img_encoder = make_image_encoder(config)
        self.img_proj = nn.Linear(config.image_features, config.hidden_size)
        self.text_encoder = make_text_encoder(config, bert)
        init_bert_weights(self.text_encoder)
        layer = nn.TransformerEncoderLayer(
            d_model=config.hidden_size,
            nhead=config.fusion_heads,
            dim_feedforward=config.fusion_feedforward,
            dropout=config.fusion_dropout,
            activation="relu",
            batch_first=True,
            norm_first=False,
        )
        # nn.TransformerEncoder deep-copies the layer (as the workshop's did). It is never called as a module
        # (see encoder_layer_forward), so its nested-tensor fast path is off too.
        self.fusion = nn.TransformerEncoder(layer, num_layers=config.fusion_layers, enable_nested_tensor=False)
        self.classifier = nn.Sequential(
            nn.Linear(config.hidden_size, config.classifier_hidden),
            nn.ReLU(),
            nn.Dropout(config.classifier_dropout),
            nn.Linear(config.classifier_hidden, config.num_classes),
        )

    @property
    def bert_implementation(self) -> str:
        return "plain" if isinstance(self.text_encoder, PlainBert) else "transformers"

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask [B, L] int64 -> text features (BERT's last_hidden_state) [B, L, H]."""
        return run_text_encoder(self.text_encoder, input_ids, attention_mask)

    def classify(self, image: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """image [B,3,224,224] float32, text features [B, L, H] -> logits [B, num_classes]."""
        return classify_with(self.img_encoder, self.img_proj, self.fusion, self.classifier, image, text_features)

    def forward(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classify(image, self.encode_text(input_ids, attention_mask))


class TextEncoderPart(nn.Module):
    """The text encoder alone, for text_encoder.pth: forward(input_ids, attention_mask) -> text features.
    It holds only the BERT, so a traced copy carries only BERT's weights."""

    def __init__(self, model: FoodClassifier):
        super().__init__()
        self.text_encoder = model.text_encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return run_text_encoder(self.text_encoder, input_ids, attention_mask)


class HeadPart(nn.Module):
    """Everything but the text encoder, for head.pth: forward(image, text_features) -> logits (the last
    fusion layer computed for the image token only, see first_token_layer_forward)."""

    def __init__(self, model: FoodClassifier):
        super().__init__()
        self.img_encoder = model.img_encoder
        self.img_proj = model.img_proj
        self.fusion = model.fusion
        self.classifier = model.classifier

    def forward(self, image: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return classify_with(
            self.img_encoder, self.img_proj, self.fusion, self.classifier, image, text_features, first_token_only=True
        )


class WholeModelPart(nn.Module):
    """The whole model as best_model.pth and best_model.onnx hold it: FoodClassifier.forward with the last
    fusion layer computed for the image token only (see first_token_layer_forward); the same logits."""

    def __init__(self, model: FoodClassifier):
        super().__init__()
        self.img_encoder = model.img_encoder
        self.img_proj = model.img_proj
        self.text_encoder = model.text_encoder
        self.fusion = model.fusion
        self.classifier = model.classifier

    def forward(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        features = run_text_encoder(self.text_encoder, input_ids, attention_mask)
        return classify_with(
            self.img_encoder, self.img_proj, self.fusion, self.classifier, image, features, first_token_only=True
        )


# ------------------------------------------------------------------------------------------------------
# checkpoints


class CheckpointError(ValueError):
    """A file that is not a FoodClassifier checkpoint, or one that does not fit the architecture."""


# Buffers that older transformers versions saved in the state_dict; current ones do not (non-persistent).
DROPPED_KEYS = ("text_encoder.embeddings.position_ids", "text_encoder.embeddings.token_type_ids")


def read_checkpoint(
    path: str | Path, log: Optional[Callable[[str], None]] = None, trust: bool = False
) -> Tuple[Dict[str, torch.Tensor], Optional[Dict[str, Any]], Dict[str, Any]]:
    """Reads a torch.save file: {'model_state_dict': ..., ...} (the workshop's) or a raw state_dict.

    Returns (state_dict without the dropped buffers and without a 'module.' prefix, the checkpoint's
    'config' dict or None, the checkpoint's other scalar entries such as epoch). Raises CheckpointError with
    a message that says what the file is when it is not such a checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a PyTorch checkpoint")
    if _is_torchscript(path):
        raise CheckpointError(f"{path} is a TorchScript model, not a training checkpoint: it needs no conversion")
    try:
        # Tensors and plain containers only: no code from the file runs.
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save file): {e}") from None
        # torch 1.13's weights-only reader refuses floats (a checkpoint's val_acc) and numpy scalars; a reader
        # that allows plain data but no other code reads those.
        try:
            data = _load_restricted(path)
        except _Refused as refused:
            # Something else is pickled in it, and unpickling that runs code the file names: only for a file
            # the caller vouches for.
            if not trust:
                raise CheckpointError(
                    f"{path} holds Python objects besides tensors and plain data ({refused}), and reading those "
                    "would run code from the file. If you trust where it comes from (your own training run), "
                    "convert it with --trust-checkpoint; or save only the weights: "
                    'torch.save({"model_state_dict": model.state_dict()}, path)'
                ) from None
            if log:
                log(
                    f"  the checkpoint holds Python objects besides tensors ({refused}): loading it with full "
                    "unpickling (--trust-checkpoint)"
                )
            data = _load_unrestricted(path)
    except Exception as e:  # noqa: BLE001 - torch.load raises KeyError, RuntimeError, EOFError, ... on non-checkpoints
        first = (str(e).splitlines() or [""])[0] or type(e).__name__
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (torch.save file): {type(e).__name__}: {first}"
        ) from None

    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dict or a state_dict")
    meta: Dict[str, Any] = {}
    config_dict = None
    if "model_state_dict" in data:
        state = data["model_state_dict"]
        for key, value in data.items():
            if key == "config" and isinstance(value, Mapping):
                config_dict = dict(value)
            elif isinstance(value, (int, float, str, bool)):
                meta[key] = value
    elif "state_dict" in data and isinstance(data["state_dict"], Mapping):
        state = data["state_dict"]
        if isinstance(data.get("config"), Mapping):
            config_dict = dict(data["config"])
    else:
        state = data
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(list(map(str, data.keys()))[:8])
        raise CheckpointError(
            f"{path} holds no state_dict: a checkpoint is a dict with model_state_dict (the "
            f"workshop's) or a state_dict of tensors; this one has the keys {keys}"
        )
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k not in DROPPED_KEYS}
    return state, config_dict, meta


class _Refused(Exception):
    """A pickled global outside _SAFE_GLOBALS."""


# What a training checkpoint holds besides tensors: containers, numbers, numpy scalars and arrays, an argparse
# Namespace of hyper-parameters. Building these runs no code of the file's choosing.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "range"),
    ("argparse", "Namespace"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("_codecs", "encode"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "dtype"),
}


def _restricted_pickle_module() -> Any:
    import pickle as std

    class Unpickler(std.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _SAFE_GLOBALS or (module == "torch" and name.endswith("Storage")):
                return super().find_class(module, name)
            raise _Refused(f"{module}.{name}")

    class Module:
        pass

    module = Module()
    module.Unpickler = Unpickler  # type: ignore[attr-defined]
    module.load = std.load  # type: ignore[attr-defined]
    module.__name__ = "restricted_pickle"  # type: ignore[attr-defined]
    return module


def _load_restricted(path: Path) -> Any:
    """torch.load with _SAFE_GLOBALS only. Through torch.serialization's own readers: torch 1.13's torch.load
    ignores a pickle_module unless weights_only, whose reader refuses plain floats."""
    from torch import serialization as ser

    module = _restricted_pickle_module()
    try:
        with open(path, "rb") as f:
            if ser._is_zipfile(f):
                with ser._open_zipfile_reader(f) as archive:
                    return ser._load(archive, "cpu", module, encoding="utf-8")
            return ser._legacy_load(f, "cpu", module, encoding="utf-8")
    except _Refused:
        raise
    except AttributeError as e:
        # another torch whose readers moved: the caller then asks for --trust-checkpoint
        raise _Refused(f"this torch has no restricted reader ({e})") from None
    except Exception as e:  # noqa: BLE001 - whatever the unpickler raises means the same
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save file): {e}") from None


def _load_unrestricted(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - whatever the unpickler raises means the same
            raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save file): {e}") from None


def _is_torchscript(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _count_layers(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in state for m in [pattern.match(k)] if m}
    return max(found) + 1 if found else 0


def infer_config(
    state: Mapping[str, torch.Tensor], config_dict: Optional[Mapping[str, Any]] = None
) -> FoodClassifierConfig:
    """The FoodClassifierConfig of a state_dict, from its shapes.

    What shapes cannot tell comes from `config_dict` (the checkpoint's 'config', if any; keys that are not
    FoodClassifierConfig fields are ignored) or else the workshop's values: BERT heads = hidden / 64, 8
    fusion heads, max_length 128. A config_dict value that contradicts the shapes is an error."""

    def shape(key: str) -> Tuple[int, ...]:
        if key not in state:
            raise CheckpointError(
                f"the state_dict has no {key}: it is not a FoodClassifier checkpoint "
                f"(its first keys: {', '.join(list(state)[:5])})"
            )
        return tuple(state[key].shape)

    inferred: Dict[str, Any] = {}
    vocab, hidden = shape("text_encoder.embeddings.word_embeddings.weight")
    inferred.update(vocab_size=vocab, hidden_size=hidden)
    inferred["max_position_embeddings"] = shape("text_encoder.embeddings.position_embeddings.weight")[0]
    inferred["type_vocab_size"] = shape("text_encoder.embeddings.token_type_embeddings.weight")[0]
    inferred["num_hidden_layers"] = _count_layers(state, "text_encoder.encoder.layer.")
    inferred["intermediate_size"] = shape("text_encoder.encoder.layer.0.intermediate.dense.weight")[0]
    inferred["fusion_layers"] = _count_layers(state, "fusion.layers.")
    inferred["fusion_feedforward"] = shape("fusion.layers.0.linear1.weight")[0]
    inferred["classifier_hidden"] = shape("classifier.0.weight")[0]
    inferred["num_classes"] = shape("classifier.3.weight")[0]
    inferred["image_features"] = shape("img_proj.weight")[1]
    if "img_encoder.conv1.weight" in state:
        inferred["image_backbone"] = "resnet18"
    elif "img_encoder.stem.0.weight" in state:
        inferred["image_backbone"] = "small"
        inferred["image_width"] = shape("img_encoder.stem.0.weight")[0]
        inferred["image_stages"] = _count_layers(state, "img_encoder.stages.")
    elif "img_encoder._conv_stem.weight" in state:
        inferred["image_backbone"] = "efficientnet_lite0"
        inferred["image_blocks"] = _count_layers(state, "img_encoder._blocks.")
    else:
        raise CheckpointError(
            "the state_dict has none of img_encoder.conv1.weight (resnet18), "
            "img_encoder.stem.0.weight (the small CNN) or img_encoder._conv_stem.weight "
            "(EfficientNet-Lite0): unknown image encoder"
        )

    fields = {f.name for f in dataclasses.fields(FoodClassifierConfig)}
    values: Dict[str, Any] = {}
    if config_dict:
        values.update({k: v for k, v in config_dict.items() if k in fields})
        for key, value in inferred.items():
            if key in values and values[key] != value:
                raise CheckpointError(
                    f"the checkpoint's config says {key}={values[key]!r} but its weights have {key}={value!r}"
                )
    values.update(inferred)
    values.setdefault("num_attention_heads", max(1, hidden // 64))
    try:
        return FoodClassifierConfig(**values).validate()
    except ValueError as e:
        raise CheckpointError(f"the checkpoint does not give a valid configuration: {e}") from None


def load_checkpoint(
    path: str | Path, *, bert: str = "auto", log: Optional[Callable[[str], None]] = None, trust: bool = False
) -> Tuple[FoodClassifier, FoodClassifierConfig]:
    """A FoodClassifier from a checkpoint (see read_checkpoint), its config inferred (see infer_config), the
    weights loaded with strict=True; returned in eval mode."""
    state, config_dict, _meta = read_checkpoint(path, log, trust)
    config = infer_config(state, config_dict)
    model = FoodClassifier(config, bert=bert)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [
            f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
            for k in expected
            if k in state and state[k].shape != expected[k].shape
        ]
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{', ...' if len(items) > 5 else ''}")
        raise CheckpointError(
            f"{path}: the weights do not fit the FoodClassifier architecture; "
            + ("; ".join(parts) or str(e).splitlines()[0])
        ) from None
    return model.eval(), config
