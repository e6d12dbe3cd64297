"""The trained segmenter's parts: expansion of multiword tokens, decoding labels, windows; training on real text."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmtag import checkpoint, models
from lstmtag.segment import paragraphs, with_offset
from lstmtag.segmenter import INSIDE, MULTIWORD, SENTENCE, TOKEN, WINDOW, Expander, _windows, decode, to_file
from lstmtag.segmenter_train import expansion_coverage, labelled, scores

PAIRS = (
    [("don't", ["do", "n't"])] * 3 + [("can't", ["ca", "n't"]), ("won't", ["wo", "n't"])] * 2 + [("del", ["de", "el"])]
)


def test_expansion_keeps_the_casing_of_the_surface():
    expander = Expander.learn(PAIRS)
    assert expander.expand("don't") == ("do", "n't")
    assert expander.expand("Don't") == ("Do", "n't")
    assert expander.expand("DON'T") == ("DO", "N'T")
    assert expander.expand("Del") == ("De", "el")  # words that do not spell the surface: cased by its pattern


def test_an_unseen_surface_is_split_at_a_learned_suffix_or_left_whole():
    expander = Expander.learn(PAIRS)
    assert expander.suffixes == ["n't"]  # seen 7 times; a suffix seen fewer than 5 times is not trusted
    assert expander.expand("Shouldn't") == ("Should", "n't")
    assert expander.expand("n't") == ()  # nothing would be left before the suffix
    assert expander.expand("gonna") == ()


def test_turkish_dotted_capital_i_does_not_shift_the_cut():
    # str.lower turns "İ" into two characters; the words must still be cut where the treebank cuts them.
    expander = Expander.learn([("İyice", ["İyi", "ce"])] + [("önemli", ["önem", "li"])] * 5)
    assert expander.expand("İyice") == ("İyi", "ce")
    assert expander.expand("iyice") == ("iyi", "ce")
    assert expander.expand("İYİCE") == ("İYİ", "CE")
    assert expander.expand("İlgili") == ("İlgi", "li")  # unseen: split at the learned suffix "li"


def test_decode_turns_character_labels_into_sentences_tokens_and_words():
    text = "I don't.Go  now"
    labels = [TOKEN, INSIDE, INSIDE, INSIDE, INSIDE, INSIDE, MULTIWORD, SENTENCE, INSIDE, INSIDE]
    labels += [INSIDE, INSIDE, INSIDE, INSIDE, INSIDE]  # "Go" and "now" end at a space and at the end
    sentences = decode(text, labels, Expander.learn(PAIRS))
    assert [[(t.text, t.words, t.space_after) for t in s] for s in sentences] == [
        [("I", (), True), ("don't", ("do", "n't"), False), (".", (), False)],
        [("Go", (), True), ("now", (), True)],
    ]
    assert all(text[t.start : t.end] == t.text for s in sentences for t in s)


def test_windows_cover_the_text_and_cut_after_spaces():
    text = ("word " * 1000) + "x" * (WINDOW + 10)
    pieces = _windows(text)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert all(b - a <= WINDOW for a, b in pieces)
    assert text[pieces[0][1] - 1] == " "


def test_gold_labels_decode_back_to_the_gold_tokens(sample):
    """The labels the segmenter learns say everything the shared task scores (an oracle gets 100)."""
    data, skipped = labelled(sample)
    assert skipped == 0
    by_text = dict(data)
    expander = Expander.learn([("don't", ["do", "n't"])])

    class Oracle:
        def __call__(self, text):
            return [s for at, p in paragraphs(text) for s in with_offset(decode(p, by_text[p], expander), at)]

    from lstmtag.segmenter import TrainedSegmenter

    result = scores(Oracle(), sample)  # type: ignore[arg-type]
    assert result["Tokens"] == 1.0 and result["Sentences"] == 1.0
    covered, total = expansion_coverage(expander, sample)
    assert total > covered >= 1
    assert TrainedSegmenter.capabilities.segments


@pytest.fixture(scope="module")
def trained(tiny_segmenter):
    return tiny_segmenter


def test_it_learns_a_small_set_and_saves_without_pickle(trained, sample):
    out, result = trained
    segmenter = models.load_segmenter(out)
    assert result.best_accuracy == pytest.approx(segmenter.info["dev_accuracy"])
    assert scores(segmenter, sample[:8])["Tokens"] > 0.97
    assert checkpoint.read(out).kind == "segmenter"
    again = out.parent / "again.safetensors"
    checkpoint.save(again, to_file(segmenter))
    text = "I don't know. It's 5 o'clock, isn't it?"
    assert models.load_segmenter(again)(text) == segmenter(text)


def test_a_segmenter_is_not_a_tagger(trained):
    out, _ = trained
    with pytest.raises(checkpoint.ModelFileError, match="a segmenter, not a tagger"):
        models.load_tagger(out)


def test_padding_is_never_read_in_either_direction():
    import torch

    from lstmtag.config import load_config
    from lstmtag.segmenter import SegmenterNet

    torch.manual_seed(0)
    net = SegmenterNet(load_config(None, ["model.char_dim=8", "model.hidden_size=8", "model.dropout=0.0"]).model, 20)
    net.eval()
    rows = [torch.randint(1, 20, (n,)) for n in (7, 3, 5)]
    padded = torch.zeros(3, 7, dtype=torch.long)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    with torch.no_grad():
        together = net(padded, torch.tensor([7, 3, 5]))
        for i, row in enumerate(rows):
            alone = net(row.unsqueeze(0), torch.tensor([len(row)]))[0]
            assert torch.allclose(alone, together[i, : len(row)], atol=1e-6)


def test_paragraphs_labelled_together_equal_paragraphs_one_by_one(trained):
    segmenter = models.load_segmenter(trained[0])
    first, second = "I don't know. It's 5 o'clock, isn't it?", "The cow jumped over the moon.\tThe end"
    together = segmenter(first + "\n\n" + second)
    assert together == segmenter(first) + with_offset(segmenter(second), len(first) + 2)


def _decode_by_character(text, labels, expander):
    """``decode`` as defined: one step per character, whitespace ends a token, a label other than INSIDE too."""
    from lstmtag.segment import Token
    from lstmtag.segmenter import MULTIWORD_SENTENCE

    sentences, tokens, start = [], [], None
    for position, ch in enumerate([*text, " "]):
        if start is not None and (ch.isspace() or labels[position - 1] != INSIDE):
            label = labels[position - 1]
            words = expander.expand(text[start:position]) if label in (MULTIWORD, MULTIWORD_SENTENCE) else ()
            tokens.append(Token(text[start:position], start, position, position >= len(text) or ch.isspace(), words))
            start = None
            if label in (SENTENCE, MULTIWORD_SENTENCE):
                sentences, tokens = [*sentences, tokens], []
        if start is None and not ch.isspace():
            start = position
    return sentences + [tokens] if tokens else sentences


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab'n.t \t\n\u00a0\u2003"), st.sampled_from([0, 0, 0, 1, 2, 3, 4]))))
def test_decode_steps_by_token_as_the_definition_steps_by_character(pairs):
    text = "".join(ch for ch, _ in pairs)
    labels = [label for _, label in pairs]
    expander = Expander.learn(PAIRS)
    assert decode(text, labels, expander) == _decode_by_character(text, labels, expander)


def test_windows_batched_together_equal_windows_one_at_a_time(trained, monkeypatch):
    """Many paragraphs' windows in one padded batch give each window's labels alone (no padding read)."""
    import torch

    from lstmtag import segmenter as module

    segmenter = models.load_segmenter(trained[0])
    sentence = "I don't know. It's 5 o'clock, isn't it? The cow jumped over the moon."
    text = "\n\n".join((sentence + " ") * (1 + i % 4) + sentence[: 5 * i] for i in range(12))
    together = segmenter(text)
    monkeypatch.setattr(module, "BATCH_WINDOWS", 1)
    assert segmenter(text) == together
    spans = [(a + offset, b + offset) for offset, paragraph in paragraphs(text) for a, b in _windows(paragraph)]
    ids = segmenter._ids(text)
    batched = segmenter._scores(ids, spans)
    for row, span in enumerate(spans):
        alone = segmenter._scores(ids, [span])[0]
        assert torch.allclose(batched[row, : span[1] - span[0]], alone, atol=1e-5)
    ends = [7, 1, 0, 8]
    labels = segmenter.label(["I don't", "x", "", "The cow."])
    assert [len(row) for row in labels] == ends
    assert labels == [segmenter.label([text])[0] for text in ("I don't", "x", "", "The cow.")]


def test_the_whitespace_table_agrees_with_str_isspace_on_every_code_point():
    from lstmtag.segmenter import _space_table

    table = _space_table()
    assert [c for c in range(0x110000) if chr(c).isspace()] == [c for c in range(len(table)) if table[c]]


def test_multiword_weight_scales_the_loss_of_multiword_ends_only():
    from lstmtag.config import Config
    from lstmtag.segmenter import SegmenterNet
    from lstmtag.segmenter_train import SegmenterLoss

    torch.manual_seed(0)
    net = SegmenterNet(Config.from_dict({"model": {"kind": "segmenter", "char_dim": 8, "hidden_size": 4}}).model, 10)
    net.eval()  # no dropout: both losses see the same scores
    ids, lengths = torch.tensor([[1, 2, 3, 4]]), torch.tensor([4])
    gold = torch.tensor([[TOKEN, MULTIWORD, -100, INSIDE]])
    each = torch.nn.functional.cross_entropy(
        net(ids, lengths)[0], torch.tensor([TOKEN, MULTIWORD, 0, INSIDE]), reduction="none"
    )
    plain, weighted = (
        SegmenterLoss(net)(ids, lengths, gold),
        SegmenterLoss(net, multiword_weight=5.0)(ids, lengths, gold),
    )
    assert plain.item() == pytest.approx((each[0] + each[1] + each[3]).item() / 3)
    assert weighted.item() == pytest.approx((each[0] + 5 * each[1] + each[3]).item() / 7)  # a weighted mean
