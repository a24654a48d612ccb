"""The greedy answer's certainty per value: spans of the JSON the model wrote, and its tokens' probabilities."""

from __future__ import annotations

from pipeline.model.certainty import value_certainty, value_spans

ANSWER = '{"n":"A-1","d":null,"seller":{"name":"Ab \\"C\\" Oy"},"rows":[{"x":1.5},{"x":-2e3}],"t":true}'


def test_value_spans_name_each_leaf_with_its_path() -> None:
    spans = value_spans(ANSWER)
    assert {p: ANSWER[a:b] for p, (a, b) in spans.items()} == {
        "n": '"A-1"', "d": "null", "seller.name": '"Ab \\"C\\" Oy"', "rows[0].x": "1.5", "rows[1].x": "-2e3",
        "t": "true"}
    assert value_spans('{ "a" : [ ] , "b" : { } , "c" : 1 }') == {"c": (32, 33)}  # spaced, empty containers


def test_a_value_is_as_sure_as_its_least_likely_token() -> None:
    text = '{"d":"2024-03-04","n":"é1"}'
    pieces = ['{"', 'd', '":"', '2024', '-03', '-04', '","', 'n', '":"', 'é', '1', '"}']
    probabilities = [1.0, 1.0, 0.99, 0.97, 0.51, 0.9, 0.98, 1.0, 0.99, 0.7, 0.95, 1.0]
    vocab = {i: p.encode() for i, p in enumerate(pieces)}
    certainty = value_certainty(text, list(vocab), probabilities, vocab.__getitem__)
    assert certainty == {"d": 0.51, "n": 0.7}
    # tokens that do not spell the answer (a drafted or stripped one): no figure rather than a wrong one
    assert value_certainty(text + " ", list(vocab), probabilities, vocab.__getitem__) == {}
    assert value_certainty(text, list(vocab)[:-1], probabilities, vocab.__getitem__) == {}
    # a character split across two tokens (UTF-8 bytes) still places the tokens after it right
    split = {0: b'{"n":"', 1: "é".encode()[:1], 2: "é".encode()[1:] + b'x"}'}
    assert value_certainty('{"n":"éx"}', [0, 1, 2], [1.0, 0.6, 0.8], split.__getitem__) == {"n": 0.6}
