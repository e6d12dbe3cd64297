"""A second-order (trigram) HMM tagger in the style of TnT (Brants 2000).

* Transitions: P(t3 | t1, t2) = l1 P(t3) + l2 P(t3 | t2) + l3 P(t3 | t1, t2), with the weights l
  set by deleted interpolation; a boundary tag stands before and after each sentence.
* Known words: P(w | t) from counts of the exact form.
* Unknown words: P(t | suffix) from the suffixes of rare training words (count <= ``rare_count``),
  smoothed by successive abstraction, with separate tables for capitalised and other words; by Bayes,
  P(w | t) is proportional to P(t | suffix) / P(t).
* Several columns (UPOS and XPOS): one HMM over the pairs of tags seen together (VERB with VBN), as
  TnT does with its rich tag sets. The finer states carry more of the context: on EWT dev this
  measured 93.0% UPOS against 92.5% for one HMM per column, and decoding runs once, not per column.
* Decoding: exact Viterbi over pair states, shared with the CRF (``lstmtag.viterbi``); each chosen
  tag's probability is its marginal from the forward algorithm (for a column of a joint HMM, the sum
  over the candidate pairs that share the chosen tag).

Counts live in tensors (buffers), so an HMM saves and loads like every other lstmtag model.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from lstmtag.batch import Vocabs
from lstmtag.config import ModelConfig
from lstmtag.contract import Capabilities, TaggingModel
from lstmtag.data import Sentence
from lstmtag.viterbi import IMPOSSIBLE, marginals, viterbi

JOINT = "joint"  # the one table of a joint HMM
SEPARATOR = "\t"  # joins column tags into a joint tag; never inside a CoNLL-U field


def _shape_class(word: str) -> str:
    """Which suffix table a word uses: capitalised ("C") or not ("l")."""
    return "C" if word[:1].isupper() else "l"


class HMMColumn(nn.Module):
    """The tables of one label column. ``K`` real tags plus the boundary tag at index K."""

    def __init__(self, num_words: int, num_tags: int, num_suffixes: int) -> None:
        super().__init__()
        size = num_tags + 1
        self.register_buffer("transitions", torch.full((size, size, size), IMPOSSIBLE))  # log P(c | a, b)
        self.register_buffer("emissions", torch.full((num_words, size), IMPOSSIBLE))  # log P(w | t)
        self.register_buffer("suffixes", torch.full((max(num_suffixes, 1), size), IMPOSSIBLE))  # log P(t|s) - log P(t)

    def fit(
        self,
        words: list[list[int]],
        tags: list[list[int]],
        forms: list[list[str]],
        vocabulary: Sequence[str],
        config: ModelConfig,
    ) -> list[str]:
        """Count and smooth; returns the suffix keys, in row order of the ``suffixes`` table.

        Both tables hold log P(t | w) - log P(t), which equals log P(w | t) up to a term that is the
        same for every tag at a position (so Viterbi and the marginals are unchanged). For a known
        word, P(t | w) = (c(w, t) + k P(t | suffix)) / (c(w) + k), so a word seen once may still take
        a tag it was not seen with, as its suffix suggests.
        """
        size = self.transitions.shape[0]
        boundary = size - 1
        unigrams, bigrams, trigrams = Counter(), Counter(), Counter()
        for sentence in tags:
            padded = [boundary, boundary, *sentence, boundary]
            for position in range(2, len(padded)):
                a, b, c = padded[position - 2], padded[position - 1], padded[position]
                unigrams[c] += 1
                bigrams[(b, c)] += 1
                trigrams[(a, b, c)] += 1
        self.transitions.copy_(_interpolated_trigrams(unigrams, bigrams, trigrams, size, boundary))

        pair_counts: Counter[tuple[int, int]] = Counter()
        for word_ids, tag_ids in zip(words, tags, strict=True):
            pair_counts.update(zip(word_ids, tag_ids, strict=True))
        word_tag = torch.zeros(self.emissions.shape[0], boundary)
        if pair_counts:
            index = torch.tensor(list(pair_counts))
            word_tag.index_put_((index[:, 0], index[:, 1]), torch.tensor(list(pair_counts.values()), dtype=torch.float))
        tag_counts = word_tag.sum(0)
        prior = (tag_counts / tag_counts.sum()).clamp(min=1e-12)

        form_counts: Counter[str] = Counter(f for sentence in forms for f in sentence)
        suffix_counts: dict[str, Counter[int]] = defaultdict(Counter)
        for sentence_forms, tag_ids in zip(forms, tags, strict=True):
            for form, t in zip(sentence_forms, tag_ids, strict=True):
                if form_counts[form] <= config.hmm_rare_count:
                    for key in _suffix_keys(form, config.hmm_suffix_length):
                        suffix_counts[key][t] += 1
        keys, table = _successive_abstraction(suffix_counts, boundary)
        scores = torch.full((max(len(keys), 1), size), IMPOSSIBLE)
        if keys:
            scores[: len(keys), :-1] = (table.clamp(min=1e-12) / prior).log()
        self.suffixes = scores

        index = {key: row for row, key in enumerate(keys)}
        rows = torch.tensor([suffix_row(index, form, config.hmm_suffix_length) for form in vocabulary])
        smoothing = config.hmm_smoothing
        guessed = table[rows] if keys else torch.full_like(word_tag, 1.0 / boundary)
        p_tag_given_word = (word_tag + smoothing * guessed) / (word_tag.sum(1, keepdim=True) + smoothing)
        emissions = torch.full(self.emissions.shape, IMPOSSIBLE)
        emissions[:, :-1] = (p_tag_given_word.clamp(min=1e-12) / prior).log()
        self.emissions.copy_(emissions)
        return keys


def _suffix_keys(word: str, longest: int) -> list[str]:
    """The suffix-table keys of a word, shortest (the empty suffix) first."""
    shape = _shape_class(word)
    return [f"{shape}|{word[len(word) - length :] if length else ''}" for length in range(min(longest, len(word)) + 1)]


def suffix_row(index: dict[str, int], word: str, longest: int) -> int:
    """Row of the longest suffix of ``word`` that the table holds (the empty one at worst)."""
    for key in reversed(_suffix_keys(word, longest)):
        if key in index:
            return index[key]
    other = "l" if _shape_class(word) == "C" else "C"
    return index.get(f"{other}|", 0)


def _interpolated_trigrams(
    unigrams: Counter, bigrams: Counter, trigrams: Counter, size: int, boundary: int
) -> torch.Tensor:
    """Log P(c | a, b) by deleted interpolation (Brants 2000, figure 1)."""
    total = sum(unigrams.values())
    bigram_context, trigram_context = Counter(), Counter()
    for (b, _), count in bigrams.items():
        bigram_context[b] += count
    for (a, b, _), count in trigrams.items():
        trigram_context[(a, b)] += count
    weights = [0.0, 0.0, 0.0]
    for (a, b, c), count in trigrams.items():
        candidates = [
            (unigrams[c] - 1) / (total - 1) if total > 1 else 0.0,
            (bigrams[(b, c)] - 1) / (bigram_context[b] - 1) if bigram_context[b] > 1 else 0.0,
            (count - 1) / (trigram_context[(a, b)] - 1) if trigram_context[(a, b)] > 1 else 0.0,
        ]
        weights[max(range(3), key=lambda i: candidates[i])] += count
    norm = sum(weights) or 1.0
    l1, l2, l3 = (w / norm for w in weights)
    p1 = torch.zeros(size)
    for c, count in unigrams.items():
        p1[c] = count / total
    p2 = torch.zeros(size, size)
    for (b, c), count in bigrams.items():
        p2[b, c] = count / bigram_context[b]
    p3 = torch.zeros(size, size, size)
    for (a, b, c), count in trigrams.items():
        p3[a, b, c] = count / trigram_context[(a, b)]
    mixed = l1 * p1[None, None, :] + l2 * p2[None, :, :] + l3 * p3
    return mixed.log().clamp(min=IMPOSSIBLE)


def _successive_abstraction(counts: dict[str, Counter[int]], num_tags: int) -> tuple[list[str], torch.Tensor]:
    """P(t | suffix) for every seen suffix, each smoothed towards its one-shorter suffix (TnT)."""
    keys = sorted(counts, key=lambda k: (len(k), k))  # shorter suffixes first: parents before children
    index = {key: row for row, key in enumerate(keys)}
    raw = torch.zeros(len(keys), num_tags)
    for key, row in index.items():
        for t, count in counts[key].items():
            raw[row, t] = count
    raw = raw / raw.sum(1, keepdim=True).clamp(min=1)
    smoothed = torch.zeros_like(raw)
    for key in keys:
        row = index[key]
        shape, suffix = key.split("|", 1)
        if not suffix:
            smoothed[row] = raw[row]
            continue
        parent = smoothed[index[f"{shape}|{suffix[1:]}"]]
        theta = float(raw[index[f"{shape}|"]].std()) if num_tags > 1 else 1.0
        smoothed[row] = (raw[row] + theta * parent) / (1 + theta)
    return keys, smoothed


@dataclass
class HMMBatch:
    """What the HMM reads of a batch of B sentences padded to T tokens.

    words (B, T): row of each token's exact form in the emission table, 1 (``<unk>``) if unseen, 0
    padding; mask (B, T): True on real tokens; tokens: the words as given, for unseen words' suffixes.
    """

    words: torch.Tensor
    mask: torch.Tensor
    tokens: list[list[str]]


class HMMTagger(TaggingModel):
    """Trigram HMM with the tagger interface: ``decode(batch)`` -> per column (tags, probabilities).

    Decoding runs over the ``hmm_candidates`` best tags of each token by emission score (TnT prunes
    with a beam for the same reason): exact second-order Viterbi over all K tags costs K^3 a token,
    which for 50 Penn tags is 125,000 operations, against C^3 = 64 for 4 candidates. Words are
    looked up by their exact form (then lowercased, then by suffix), not by ``batch.word_key``.
    """

    kind = "hmm"
    declared = Capabilities(tags=True)  # counted, not trained; no LSTM, no characters

    def __init__(
        self,
        config: ModelConfig,
        *,
        words: Sequence[str],
        labels: dict[str, list[str]],
        suffixes: Sequence[str] = (),
        joint_tags: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.config = config
        self.labels = labels
        self.word_index = {word: row for row, word in enumerate(words)}
        self.suffix_keys = list(suffixes)
        self.suffix_index = {key: row for row, key in enumerate(self.suffix_keys)}
        self.joint = config.hmm_joint and len(labels) > 1
        if self.joint:
            self._set_joint_tags(list(joint_tags))
            self.columns = nn.ModuleDict({JOINT: HMMColumn(len(words), len(joint_tags), len(self.suffix_keys))})
        else:
            self.columns = nn.ModuleDict(
                {name: HMMColumn(len(words), len(tags), len(self.suffix_keys)) for name, tags in labels.items()}
            )

    def _set_joint_tags(self, joint_tags: list[str]) -> None:
        """``parts[j, k]``: the id in column k of joint tag j (joint tags join column tags with a tab)."""
        self.joint_tags = joint_tags
        index = [{tag: i for i, tag in enumerate(tags)} for tags in self.labels.values()]
        self.parts = torch.tensor(
            [[index[k][part] for k, part in enumerate(tag.split(SEPARATOR))] for tag in joint_tags], dtype=torch.long
        ).view(len(joint_tags), len(self.labels))

    @property
    def capabilities(self) -> Capabilities:
        return self.declared

    @property
    def refusals(self) -> dict[str, str]:
        return {
            "traced": "an HMM has no LSTM to inspect; inspect an LSTM tagger or language model",
            "stepped": "only LSTM taggers can be stepped token by token",
            "exported": "an HMM is a counted model with no network to export; tag with its .safetensors file",
        }

    @property
    def saved_strings(self) -> dict[str, list[str]]:
        """The string lists the HMM keeps beside its tables (a file's ``vocabs.extra``)."""
        strings = {"suffixes": self.suffix_keys}
        if self.joint:
            strings["joint_tags"] = self.joint_tags
        return strings

    def batch(self, sentences: Sequence[Sentence], vocabs: Vocabs) -> HMMBatch:
        """Exact-form rows of the emission table, padded; no characters (an HMM reads none)."""
        lengths = torch.tensor([len(s.words) for s in sentences])
        mask = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]  # (B, T)
        words = torch.zeros(mask.shape, dtype=torch.long)
        words[mask] = torch.tensor([self.word_index.get(w, 1) for s in sentences for w in s.words], dtype=torch.long)
        return HMMBatch(words, mask, [s.words for s in sentences])

    def knows(self, word: str, vocabs: Vocabs) -> bool:
        return word in self.word_index

    def fit(self, sentences: Sequence[Sentence], vocabs: Vocabs) -> None:
        """Count everything from the training sentences (``vocabs.words`` holds exact forms)."""
        forms = [s.words for s in sentences]
        words = [vocabs.words.ids(s.words) for s in sentences]
        keys: list[str] = []
        if self.joint:
            names = list(self.labels)
            joined = [
                [SEPARATOR.join(tags) for tags in zip(*(s.labels[n] for n in names), strict=True)] for s in sentences
            ]
            self._set_joint_tags(sorted({tag for sentence in joined for tag in sentence}))
            ids = {tag: i for i, tag in enumerate(self.joint_tags)}
            column = HMMColumn(len(vocabs.words), len(self.joint_tags), 0)
            keys = column.fit(words, [[ids[t] for t in s] for s in joined], forms, vocabs.words.itos, self.config)
            self.columns = nn.ModuleDict({JOINT: column})
        else:
            for name, column in self.columns.items():
                tags = [vocabs.labels[name].ids(s.labels[name]) for s in sentences]
                keys = column.fit(words, tags, forms, vocabs.words.itos, self.config)
        self.suffix_keys = keys
        self.suffix_index = {key: row for row, key in enumerate(keys)}

    def _rows(self, batch: HMMBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per token: a row of the emission table, or (if unseen) of the suffix table; (B, T) each.

        ``batch.words`` already holds the rows of known exact forms; only unseen words are looked at
        here, first in lowercase ("Unbelievable" at a sentence start), then by suffix.
        """
        word_rows = batch.words.clone()
        suffix_rows = torch.full_like(word_rows, -1)
        for b, t in ((batch.words == 1) & batch.mask).nonzero().tolist():  # id 1 is <unk>
            token = batch.tokens[b][t]
            row = self.word_index.get(token.lower())
            if row is not None:
                word_rows[b, t] = row
            else:
                suffix_rows[b, t] = suffix_row(self.suffix_index, token, self.config.hmm_suffix_length)
        return word_rows, suffix_rows

    @torch.no_grad()
    def decode(self, batch: HMMBatch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        word_rows, suffix_rows = self._rows(batch)
        unknown = suffix_rows >= 0
        result = {}
        for name, column in self.columns.items():
            full = column.emissions[word_rows]  # (B, T, K + 1): log P(w | t), boundary last
            if bool(unknown.any()):
                full = torch.where(unknown[:, :, None], column.suffixes[suffix_rows.clamp(min=0)], full)
            chosen, options, probs = _decode_candidates(
                full, column.transitions, batch.mask, self.config.hmm_candidates
            )
            if not self.joint:
                result[name] = (chosen, probs.gather(2, _slot(options, chosen)).squeeze(2))
                continue
            for k, column_name in enumerate(self.labels):
                tags = self.parts[chosen, k]  # (B, T)
                same = self.parts[options, k] == tags[..., None]  # (B, T, C): candidates agreeing on this column
                result[column_name] = (tags.masked_fill(~batch.mask, 0), (probs * same).sum(-1))
        return result


def _decode_candidates(
    emissions: torch.Tensor, transitions: torch.Tensor, mask: torch.Tensor, candidates: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Viterbi tags (B, T), the candidate tags (B, T, C) and their marginal probabilities (B, T, C).

    emissions (B, T, K + 1) with the boundary tag last; transitions (K + 1,)*3. Candidate slot c of
    position t holds tag ``options[b, t, c]``; the positions before a sentence hold the boundary tag
    in slot 0 only (the start scores rule the other slots out).
    """
    batch, steps, size = emissions.shape
    boundary = size - 1
    count = min(candidates, size - 1)
    scores, options = emissions[..., :boundary].topk(count, dim=-1)  # (B, T, C)
    edge = torch.full((batch, 2, count), boundary, dtype=torch.long)
    padded = torch.cat([edge, options], dim=1)  # position t of the sentence is index t + 2
    before2, before1 = padded[:, :-2], padded[:, 1:-1]  # (B, T, C): candidates at t-2 and t-1
    step = transitions[
        before2[..., :, None, None], before1[..., None, :, None], options[..., None, None, :]
    ]  # (B,T,C,C,C)
    start = torch.full((batch, count, count), IMPOSSIBLE)
    start[:, 0, :] = transitions[boundary, boundary][options[:, 0]]  # (B, C)
    last = mask.sum(1) - 1
    at_last = padded.gather(1, (last + 2)[:, None, None].expand(-1, 1, count)).squeeze(1)  # (B, C)
    before_last = padded.gather(1, (last + 1)[:, None, None].expand(-1, 1, count)).squeeze(1)
    end = transitions[before_last[:, :, None], at_last[:, None, :], boundary]  # (B, C, C)
    slots, _ = viterbi(scores, step, mask, start, end)
    probs = marginals(scores, step, mask, start, end).masked_fill(~mask[..., None], 0.0)  # (B, T, C)
    chosen = options.gather(2, slots[:, :, None]).squeeze(2)
    return chosen.masked_fill(~mask, 0), options, probs


def _slot(options: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """(B, T, 1): the candidate slot that holds each chosen tag."""
    return (options == chosen[..., None]).int().argmax(-1, keepdim=True)
