from hypothesis import given, settings
from hypothesis import strategies as st

from lstmtag.segment import Token, bounded, clean, conllu_lines, paragraphs, rule_segment, split_text, words


def test_tokenizer():
    assert split_text("I don't like U.S. e-mail. It's 5 o'clock!") == [
        ["I", "do", "n't", "like", "U.S", "."],
        ["e-mail", "."],
        ["It", "'s", "5", "o'clock", "!"],
    ]


def test_the_python_api_tags_raw_text_with_the_same_splitter(tiny_tagger):
    import lstmtag

    predictor = lstmtag.load(tiny_tagger)
    text = "I don't like it. The cow jumped!"
    assert predictor.tag_text(text) == predictor.tag_batch(split_text(text))
    assert [[row["token"] for row in sentence] for sentence in predictor.tag_text(text)] == split_text(text)


def test_tokens_are_slices_of_the_text_with_their_spaces():
    text = "Hi there.It's\tfine!"
    sentences = rule_segment(text)
    for sentence in sentences:
        for token in sentence:
            assert text[token.start : token.end] == token.text
            assert token.space_after == (token.end == len(text) or text[token.end].isspace())
    assert [[t.text for t in s] for s in sentences] == [["Hi", "there.It", "'s", "fine", "!"]]


def test_control_characters_are_spaces_one_for_one():
    assert clean("a\x00b\u200bc\td\n") == "a b c\td\n"
    assert clean("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f468\u200d\U0001f469") == (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f468\u200d\U0001f469"
    )  # joiners stay inside a Persian word and an emoji sequence
    assert words(rule_segment("ding\x07dong")[0]) == ["ding", "dong"]


def test_bounded_cuts_long_sentences_and_long_tokens():
    long_word = "x" * 2500
    (cut,) = bounded([[Token(long_word, 0, 2500)]], max_chars=1000)
    assert [(t.start, t.end, t.space_after) for t in cut] == [(0, 1000, False), (1000, 2000, False), (2000, 2500, True)]
    many = [Token("a", 2 * i, 2 * i + 1) for i in range(25)]
    assert [len(s) for s in bounded([many], max_tokens=10)] == [10, 10, 5]


def test_conllu_lines_mark_paragraphs_spaces_and_multiword_tokens():
    text = "I don't go."
    sentence = [
        Token("I", 0, 1),
        Token("don't", 2, 7, words=("do", "n't")),
        Token("go", 8, 10, space_after=False),
        Token(".", 10, 11),
    ]
    lines, word_lines = conllu_lines(sentence, text, sent_id="7", newpar=True)
    assert lines[:3] == ["# newpar", "# sent_id = 7", "# text = I don't go."]
    rows = [line.split("\t") for line in lines[3:]]
    assert [(r[0], r[1], r[9]) for r in rows] == [
        ("1", "I", "_"),
        ("2-3", "don't", "_"),
        ("2", "do", "_"),
        ("3", "n't", "_"),
        ("4", "go", "SpaceAfter=No"),
        ("5", ".", "_"),
    ]
    assert all(len(r) == 10 for r in rows)
    assert [lines[i].split("\t")[1] for i in word_lines] == ["I", "do", "n't", "go", "."]


def test_no_sentence_spans_a_blank_line():
    text = "Yes it is\n \nA second one\n\n\nthird"
    assert [[t.text for t in s] for s in rule_segment(text)] == [["Yes", "it", "is"], ["A", "second", "one"], ["third"]]
    assert [offset for offset, _ in paragraphs(text)] == [0, 12, 27]


def test_bounded_cuts_sentences_by_words_after_multiword_expansion():
    from lstmtag.segment import Token, bounded

    tokens = [Token("im", 3 * i, 3 * i + 2, True, ("i", "m")) for i in range(7)]
    pieces = bounded([tokens], max_tokens=5)
    assert [sum(len(t.forms) for t in piece) for piece in pieces] == [4, 4, 4, 2]
    assert [t for piece in pieces for t in piece] == tokens


def test_clean_blanks_exactly_the_control_characters_and_invisible_separators():
    import unicodedata

    from lstmtag.segment import INVISIBLE

    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    expected = "".join(
        " " if (c in INVISIBLE or unicodedata.category(c) == "Cc") and c not in "\t\n\r" else c for c in everything
    )
    assert clean(everything) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(1, 7), st.lists(st.integers(1, 7), max_size=3)), max_size=9), max_size=4),
    st.integers(1, 6),
    st.integers(1, 6),
)
def test_bounded_leaves_short_sentences_whole_and_cuts_the_rest_token_by_token(shapes, max_tokens, max_chars):
    """Its shortcut for sentences with nothing to cut gives what the cutting loop gives."""
    sentences, at = [], 0
    for shape in shapes:
        sentence = []
        for length, word_lengths in shape:
            words = tuple("w" * n for n in word_lengths) if len(word_lengths) > 1 else ()
            sentence.append(Token("x" * length, at, at + length, True, words))
            at += length + 1
        sentences.append(sentence)
    cut = bounded(sentences, max_tokens=max_tokens, max_chars=max_chars)
    expected = [piece for sentence in sentences for piece in _cut_one_by_one(sentence, max_tokens, max_chars)]
    assert cut == expected


def _cut_one_by_one(sentence, max_tokens, max_chars):
    """The definition, token by token: long tokens into pieces, then pieces of at most ``max_tokens`` words."""
    tokens = []
    for token in sentence:
        if len(token.text) <= max_chars and all(len(w) <= max_chars for w in token.words):
            tokens.append(token)
            continue
        for at in range(token.start, token.end, max_chars):
            stop = min(at + max_chars, token.end)
            piece = token.text[at - token.start : stop - token.start]
            tokens.append(Token(piece, at, stop, token.space_after if stop == token.end else False))
    pieces, piece, count = [], [], 0
    for token in tokens:
        if piece and count + len(token.forms) > max_tokens:
            pieces.append(piece)
            piece, count = [], 0
        piece.append(token)
        count += len(token.forms)
    return [*pieces, piece] if piece else pieces
