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

The parts live beside this module: the sizes in config.py, the BERT in text_encoder.py (and bert.py), the
fusion's forward in fusion.py, reading checkpoints in checkpoint.py.
"""

from __future__ import annotations

from typing import Optional

from torch.nn import functional as F

import torch
from torch import nn

from .bert import PlainBert
from .config import LITE0_BLOCKS, FoodClassifierConfig
from .fusion import fusion_forward
from .text_encoder import init_bert_weights, make_text_encoder, run_text_encoder

# The network's nn.Module classes stay together in this module: torch.jit.trace writes each one's qualified
# name (__torch__.foodmodel.architecture.WholeModelPart, ...EfficientNetLite0Trunk) into the exported
# TorchScript files, so moving a class elsewhere would change the files the exporter writes.

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


# EfficientNet-Lite0's blocks: their table (LITE0_STAGES, LITE0_BLOCKS) is in config.py.
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
# the model


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
        # (see fusion.encoder_layer_forward), so its nested-tensor fast path is off too.
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
    fusion layer computed for the image token only, see fusion.first_token_layer_forward)."""

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
    fusion layer computed for the image token only (see fusion.first_token_layer_forward); the same logits."""

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
