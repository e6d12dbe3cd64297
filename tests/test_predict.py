"""predict.py's batching: every sentence once, sorted, within the sentence and padded-token bounds."""

from hypothesis import given
from hypothesis import strategies as st

from lstmtag.data import Sentence
from lstmtag.predict import _chunks


@given(st.lists(st.integers(1, 300), max_size=300), st.integers(1, 64), st.integers(1, 2000))
def test_chunks_cover_every_sentence_once_within_bounds(lengths, size, max_tokens):
    sentences = [Sentence(["w"] * n) for n in lengths]
    chunks = list(_chunks(sentences, size, max_tokens=max_tokens))
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(lengths)))
    order = [lengths[i] for chunk in chunks for i in chunk]
    assert order == sorted(order)
    for chunk in chunks:
        longest = max(lengths[i] for i in chunk)
        assert len(chunk) <= size
        assert len(chunk) == 1 or len(chunk) * longest <= max_tokens
