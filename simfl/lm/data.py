"""Training data: seeded random token batches, JSONL text tokenized to fixed lengths, and the tiny
dialogue-summarization task (a corpus generated from a seed, a word-level tokenizer built from it).

Each example is a short chat between two people about one plan (meet, cancel,
move, borrow, remind) and a one-sentence summary that restates its slots
(names, place, time, object). The summary is a function of the dialogue, so a
model can learn it, and val loss measures how well. It stands in for SAMSum,
which cannot be downloaded here; `--data FILE.jsonl --tokenizer PATH` uses SAMSum
or any other (dialogue, summary) data instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from simfl.lm.model import KernelSpec

NAMES = ["anna", "ben", "carla", "dev", "emma", "farid", "gina", "hugo", "ines", "jon", "kim", "leo"]
PLACES = ["cafe", "office", "gym", "station", "library", "park", "cinema", "market"]
TIMES = ["8", "9", "10", "11", "noon", "2", "3", "4", "5", "6", "7"]
DAYS = ["today", "tomorrow", "monday", "friday", "saturday"]
THINGS = ["keys", "charger", "umbrella", "book", "laptop", "tickets", "bike"]

TEMPLATES = {
    "meet": ("{a}: are we meeting at the {place} {day} ? {b}: yes , at {time} . {a}: great , see you there .",
             "{a} and {b} will meet at the {place} {day} at {time} ."),
    "cancel": ("{a}: sorry , i cannot come to the {place} {day} . {b}: no problem , maybe next week ?",
               "{a} cancels the plan at the {place} {day} ."),
    "move": ("{a}: can we move {day} to {time} ? {b}: sure , {time} at the {place} works .",
             "{a} and {b} move their meeting to {time} at the {place} ."),
    "borrow": ("{a}: can i borrow your {thing} {day} ? {b}: yes , pick it up at the {place} .",
               "{b} lends {a} the {thing} at the {place} {day} ."),
    "remind": ("{a}: do not forget the {thing} ! {b}: thanks , i will bring it to the {place} at {time} .",
               "{b} will bring the {thing} to the {place} at {time} ."),
}
SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2 as in T5: pad, end of sequence, unknown


def generate(n: int, seed: int) -> list[dict[str, str]]:
    """n (dialogue, summary) pairs, the same for the same seed."""
    rng = np.random.default_rng(seed)
    kinds = list(TEMPLATES)
    out = []
    for _ in range(n):
        a, b = rng.choice(NAMES, size=2, replace=False)
        slots = dict(a=a, b=b, place=rng.choice(PLACES), time=rng.choice(TIMES), day=rng.choice(DAYS),
                     thing=rng.choice(THINGS))
        dialogue, summary = TEMPLATES[kinds[rng.integers(len(kinds))]]
        out.append({"dialogue": dialogue.format(**slots), "summary": summary.format(**slots)})
    return out


def build_tokenizer(texts: list[str]):
    """A word-level tokenizer over the words of `texts` (whitespace split), T5's special ids first."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in t.split()})
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def load_jsonl(path: str | Path, field: str | None = None) -> list[dict[str, str]]:
    """(dialogue, summary) pairs from a JSONL file with dialogue/summary (or input/target) text fields; a
    file that is not one (not a regular file, over 1 GB, not UTF-8, a line not a JSON object) is one line."""
    from simfl.errors import ScenarioError
    from simfl.safeio import JSONL_MAX_BYTES, read_text

    rows = []
    text = read_text(path, field=field, what="training data file", max_bytes=JSONL_MAX_BYTES)
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                r = json.loads(line)
            except (ValueError, RecursionError) as e:
                raise ScenarioError(f"{path} line {n}: not JSON ({getattr(e, 'msg', 'nested too deeply')})",
                                    field=field) from None
            if not isinstance(r, dict):
                raise ScenarioError(f"{path} line {n}: expected a JSON object", field=field)
            d, s = r.get("dialogue", r.get("input")), r.get("summary", r.get("target"))
            if d is None or s is None:
                raise ScenarioError(f"{path} line {n}: needs dialogue/summary or input/target", field=field)
            if not isinstance(d, str) or not isinstance(s, str):
                raise ScenarioError(f"{path} line {n}: dialogue and summary must be text", field=field)
            rows.append({"dialogue": d, "summary": s})
    if not rows:
        raise ScenarioError(f"{path}: no examples", field=field)
    return rows


def encode(rows: list[dict[str, str]], tokenizer, seq_len: int, target_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (padded, truncated, with </s>) and labels with padding set to -100 (no loss)."""
    eos = tokenizer.eos_token
    enc = tokenizer([r["dialogue"] + " " + eos for r in rows], max_length=seq_len, padding="max_length",
                    truncation=True, return_tensors="pt")
    lab = tokenizer([r["summary"] + " " + eos for r in rows], max_length=target_len, padding="max_length",
                    truncation=True, return_tensors="pt")
    labels = lab["input_ids"].masked_fill(lab["attention_mask"] == 0, -100)
    return enc["input_ids"], labels


def random_batch(batch_size: int, spec: KernelSpec, vocab_size: int, gen: torch.Generator):
    """Token ids drawn uniformly (ids 2.. avoid pad 0 and eos 1), on the CPU like a data loader's output."""
    inputs = torch.randint(2, vocab_size, (batch_size, spec.seq_len), generator=gen)
    labels = torch.randint(2, vocab_size, (batch_size, spec.target_len), generator=gen)
    return inputs, labels


def text_batches(spec: KernelSpec, batch_size: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` batches of real text from spec.data, tokenized to seq_len / target_len (padded, truncated)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec.tokenizer)
    rows = load_jsonl(spec.data)
    chunks = [[rows[(b * batch_size + i) % len(rows)] for i in range(batch_size)] for b in range(count)]
    return [encode(chunk, tok, spec.seq_len, spec.target_len) for chunk in chunks]
