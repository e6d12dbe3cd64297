import pytest

from lstmtag.data import load_labelled
from lstmtag.lemma import NONE, apply, script, with_scripts
from tests.conftest import DATA


@pytest.mark.parametrize(
    ("form", "lemma", "edit"),
    [
        ("running", "run", "keep|0||4|"),
        ("The", "the", "lower|0||0|"),
        ("was", "be", NONE + "be"),
        ("studies", "study", "keep|0||3|y"),
        ("unhappier", "unhappy", "keep|0||3|y"),
        ("London", "London", "keep|0||0|"),
    ],
)
def test_script_and_apply(form, lemma, edit):
    assert script(form, lemma) == edit
    assert apply(edit, form) == lemma


def test_every_ewt_lemma_round_trips():
    sentences = load_labelled(DATA / "ewt_sample.conllu", "conllu", ["lemma"])
    pairs = [(w, lemma) for s in sentences for w, lemma in zip(s.words, s.labels["lemma"], strict=True)]
    assert len(pairs) > 100
    assert all(apply(script(w, lemma), w) == lemma for w, lemma in pairs)


def test_a_script_that_does_not_fit_leaves_the_form():
    assert apply("keep|0||9|", "cat") == "cat"
    assert apply("nonsense", "cat") == "cat"


def test_rare_scripts_become_no_class():
    sentences = load_labelled(DATA / "ewt_sample.conllu", "conllu", ["lemma"])
    scripted = with_scripts(sentences, min_count=2)
    edits = [e for s in scripted for e in s.labels["lemma"]]
    assert "" in edits and "keep|0||0|" in edits
    assert sentences[0].labels["lemma"] != scripted[0].labels["lemma"]  # the input is not changed


def test_apply_all_equals_apply_token_by_token_with_and_without_long_forms():
    from lstmtag.lemma import CACHED_FORM, apply, apply_all, script

    forms = ["Running", "mice", "was", "x" * (CACHED_FORM + 5) + "ing"]
    edits = [script("Running", "run"), script("mice", "mouse"), script("was", "be"), script("walking", "walk")]
    assert apply_all(edits[:3], forms[:3]) == ["run", "mouse", "be"]
    assert apply_all(edits, forms) == [apply(e, f) for e, f in zip(edits, forms, strict=True)]
    assert apply_all(edits, forms)[3] == "x" * (CACHED_FORM + 5)
