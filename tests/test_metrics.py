from lstmtag.metrics import ColumnScores, SpanScores, bio_spans, is_bio, perplexity


def test_accuracy_known_unknown_and_per_tag():
    scores = ColumnScores()
    scores.add(["A", "B", "A", "C"], ["A", "B", "B", "C"], [True, True, False, False])
    summary = scores.summary()
    assert summary["accuracy"] == 0.75
    assert summary["known_accuracy"] == 1.0
    assert summary["unknown_accuracy"] == 0.5
    assert summary["per_tag"]["B"]["precision"] == 0.5 and summary["per_tag"]["B"]["recall"] == 1.0
    assert summary["confusions"] == [{"gold": "A", "predicted": "B", "count": 1}]


def test_bio_spans_follow_conlleval():
    assert bio_spans(["B-NP", "I-NP", "O", "B-VP"]) == {(0, 2, "NP"), (3, 4, "VP")}
    assert bio_spans(["I-NP", "I-NP", "B-NP"]) == {(0, 2, "NP"), (2, 3, "NP")}
    assert bio_spans(["B-NP", "I-VP"]) == {(0, 1, "NP"), (1, 2, "VP")}
    spans = SpanScores()
    spans.add(["B-NP", "I-NP", "O"], ["B-NP", "O", "O"])
    assert spans.summary()["precision"] == 0.0 and spans.summary()["recall"] == 0.0
    assert is_bio(["O", "B-X"]) and not is_bio(["NOUN"])


def test_perplexity():
    assert abs(perplexity(0.0, 10)["perplexity"] - 1.0) < 1e-9
