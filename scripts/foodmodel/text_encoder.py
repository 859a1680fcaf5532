"""The FoodClassifier's text encoder: a BERT, either transformers.BertModel or this package's PlainBert.

Both have the same parameter names (the workshop's checkpoints load into either) and compute the same
last_hidden_state; PlainBert is the one that traces and exports to ONNX with torch 1.13 (see bert.py).
"""

from __future__ import annotations

import torch
from torch import nn

from .bert import PlainBert
from .config import BERT_CHOICES, FoodClassifierConfig


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
