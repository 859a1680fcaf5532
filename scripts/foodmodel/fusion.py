"""The FoodClassifier's fusion: its nn.TransformerEncoder computed from the layers' own parameters.

Why not call the module: see encoder_layer_forward. The classifier reads only the fused image token, which
first_token_layer_forward computes alone in the last layer.
"""

from __future__ import annotations

import math

from torch.nn import functional as F

import torch
from torch import nn


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
