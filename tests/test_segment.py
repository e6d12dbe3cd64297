from lstmtag.segment import split_text


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
