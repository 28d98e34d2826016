from __future__ import annotations

import pytest

from pruning.data.protocols import spread_indices
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


def test_spread_takes_one_window_from_each_equal_stretch_of_the_whole_text():
    """10 windows of 100 in the text, 3 asked for: one from each of the stretches 0-2, 3-5 and 6-9,
    at the positions the declared seed gives (pinned: the same on every machine and Python)."""
    spread = EvalProtocol("windows", 100, 300, selection="spread")
    windows = build_windows(TOKENS, spread)
    assert spread_indices(10, 3) == [1, 4, 9]
    assert [w.start for w in windows] == [100, 400, 900]
    assert [w.ids[0].item() for w in windows] == [TOKENS[100], TOKENS[400], TOKENS[900]]
    assert [w.start for w in build_windows(TOKENS, spread)] == [100, 400, 900]  # deterministic
    assert all(w.score_from == 1 and w.scored == 99 for w in windows)
    first = build_windows(TOKENS, EvalProtocol("windows", 100, 300, selection="first"))
    assert [w.start for w in first] == [0, 100, 200]


@pytest.mark.parametrize("count", [1, 2, 7, 8, 100, 256])
def test_spread_windows_span_the_text_one_per_stretch(count):
    picks = spread_indices(512, count)
    assert len(set(picks)) == count and picks == sorted(picks)
    assert all(j * 512 // count <= i < (j + 1) * 512 // count for j, i in enumerate(picks))
    assert spread_indices(512, count) == picks  # the seed fixes them
    if count > 1:
        assert spread_indices(512, count, seed=1) != picks  # another seed, other positions


def test_every_window_records_its_first_corpus_token():
    for protocol, bos in [
        (EvalProtocol("windows", 100, 400, selection="spread"), 7),
        (EvalProtocol("windows", 100, 400, selection="spread"), None),
        (EvalProtocol("llamacpp", 100, 400, selection="spread"), 7),
        (EvalProtocol("llamacpp", 100, 400, selection="spread"), None),
        (EvalProtocol("sliding", 100, 400, 40), 7),
    ]:
        for w in build_windows(TOKENS, protocol, bos_id=bos):
            first = 1 if bos is not None else 0  # the BOS is not a corpus token
            assert w.ids[first].item() == TOKENS[w.start], protocol


def test_all_tokens_read_the_same_windows_either_way_and_sliding_cannot_spread():
    spread = build_windows(TOKENS, EvalProtocol("windows", 100, None, selection="spread"))
    assert [w.start for w in spread] == [100 * i for i in range(10)]
    with pytest.raises(ValueError, match="sliding protocol reads one contiguous stretch; expected window"):
        EvalProtocol("sliding", 100, 300, selection="spread")
    with pytest.raises(ValueError, match="unknown window selection 'middle'; expected one of spread, first"):
        EvalProtocol("windows", 100, 300, selection="middle")
