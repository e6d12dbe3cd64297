"""Derive BIO noun-phrase chunks from UPOS tags of ewt_sample.conllu (the chunks fixture).

A maximal run of DET/ADJ/NUM/NOUN/PROPN/PRON tokens is one NP chunk; PUNCT, ADP and the rest are O.
Run from the repository root: python tests/data/make_chunks.py
"""

from pathlib import Path

from lstmtag.data import read_conllu

NOMINAL = {"DET", "ADJ", "NUM", "NOUN", "PROPN", "PRON"}
lines = []
for sentence in read_conllu(Path(__file__).parent / "ewt_sample.conllu", ["upos"]):
    previous = False
    for word, upos in zip(sentence.words, sentence.labels["upos"], strict=True):
        inside = upos in NOMINAL
        label = ("I-NP" if previous else "B-NP") if inside else "O"
        previous = inside
        lines.append(f"{word} {upos} {label}")
    lines.append("")
(Path(__file__).parent / "chunks_sample.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
