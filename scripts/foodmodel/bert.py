"""A BERT encoder in plain torch whose parameter names are those of ``transformers.BertModel``.

The state_dict of :class:`PlainBert` has exactly the keys and shapes of a ``transformers.BertModel`` of the
same configuration (embeddings.*, encoder.layer.N.*, pooler.dense.*), so the weights of one load into the
other with ``strict=True``. ``forward(input_ids, attention_mask)`` returns ``last_hidden_state`` [B, L, H];
the pooler is kept for its parameters (a workshop checkpoint holds them) but not run.

It is written for torch.jit.trace and torch.onnx.export (opset 14) with torch 1.13: no data-dependent Python
control flow, shapes taken from the inputs (so the batch stays dynamic), the attention mask applied as an
additive bias the way Hugging Face's eager attention does (0 where attended, the dtype's lowest value where
padded), GELU the exact (erf) one of ``hidden_act='gelu'``.
"""

from __future__ import annotations

import math

from torch.nn import functional as F

import torch
from torch import nn


class BertEmbeddings(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        max_position_embeddings: int,
        type_vocab_size: int,
        layer_norm_eps: float,
        dropout: float,
    ):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_position_embeddings, hidden_size)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        # Not saved in the state_dict (as in current transformers; older versions saved position_ids, which
        # load_checkpoint drops).
        self.register_buffer("position_ids", torch.arange(max_position_embeddings).unsqueeze(0), persistent=False)
        self.register_buffer(
            "token_type_ids", torch.zeros(1, max_position_embeddings, dtype=torch.long), persistent=False
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        seq_len = input_ids.size(1)
        position_ids = self.position_ids[:, :seq_len]
        token_type_ids = self.token_type_ids[:, :seq_len]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_attention_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, H] -> [B, heads, L, head_dim]
        return x.view(x.size(0), x.size(1), self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        q = self._heads(self.query(x))
        k = self._heads(self.key(x))
        v = self._heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = self.dropout(torch.softmax(scores + mask_bias, dim=-1))
        context = torch.matmul(probs, v).transpose(1, 2)  # [B, L, heads, head_dim]
        return context.reshape(x.size(0), x.size(1), self.num_heads * self.head_dim)


class BertSelfOutput(nn.Module):
    def __init__(self, hidden_size: int, layer_norm_eps: float, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, layer_norm_eps: float, dropout: float):
        super().__init__()
        self.self = BertSelfAttention(hidden_size, num_heads, dropout)
        self.output = BertSelfOutput(hidden_size, layer_norm_eps, dropout)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask_bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # hidden_act='gelu': the exact (erf) GELU


class BertOutput(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, layer_norm_eps: float, dropout: float):
        super().__init__()
        self.dense = nn.Linear(intermediate_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertLayer(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, layer_norm_eps: float, dropout: float):
        super().__init__()
        self.attention = BertAttention(hidden_size, num_heads, layer_norm_eps, dropout)
        self.intermediate = BertIntermediate(hidden_size, intermediate_size)
        self.output = BertOutput(hidden_size, intermediate_size, layer_norm_eps, dropout)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, mask_bias)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, num_layers: int, **layer_args):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(**layer_args) for _ in range(num_layers)])

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, mask_bias)
        return x


class BertPooler(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class PlainBert(nn.Module):
    """``transformers.BertModel`` (absolute positions, token type 0, with pooler), returning last_hidden_state."""

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
    ):
        super().__init__()
        if attention_probs_dropout_prob != hidden_dropout_prob:
            # One dropout rate for both keeps the modules simple; BERT's configurations use 0.1 for both.
            raise ValueError("PlainBert uses one dropout rate for hidden states and attention probabilities")
        self.embeddings = BertEmbeddings(
            vocab_size, hidden_size, max_position_embeddings, type_vocab_size, layer_norm_eps, hidden_dropout_prob
        )
        self.encoder = BertEncoder(
            num_hidden_layers,
            hidden_size=hidden_size,
            num_heads=num_attention_heads,
            intermediate_size=intermediate_size,
            layer_norm_eps=layer_norm_eps,
            dropout=hidden_dropout_prob,
        )
        self.pooler = BertPooler(hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        # [B, L] of 1 (attend) / 0 (padding) -> an additive bias [B, 1, 1, L], as transformers' eager path.
        mask = attention_mask[:, None, None, :].to(x.dtype)
        mask_bias = (1.0 - mask) * torch.finfo(x.dtype).min
        return self.encoder(x, mask_bias)
