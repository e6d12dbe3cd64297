from lstmtag.metrics import ColumnScores, SpanScores, bio_spans, is_bio, perplexity, shown_classes


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


def test_shown_classes_keep_a_short_table_and_cut_a_long_one_to_the_most_frequent():
    short = {tag: {"support": n} for tag, n in (("B", 1), ("A", 5))}
    assert shown_classes(short, limit=2) == short
    long = {f"t{n:03d}": {"support": n % 7} for n in range(100)}
    shown = shown_classes(long, limit=10)
    assert len(shown) == 10
    assert min(row["support"] for row in shown.values()) == 6  # the 14 classes of support 6, by name
    assert list(shown) == sorted(tag for tag, row in long.items() if row["support"] == 6)[:10]
