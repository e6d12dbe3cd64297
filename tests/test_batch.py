import random

import torch

from lstmtag.batch import char_tensors, make_batch, word_key
from lstmtag.train import build_vocabs
from tests.conftest import tiny_config


def test_word_ids_are_each_tokens_own_lookup_and_padding_is_zero(sample, dev_sample):
    vocabs = build_vocabs(sample, tiny_config())
    sentences = dev_sample[:7]  # unseen words among them
    batch = make_batch(sentences, vocabs)
    for row, sentence in enumerate(sentences):
        n = len(sentence.words)
        assert batch.words[row, :n].tolist() == [vocabs.words.id(word_key(w)) for w in sentence.words]
        assert not batch.words[row, n:].any()
    assert (batch.words == vocabs.words.unk_id).any()  # unseen words: the lookup, not a copy of training ids


def test_word_dropout_draws_once_per_token_in_order(sample):
    vocabs = build_vocabs(sample, tiny_config())
    sentences = sample[:6]
    dropped = make_batch(sentences, vocabs, word_dropout=0.25, rng=random.Random(3))
    rng = random.Random(3)
    counts = vocabs.word_counts
    for row, sentence in enumerate(sentences):
        expected = []
        for word in sentence.words:
            i = vocabs.words.id(word_key(word))
            expected.append(vocabs.words.unk_id if rng.random() < 0.25 / (0.25 + counts[i]) else i)
        assert dropped.words[row, : len(sentence.words)].tolist() == expected


def test_a_tagging_batch_has_no_labels_and_builds_characters_later(sample, dev_sample):
    vocabs = build_vocabs(sample, tiny_config())
    eager = make_batch(dev_sample[:5], vocabs)
    lazy = make_batch(dev_sample[:5], vocabs, labels=False, lazy_chars=True)
    assert eager.labels and not lazy.labels
    assert lazy.chars.numel() == 0 and lazy.char_vocab is vocabs.chars
    assert lazy.spellings == eager.spellings and torch.equal(lazy.word_types, eager.word_types)
    assert torch.equal(lazy.words, eager.words)
    chars, lengths = char_tensors(lazy.spellings, vocabs.chars)
    assert torch.equal(chars, eager.chars) and torch.equal(lengths, eager.char_lengths)
    ids = lazy.spelling_words[lazy.word_types]  # each spelling's word id, per token
    assert torch.equal(ids[lazy.mask], lazy.words[lazy.mask])


def test_a_batch_without_characters_has_none(sample):
    vocabs = build_vocabs(sample, tiny_config())
    batch = make_batch(sample[:3], vocabs, chars=False)
    assert batch.chars.numel() == 0 and not batch.spellings and not batch.word_types.any()


def test_word_ids_of_spellings_are_remembered_and_stay_right_when_the_memo_is_full(sample, monkeypatch):
    import lstmtag.batch as batch_module

    vocabs = build_vocabs(sample, tiny_config())
    spellings = ["The", "the", "THE", "1999", "2024", "zzyzx", "The"]
    expected = [vocabs.words.id(word_key(s)) for s in spellings]
    assert vocabs.word_ids(spellings) == expected
    assert vocabs.word_ids(spellings) == expected  # from the memo
    assert expected[0] == expected[1] == expected[2] and expected[3] == expected[4]
    monkeypatch.setattr(batch_module, "SPELLING_MEMO", 2)
    assert (
        vocabs.word_ids(["Dog", "dogs", *spellings])
        == [vocabs.words.id(word_key(s)) for s in ["Dog", "dogs"]] + expected
    )
    assert len(vocabs.known) <= 2 + 9  # started afresh once over the bound
