"""The raw-text reader: paragraphs, blocks, sentence ids and the lines errors name."""

from lstmtag import raw
from lstmtag.raw import read_raw


def test_sentences_name_their_paragraphs_first_line_and_mark_new_paragraphs(tmp_path, monkeypatch):
    monkeypatch.setattr(raw, "RAW_BLOCK_BYTES", 20)  # several blocks, so block edges are crossed too
    path = tmp_path / "raw.txt"
    path.write_text("One. Two.\nStill two.\n\n\nThree here.\n\nFour. Five and more words here.\n", encoding="utf-8")
    sentences = list(read_raw(path))
    assert [s.words[0] for s in sentences] == ["One", "Two", "Still", "Three", "Four", "Five"]
    assert [s.line for s in sentences] == [1, 1, 1, 5, 7, 7]
    assert [("# newpar" in s.lines) for s in sentences] == [True, False, False, True, True, False]
    assert [s.lines[1 if "# newpar" in s.lines else 0] for s in sentences] == [f"# sent_id = {n}" for n in range(1, 7)]
    assert "# text = Five and more words here." in sentences[5].lines


def test_text_lines_hold_the_text_the_tokens_came_from_without_control_characters(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text("foo\u200bbar\x07baz.\n", encoding="utf-8")
    (sentence,) = list(read_raw(path))
    assert sentence.words == ["foo", "bar", "baz", "."]
    text_line = next(line for line in sentence.lines if line.startswith("# text = "))
    assert "\x07" not in text_line and "\u200b" not in text_line
