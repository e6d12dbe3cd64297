from lstmtag.segment import split_text


def test_tokenizer():
    assert split_text("I don't like U.S. e-mail. It's 5 o'clock!") == [
        ["I", "do", "n't", "like", "U.S", "."],
        ["e-mail", "."],
        ["It", "'s", "5", "o'clock", "!"],
    ]
