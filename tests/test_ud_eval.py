"""The CoNLL 2018 scores on hand-made cases whose answers are counted by hand."""

import pytest

from lstmtag.data import read_conllu
from lstmtag.ud_eval import align, document, evaluate
from tests.conftest import DATA


def doc(tmp_path, text: str, name: str):
    """A document from compact CoNLL-U: one sentence per block, lines ``ID FORM [UPOS [LEMMA]]``."""
    lines = []
    for block in text.strip().split("\n\n"):
        for row in block.strip().splitlines():
            cells = row.split(" ")
            token_id, form = cells[0], cells[1]
            upos = cells[2] if len(cells) > 2 else "_"
            lemma = cells[3] if len(cells) > 3 else form.lower()
            if "-" in token_id:
                lines.append("\t".join([token_id, form] + ["_"] * 8))
            else:
                lines.append("\t".join([token_id, form, lemma, upos, "_", "_", "0", "dep", "_", "_"]))
        lines.append("")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return document(read_conllu(path))


def f1s(scores):
    return {name: round(score.f1, 6) for name, score in scores.items()}


def test_identical_files_score_one_everywhere():
    gold = document(read_conllu(DATA / "ewt_sample.conllu"))
    scores = evaluate(gold, document(read_conllu(DATA / "ewt_sample.conllu")))
    assert all(score.f1 == 1.0 for score in scores.values())
    assert scores["Words"].gold == sum(1 for w in gold.words) and any(w.multiword for w in gold.words)


def test_a_split_token(tmp_path):
    gold = doc(tmp_path, "1 I PRON\n2 cannot VERB\n3 go VERB\n4 . PUNCT", "g")
    system = doc(tmp_path, "1 I PRON\n2 can AUX\n3 not PART\n4 go VERB\n5 . PUNCT", "s")
    scores = evaluate(gold, system)
    # 3 of 4 gold tokens found among 5: F1 = 2 * 3 / (4 + 5)
    assert scores["Tokens"].correct == 3 and scores["Tokens"].f1 == pytest.approx(6 / 9)
    assert scores["Words"].f1 == pytest.approx(6 / 9)
    assert scores["UPOS"].correct == 3
    assert scores["Sentences"].f1 == 1.0


def test_merged_tokens_keep_their_spaces_out_of_the_characters(tmp_path):
    gold = doc(tmp_path, "1 New PROPN\n2 York PROPN\n3 rocks VERB", "g")
    system = doc(tmp_path, "1 New\u00a0York PROPN\n2 rocks VERB", "s")  # NBSP is a space character (Zs)
    scores = evaluate(gold, system)
    assert (scores["Tokens"].gold, scores["Tokens"].system, scores["Tokens"].correct) == (3, 2, 1)
    assert scores["Words"].f1 == pytest.approx(2 / 5)


def test_multiword_tokens_align_their_words_by_common_forms(tmp_path):
    gold = doc(tmp_path, "1-2 don't\n1 do AUX\n2 n't PART\n3 go VERB", "g")
    same = doc(tmp_path, "1-2 don't\n1 do AUX\n2 n't PART\n3 go VERB", "s1")
    wrong_words = doc(tmp_path, "1-2 don't\n1 do AUX\n2 not PART\n3 go VERB", "s2")
    split = doc(tmp_path, "1 do AUX\n2 n't PART\n3 go VERB", "s3")
    unsplit = doc(tmp_path, "1 don't VERB\n2 go VERB", "s4")
    assert f1s(evaluate(gold, same))["Words"] == 1.0
    scores = evaluate(gold, wrong_words)
    assert scores["Tokens"].f1 == 1.0
    assert scores["Words"].correct == 2  # "do" and "go"; "not" is no "n't"
    assert scores["Words"].f1 == pytest.approx(2 / 3)
    scores = evaluate(gold, split)
    assert scores["Tokens"].correct == 1 and scores["Tokens"].f1 == pytest.approx(2 / 5)
    assert scores["Words"].correct == 3  # the same words, though the token was not marked multiword
    scores = evaluate(gold, unsplit)
    assert scores["Words"].correct == 1 and scores["Words"].f1 == pytest.approx(2 / 5)


def test_words_are_aligned_case_blind_inside_a_multiword_token(tmp_path):
    gold = doc(tmp_path, "1-2 Gonna\n1 Gon VERB\n2 na PART", "g")
    system = doc(tmp_path, "1-2 Gonna\n1 gon VERB\n2 na PART", "s")
    assert align(gold.words, system.words) == [(0, 0), (1, 1)]


def test_sentence_boundaries(tmp_path):
    gold = doc(tmp_path, "1 Hi\n2 .\n\n1 Bye\n2 .\n\n1 Ok", "g")
    one = doc(tmp_path, "1 Hi\n2 .\n3 Bye\n4 .\n\n1 Ok", "s1")
    scores = evaluate(gold, one)
    assert (scores["Sentences"].gold, scores["Sentences"].system, scores["Sentences"].correct) == (3, 2, 1)
    assert scores["Tokens"].f1 == 1.0
    over = doc(tmp_path, "1 Hi\n\n1 .\n\n1 Bye\n2 .\n\n1 Ok", "s2")
    assert evaluate(gold, over)["Sentences"].correct == 2


def test_lemmas_count_only_where_gold_has_one_and_tags_compare_universal_features(tmp_path):
    gold = doc(tmp_path, "1 Dogs NOUN dog\n2 bark VERB _", "g")
    system = doc(tmp_path, "1 Dogs NOUN dogs\n2 bark VERB whatever", "s")
    scores = evaluate(gold, system)
    assert scores["Lemmas"].correct == 1  # "bark" has no gold lemma, so any lemma counts
    assert scores["UFeats"].f1 == 1.0 and scores["AllTags"].f1 == 1.0


def test_different_text_is_refused(tmp_path):
    gold = doc(tmp_path, "1 Hello\n2 world", "g")
    system = doc(tmp_path, "1 Hello\n2 word", "s")
    with pytest.raises(ValueError, match="differs from the gold text at non-space character 8"):
        evaluate(gold, system)
