from __future__ import annotations

import pytest

from pruning.data.windows import CorpusTooShortError, EvalProtocol, build_windows

TOKENS = list(range(1000, 2050))  # 1050 distinct tokens


def test_windows_are_consecutive_and_score_all_but_the_first_position():
    windows = build_windows(TOKENS, EvalProtocol("windows", 100, 350))
    assert len(windows) == 3
    assert [w.ids[0].item() for w in windows] == [1000, 1100, 1200]
    assert all(w.score_from == 1 and w.scored == 99 for w in windows)


def test_eval_tokens_none_uses_every_full_window():
    assert len(build_windows(TOKENS, EvalProtocol("windows", 100))) == 10


def test_sliding_scores_every_token_but_the_first_exactly_once():
    windows = build_windows(TOKENS, EvalProtocol("sliding", 100, None, 40))
    scored = []
    for w in windows:
        scored += w.ids[w.score_from :].tolist()
        assert len(w.ids) <= 100
    assert scored == TOKENS[1:]
    assert windows[1].score_from == 100 - 40  # up to ctx-1 tokens of context


def test_llamacpp_scores_the_second_half_and_puts_bos_first():
    windows = build_windows(TOKENS, EvalProtocol("llamacpp", 100, 300), bos_id=7)
    assert len(windows) == 3  # BOS + 1050 tokens = 1051 -> eval_tokens // ctx = 3 chunks
    assert windows[0].ids[0].item() == 7 and windows[1].ids[0].item() == 7
    assert windows[1].ids[1].item() == TOKENS[100]  # chunk 1 starts at token 99 (BOS shift)
    assert windows[0].score_from == 51 and windows[0].scored == 49  # ctx - 1 - ctx/2


def test_llamacpp_without_bos_uses_the_raw_chunks():
    windows = build_windows(TOKENS, EvalProtocol("llamacpp", 100, 300), bos_id=None)
    assert windows[1].ids[0].item() == TOKENS[100]


def test_a_corpus_shorter_than_one_window_is_a_clear_error():
    with pytest.raises(CorpusTooShortError, match=r"has 50 tokens, fewer than one window of ctx=100"):
        build_windows(TOKENS[:50], EvalProtocol("windows", 100))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "nope"}, r"unknown protocol 'nope'; expected one of windows, sliding, llamacpp"),
        ({"ctx": 1}, r"ctx 1 is too small"),
        ({"ctx": 100, "eval_tokens": 50}, r"eval_tokens 50 is smaller than ctx 100"),
        ({"name": "windows", "stride": 10}, r"stride 10 is only for the sliding protocol"),
        ({"name": "sliding", "ctx": 100, "stride": 100}, r"must lie in \[1, 99\]"),
    ],
)
def test_bad_protocols_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvalProtocol(**kwargs)


def test_ctx_is_capped_at_the_model_maximum():
    assert EvalProtocol("windows", 2048).capped(1024).ctx == 1024
    assert EvalProtocol("windows", 512).capped(1024).ctx == 512


def test_windows_with_bos_are_bos_plus_ctx_minus_one_tokens_all_scored():
    windows = build_windows(TOKENS, EvalProtocol("windows", 100, 350), bos_id=7)
    assert len(windows) == 3  # eval_tokens // ctx windows, as without BOS
    for i, w in enumerate(windows):
        assert w.ids.tolist() == [7, *TOKENS[i * 99 : (i + 1) * 99]]
        assert w.score_from == 1 and w.scored == 99  # every corpus token of the window


def test_sliding_with_bos_scores_every_token_exactly_once_after_a_bos():
    windows = build_windows(TOKENS, EvalProtocol("sliding", 100, None, 40), bos_id=7)
    scored = []
    for w in windows:
        assert w.ids[0].item() == 7 and len(w.ids) <= 100
        scored += w.ids[w.score_from :].tolist()
    assert scored == TOKENS  # the first token too: BOS is its context
    assert windows[1].score_from == 1 + 99 - 40


def test_no_bos_leaves_windows_and_sliding_unchanged():
    assert [
        w.ids.tolist() for w in build_windows(TOKENS, EvalProtocol("windows", 100, 350), bos_id=None)
    ] == [TOKENS[i * 100 : (i + 1) * 100] for i in range(3)]
