"""Raw text through segmenter and tagger: the document view, gold text, and evaluate_raw."""

import pytest

import lstmtag
from lstmtag import models
from lstmtag.data import DataError, load_labelled
from lstmtag.pipeline import evaluate_raw, gold_paragraphs, paragraphs
from lstmtag.predict import Predictor
from lstmtag.segment import rule_segment
from tests.conftest import DATA, multiword_segment, tiny_config


def test_paragraphs_keep_their_offsets():
    text = "One. Two.\n\n  \nThree\nfour.\n"
    assert [(offset, text[offset : offset + len(p)] == p) for offset, p in paragraphs(text)] == [(0, True), (14, True)]


def test_gold_paragraphs_join_sentence_texts_and_break_at_newpar(sample):
    texts = list(gold_paragraphs(sample))
    newpars = sum(1 for s in sample if any(line.startswith(("# newpar", "# newdoc")) for line in s.lines))
    assert len(texts) == newpars
    assert texts[0].startswith("Al-Zaman : American forces killed")


def test_gold_without_text_lines_is_refused(tmp_path):
    path = tmp_path / "g.conllu"
    path.write_text("1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"g.conllu:1: sentence has no '# text"):
        list(gold_paragraphs(load_labelled(path, "conllu", [])))


def test_the_api_gives_tokens_with_offsets_and_multiword_words(tiny_tagger):
    predictor = lstmtag.load(tiny_tagger, segmenter=multiword_segment)
    text = "I dont know.\n\nThe cow jumped!"
    doc = predictor(text)
    assert [s["text"] for s in doc] == ["I dont know.", "The cow jumped!"]
    assert [s["paragraph"] for s in doc] == [0, 1]
    for sentence in doc:
        for token in sentence["tokens"]:
            assert text[token["start"] : token["end"]] == token["text"]
    dont = doc[0]["tokens"][1]
    assert [w["word"] for w in dont["words"]] == ["do", "n't"]
    assert {"upos", "upos_prob", "xpos", "xpos_prob"} <= set(dont["words"][0])
    assert doc[0]["tokens"][2]["space_after"] is False  # "know" is followed by "."
    tags = predictor.tag_batch([["I", "do", "n't", "know", "."]])[0]
    assert [w["upos"] for t in doc[0]["tokens"] for w in t["words"]] == [row["upos"] for row in tags]


def test_the_api_fills_lemma_and_feats_from_raw_text(ud_tagger, ud_sample):
    from lstmtag.lemma import is_script

    predictor = lstmtag.load(ud_tagger, segmenter=multiword_segment)
    gold = ud_sample[5]  # memorised by the fixture: "The third was being run by the head of an investment firm ."
    doc = predictor(" ".join(gold.words[:-1]) + ". I dont know.")
    found = [w for t in doc[0]["tokens"] for w in t["words"]]
    assert [w["word"] for w in found] == gold.words
    assert [w["lemma"] for w in found] == gold.labels["lemma"]  # the -> "the", was -> "be": strings, not scripts
    assert [w["feats"] for w in found] == gold.labels["feats"]
    dont = doc[1]["tokens"][1]
    assert [w["word"] for w in dont["words"]] == ["do", "n't"]
    assert all(
        0 <= w[f"{c}_prob"] <= 1 and not is_script(w["lemma"]) for w in dont["words"] for c in ("feats", "lemma")
    )


def test_evaluate_raw_scores_the_pipeline_against_gold(tiny_tagger, sample):
    predictor = Predictor.load(tiny_tagger)
    report = evaluate_raw(predictor, sample, predictor.segmenter)
    scores = report["scores"]
    assert set(scores) == {"Tokens", "Sentences", "Words", "UPOS", "XPOS", "UFeats", "AllTags", "Lemmas"}
    assert 0.5 < scores["Tokens"]["f1"] < 1.0  # the rule tokenizer does not split EWT's way everywhere
    assert scores["UPOS"]["correct"] <= scores["Words"]["correct"]
    assert scores["Words"]["gold"] == sum(len(s.words) for s in sample)


def test_gold_token_evaluation_reports_lemma_and_feats_when_the_model_predicts_them(sample, tmp_path):
    from lstmtag.train import train_tagger

    out = tmp_path / "lemma.safetensors"
    config = tiny_config("train.epochs=2", "data.columns=upos,feats,lemma")
    train_tagger(
        load_labelled(DATA / "ewt_sample.conllu", "conllu", ["upos", "feats", "lemma"]), sample[:4], config, out
    )
    predictor = Predictor(models.load_tagger(out))
    gold = load_labelled(DATA / "ewt_dev_sample.conllu", "conllu", predictor.columns)
    columns = predictor.evaluate(gold)["columns"]
    assert {"lemma", "feats"} <= set(columns)
    for name in ("lemma", "feats"):
        assert {"accuracy", "known_accuracy", "unknown_accuracy"} <= set(columns[name])
    raw = evaluate_raw(predictor, gold, predictor.segmenter)["scores"]
    assert raw["Lemmas"]["correct"] > 0  # the predicted lemmas reach the raw-text scores


def test_a_shipped_model_brings_the_segmenter_installed_beside_it(tiny_tagger, tiny_segmenter, tmp_path, monkeypatch):
    import shutil

    from lstmtag.segmenter import TrainedSegmenter

    shutil.copy(tiny_tagger, tmp_path / "xx_test.safetensors")
    monkeypatch.setitem(models.SHIPPED, "xx", "xx_test.safetensors")
    monkeypatch.setattr(models, "shipped_dirs", lambda: [tmp_path])
    assert lstmtag.load("xx").segmenter is rule_segment  # none installed: the rules
    shutil.copy(tiny_segmenter[0], tmp_path / "xx_test.segmenter.safetensors")
    predictor = lstmtag.load("xx")
    assert isinstance(predictor.segmenter, TrainedSegmenter)
    assert isinstance(Predictor.load("xx").segmenter, TrainedSegmenter)
    assert lstmtag.load("xx", segmenter=rule_segment).segmenter is rule_segment
