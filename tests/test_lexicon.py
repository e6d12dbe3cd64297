"""The lemma lexicon: built from a treebank, it wins over the edit scripts, and its JSON is checked and bounded."""

from collections import Counter, defaultdict

import pytest

from lstmtag.data import Sentence
from lstmtag.lemma import CACHED_FORM, apply, script
from lstmtag.lexicon import LemmaLexicon, build


def sentence(*tokens: tuple[str, str, str]) -> Sentence:
    words, tags, lemmas = map(list, zip(*tokens, strict=True))
    return Sentence(words, labels={"xpos": tags, "lemma": lemmas})


def test_every_unambiguous_pair_of_the_sample_is_kept_with_its_lemma(ud_sample):
    lexicon = build(ud_sample)
    seen = defaultdict(Counter)
    for s in ud_sample:
        for form, tag, lemma in zip(s.words, s.labels["xpos"], s.labels["lemma"], strict=True):
            seen[(form, tag)][lemma] += 1
    unambiguous = {key: next(iter(lemmas)) for key, lemmas in seen.items() if len(lemmas) == 1}
    assert lexicon.entries == unambiguous and len(lexicon) > 100
    assert lexicon.entries[("was", "VBD")] == "be"


def test_an_ambiguous_pair_is_left_to_the_head():
    lexicon = build([sentence(("'s", "VBZ", "be"), ("'s", "VBZ", "have"), ("'s", "VBZ", "be"), ("ran", "VBD", "run"))])
    assert lexicon.entries == {("ran", "VBD"): "run"}


def test_pairs_the_head_gets_right_anyway_are_left_out():
    data = [sentence(("The", "DT", "the"), ("dogs", "NNS", "dog"), ("ran", "VBD", "run"), ("Bush", "NNP", "Bush"))]
    gold = [s.labels["lemma"] for s in data]
    assert build(data).entries.keys() == {("The", "DT"), ("dogs", "NNS"), ("ran", "VBD"), ("Bush", "NNP")}
    # Lemmas that are the form (or its lowercase) and that the head got right go; the others stay.
    assert build(data, predicted=gold).entries == {("dogs", "NNS"): "dog", ("ran", "VBD"): "run"}
    missed = [["The", "dog", "run", "Bush"]]  # the head left "The" as it is
    assert build(data, predicted=missed).entries == {
        ("The", "DT"): "the",
        ("dogs", "NNS"): "dog",
        ("ran", "VBD"): "run",
    }


def test_the_lexicon_wins_over_the_script_then_its_lowercase_entry_then_numbers():
    lexicon = LemmaLexicon({("stolen", "VBN"): "steal", ("buses", "NNS"): "bus"}, numbers=True)
    wrong = script("stolen", "stolan")
    assert apply(wrong, "stolen") == "stolan"
    assert lexicon.lemma(wrong, "stolen", "VBN") == "steal"
    assert lexicon.lemma(wrong, "stolen", "VBD") == "stolan"  # another tag: the script
    assert lexicon.lemma(script("Buses", "buse"), "Buses", "NNS") == "bus"  # sentence-initial
    assert lexicon.lemma(script("5,000", "5,000"), "5,000", "CD") == "5000"
    assert lexicon.lemma(script("1,234,567.5", "x"), "1,234,567.5", "CD") == "1234567.5"
    assert lexicon.lemma(script("1,2", "1,2"), "1,2", "CD") == "1,2"  # not a number with thousands commas
    keep = LemmaLexicon({}, numbers=False)
    assert keep.lemma(script("5,000", "5,000"), "5,000", "CD") == "5,000"


def test_lemmas_are_lemma_token_by_token_with_and_without_long_forms():
    lexicon = LemmaLexicon({("mice", "NNS"): "mouse"}, numbers=True)
    forms = ["Mice", "ran", "5,000", "x" * (CACHED_FORM + 5) + "ing"]
    tags = ["NNS", "VBD", "CD", "VBG"]
    edits = [script("Mice", "Mice"), script("ran", "run"), script("5,000", "5,000"), script("walking", "walk")]
    assert lexicon.lemmas(edits[:3], forms[:3], tags[:3]) == ["mouse", "run", "5000"]
    assert lexicon.lemmas(edits, forms, tags) == list(map(lexicon.lemma, edits, forms, tags))


def test_numbers_are_set_only_when_the_treebank_writes_every_one_without_commas():
    plain = sentence(("5,000", "CD", "5000"), ("12,345.5", "CD", "12345.5"))
    assert build([plain]).numbers
    assert not build([plain, sentence(("1,000", "CD", "1,000"))]).numbers
    assert not build([sentence(("5", "CD", "5"))]).numbers  # no evidence


def test_json_round_trips(ud_sample):
    lexicon = build(ud_sample)
    again = LemmaLexicon.from_json(lexicon.to_json(), columns=["upos", "xpos", "lemma"])
    assert again == lexicon and again.column == "xpos"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "version 1"),
        ('{"version": 1, "column": "xpos", "numbers": "yes", "entries": {}}', "numbers flag"),
        ('{"version": 1, "column": "xpos", "numbers": false, "entries": {"NN": {"cats": 3}}}', "'NN' must map"),
        ('{"version": 1, "column": "upos", "numbers": false, "entries": {}}', "column 'upos'"),
        ("[" * 1000 + "]" * 1000, "nested deeper"),
        ('{"version": 1', "Expecting"),
    ],
)
def test_malformed_json_is_refused_saying_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        LemmaLexicon.from_json(text, columns=["xpos", "lemma"])


def test_json_beyond_the_bound_is_refused_unparsed(monkeypatch):
    text = LemmaLexicon({("cats", "NNS"): "cat"}).to_json()
    monkeypatch.setattr("lstmtag.lexicon.MAX_LEXICON_CHARS", len(text) - 1)
    with pytest.raises(ValueError, match=f"{len(text)} characters of JSON; at most {len(text) - 1}"):
        LemmaLexicon.from_json(text)
